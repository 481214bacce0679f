"""The rho-data command line: info, split, merge, export."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import assert_same_structure

from rho_data import Provenance, create_dataset, open_dataset
from rho_data.split import read_index_file


def cli(*args, check=True):
    result = subprocess.run([sys.executable, "-m", "rho_data.cli", *map(str, args)], capture_output=True, text=True)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_version_and_help():
    assert "rho-data 0.1.0 (schema 1.1)" in cli("--version").stdout
    assert "validate" in cli("--help").stdout


def test_info_table(dataset_path):
    out = cli("info", dataset_path).stdout
    assert "structures" in out and "5" in out and "producer" in out and "test" in out


def test_split_is_reproducible_and_covers_everything(tmp_path, dataset_path):
    for name in ("a", "b"):
        cli("split", dataset_path, "-s", "0.6", "-s", "0.2", "-s", "0.2", "--seed", "7", "-o", tmp_path / name)
    with open_dataset(dataset_path) as f:
        dataset_id = f.dataset_id
    parts = [
        read_index_file(tmp_path / "a" / f"{p}.idx", dataset_id=dataset_id, n_structures=5) for p in ("train", "val", "test")
    ]
    assert [len(p) for p in parts] == [3, 1, 1]
    assert sorted(np.concatenate(parts).tolist()) == list(range(5))
    for p in ("train", "val", "test"):
        assert (tmp_path / "a" / f"{p}.idx").read_text() == (tmp_path / "b" / f"{p}.idx").read_text()
    bad = cli("split", dataset_path, "-s", "0.9", "-s", "0.9", "-n", "x", "-n", "y", "-o", tmp_path / "c", check=False)
    assert bad.returncode == 1 and "sum to 1.8 > 1" in bad.stderr


def test_merge_concatenates_and_refuses_mismatches(tmp_path, basis, structures):
    parts = []
    for k in range(2):
        path = tmp_path / f"part{k}.h5"
        with create_dataset(path, basis, Provenance(producer="test", functional="PBE")) as w:
            for s in structures[k::2]:
                w.append(s)
        parts.append(path)
    merged = tmp_path / "merged.h5"
    cli("merge", merged, *parts)
    with open_dataset(merged) as f:
        order = structures[0::2] + structures[1::2]
        assert len(f) == len(order)
        for a, b in zip(order, f):
            assert_same_structure(a, b)
        assert f.provenance.extra["merged_from"] and f.dataset_id != open_dataset(parts[0]).dataset_id
    other = tmp_path / "other.h5"
    with create_dataset(other, basis, Provenance(producer="test", functional="B3LYP")) as w:
        w.append(structures[0])
    result = cli("merge", tmp_path / "bad.h5", parts[0], other, check=False)
    assert result.returncode == 1 and "functional 'PBE' vs 'B3LYP'" in result.stderr
    assert not (tmp_path / "bad.h5").exists()
    assert cli("merge", merged, *parts, check=False).returncode == 1  # no silent overwrite


def test_export_writes_tensormaps_that_convert_back_exactly(tmp_path, dataset_path):
    metatensor = pytest.importorskip("metatensor")
    from rho_data.mts import tensormap_to_coefficients, tensormap_to_overlaps

    cli("export", dataset_path, "-o", tmp_path / "c.mts", "--overlap", tmp_path / "s.mts", "--projections", tmp_path / "w.mts")
    with open_dataset(dataset_path) as f:
        structures = list(f)
        coefficients = tensormap_to_coefficients(
            metatensor.load(str(tmp_path / "c.mts")), [s.numbers for s in structures], f.basis
        )
        overlaps = tensormap_to_overlaps(metatensor.load(str(tmp_path / "s.mts")), [s.numbers for s in structures], f.basis)
    for s, d, ov in zip(structures, coefficients, overlaps):
        np.testing.assert_array_equal(s.coefficients, d)
        np.testing.assert_array_equal(s.overlap.values, ov.values)
        np.testing.assert_array_equal(s.overlap.pairs, ov.pairs)
    tm = metatensor.load(str(tmp_path / "c.mts"))
    assert tm.keys.names == ["o3_lambda", "o3_sigma", "center_type"]
    block = tm.block(0)
    assert (
        block.samples.names == ["system", "atom"] and block.components[0].names == ["o3_mu"] and block.properties.names == ["n"]
    )
