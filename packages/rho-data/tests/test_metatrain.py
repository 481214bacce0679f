"""metatrain import and layout without metatrain installed (metatensor-core only).

What ``mtt eval`` writes is made here from the dataset in metatrain's layout; the tests with
metatrain itself (export, its DiskDataset, real predictions) are in test_metatrain_export.py.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

metatensor = pytest.importorskip("metatensor")
from metatensor import Labels, TensorBlock, TensorMap  # noqa: E402

from rho_data import open_dataset, open_predictions  # noqa: E402
from rho_data.cli import app  # noqa: E402
from rho_data.metatrain import TARGET, join_entries, options_yaml, species_irreps, to_metatrain  # noqa: E402
from rho_data.split import write_index_file  # noqa: E402
from rho_data.yaml_input import parse_yaml_text  # noqa: E402

runner = CliRunner()
HAS_METATRAIN = importlib.util.find_spec("metatrain") is not None


def eval_output(dataset: Path, selection, path: Path, *, edit=None) -> Path:
    """A TensorMap as ``mtt eval -o NAME.mts`` writes it: systems 0..n-1 of the selection, atom_type keys."""
    with open_dataset(dataset) as f:
        entries = [to_metatrain(f[int(i)].numbers, f[int(i)].coefficients, f.basis, system=k) for k, i in enumerate(selection)]
    tensor = join_entries(entries)
    if edit is not None:
        tensor = edit(tensor)
    metatensor.save(str(path), tensor)
    return path


def rebuilt(tensor, change):
    """``tensor`` with ``change(key, values, samples, components, properties)`` applied to each block."""
    keys, blocks = [], []
    for key, block in tensor.items():
        parts = change(
            [int(v) for v in key.values],
            np.array(block.values),
            np.array(block.samples.values),
            np.arange(-int(key["o3_lambda"]), int(key["o3_lambda"]) + 1),
            len(block.properties),
        )
        if parts is None:
            continue
        k, values, samples, mu, n = parts
        keys.append(k)
        blocks.append(
            TensorBlock(
                values=values,
                samples=Labels(["system", "atom"], samples.astype(np.int32).reshape(-1, 2)),
                components=[Labels(["o3_mu"], mu.astype(np.int32).reshape(-1, 1))],
                properties=Labels(["n"], np.arange(n, dtype=np.int32).reshape(-1, 1)),
            )
        )
    return TensorMap(Labels(tensor.keys.names, np.array(keys, dtype=np.int32)), blocks)


def import_args(prediction: Path, dataset: Path, output: Path, indices: Path | None = None) -> list[str]:
    args = ["import", "metatrain", str(prediction), "-r", str(dataset), "-o", str(output)]
    return args + (["--indices", str(indices)] if indices is not None else [])


@pytest.fixture
def test_part(tmp_path: Path, dataset_path: Path) -> tuple[np.ndarray, Path]:
    with open_dataset(dataset_path) as f:
        dataset_id = f.dataset_id
    selection = np.array([1, 3, 4])
    index = tmp_path / "test.idx"
    write_index_file(index, selection, dataset_id=dataset_id)
    return selection, index


def test_irreps_and_options_follow_the_basis(basis) -> None:
    irreps = species_irreps(basis, [8, 1, 1, 6])
    assert sorted(irreps) == [1, 6, 8]
    for z, entries in irreps.items():
        assert [(e["o3_lambda"], e["o3_sigma"], e["num"]) for e in entries] == [
            (l, 1, n) for l, n in enumerate(basis[z].n_radial)
        ]
    options = parse_yaml_text(options_yaml(["train", "val", "test"], irreps, "data.h5"), source="options.yaml")  # no aliases
    for name, part in (("training_set", "train"), ("validation_set", "val"), ("test_set", "test")):
        section = options[name]
        assert section["systems"]["read_from"] == f"{part}.zip"
        target = section["targets"][TARGET]
        assert target["sample_kind"] == "atom" and target["type"]["spherical"]["irreps"] == irreps
    only_train = parse_yaml_text(options_yaml(["train"], irreps, "data.h5"), source="options.yaml")
    assert only_train["validation_set"] == 0.1 and only_train["test_set"] == 0.0


def test_layout_is_metatrains_atomic_basis(dataset_path: Path) -> None:
    with open_dataset(dataset_path) as f:
        s = f[2]
        tensor = to_metatrain(s.numbers, s.coefficients, f.basis, system=7)
        assert tensor.keys.names == ["o3_lambda", "o3_sigma", "atom_type"]
        for key, block in tensor.items():
            l, z = int(key["o3_lambda"]), int(key["atom_type"])
            assert int(key["o3_sigma"]) == 1
            assert block.samples.names == ["system", "atom"] and set(block.samples.column("system")) == {7}
            assert [int(v) for v in block.samples.column("atom")] == [a for a, zz in enumerate(s.numbers) if zz == z]
            assert block.components[0].names == ["o3_mu"] and block.properties.names == ["n"]
            assert block.values.shape[1:] == (2 * l + 1, f.basis[z].n_radial[l])


def test_import_gives_back_the_coefficients(tmp_path: Path, dataset_path: Path, test_part) -> None:
    selection, index = test_part
    prediction = eval_output(dataset_path, selection, tmp_path / f"test_{TARGET}.mts")
    output = tmp_path / "predictions.h5"
    result = runner.invoke(app, import_args(prediction, dataset_path, output, index))
    assert result.exit_code == 0, result.output
    with open_predictions(output) as p, open_dataset(dataset_path) as d:
        assert p.dataset_id == d.dataset_id and len(p) == len(selection)
        for k, i in enumerate(selection):
            assert p[k].dataset_index == i
            np.testing.assert_array_equal(p[k].coefficients, d[int(i)].coefficients)
            np.testing.assert_array_equal(p[k].positions, d[int(i)].positions)
    again = runner.invoke(app, import_args(prediction, dataset_path, output, index))
    assert again.exit_code == 1 and "--overwrite" in again.output


MISMATCHES = {
    "an element the basis lacks": (
        lambda t: rebuilt(t, lambda k, v, s, mu, n: ([k[0], k[1], 9 if k[2] == 8 else k[2]], v, s, mu, n)),
        "not in the auxiliary basis",
    ),
    "wrong atom types": (
        lambda t: rebuilt(t, lambda k, v, s, mu, n: ([k[0], k[1], {7: 8, 8: 7}.get(k[2], k[2])], v, s, mu, n)),
        "predicted for atom type",
    ),
    "atoms in another order": (
        lambda t: rebuilt(t, lambda k, v, s, mu, n: (k, v, np.column_stack([s[:, 0], (s[:, 1] + 1) % 50]), mu, n)),
        "atom",
    ),
    "a structure missing": (
        lambda t: rebuilt(t, lambda k, v, s, mu, n: (k, v[s[:, 0] != 1], s[s[:, 0] != 1], mu, n)),
        "no predictions for system 1 (structure 3",
    ),
    "a block missing": (lambda t: rebuilt(t, lambda k, v, s, mu, n: None if k[0] == 1 else (k, v, s, mu, n)), "misses"),
    "fewer radial functions": (lambda t: rebuilt(t, lambda k, v, s, mu, n: (k, v[..., :-1], s, mu, n - 1)), "radial functions"),
    "non-finite values": (
        lambda t: rebuilt(t, lambda k, v, s, mu, n: (k, np.where(s[:, :1, None] == 2, np.nan, v), s, mu, n)),
        "non-finite",
    ),
    "other components": (lambda t: rebuilt(t, lambda k, v, s, mu, n: (k, v, s, mu[::-1], n)), "o3_mu"),
    "pseudo-tensor keys": (lambda t: rebuilt(t, lambda k, v, s, mu, n: ([k[0], -1, k[2]], v, s, mu, n)), "o3_sigma"),
    "rho-data's key names": (
        lambda t: TensorMap(
            Labels(["o3_lambda", "o3_sigma", "center_type"], np.array(t.keys.values)), [b.copy() for b in t.blocks()]
        ),
        "atomic-basis",
    ),
}


@pytest.mark.parametrize("fault", sorted(MISMATCHES))
def test_import_refuses_a_mismatch_in_one_line(tmp_path: Path, dataset_path: Path, test_part, fault: str) -> None:
    selection, index = test_part
    edit, words = MISMATCHES[fault]
    prediction = eval_output(dataset_path, selection, tmp_path / "pred.mts", edit=edit)
    output = tmp_path / "predictions.h5"
    result = runner.invoke(app, import_args(prediction, dataset_path, output, index))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert words in result.output, result.output
    assert not output.exists()


def test_import_refuses_a_count_mismatch_and_foreign_files(tmp_path: Path, dataset_path: Path, test_part) -> None:
    selection, index = test_part
    prediction = eval_output(dataset_path, selection[:2], tmp_path / "pred.mts")
    result = runner.invoke(app, import_args(prediction, dataset_path, tmp_path / "p.h5", index))
    assert result.exit_code == 1 and "predicts 2 structures" in result.output and "3" in result.output
    whole = runner.invoke(app, import_args(prediction, dataset_path, tmp_path / "p.h5"))  # no --indices: all 5
    assert whole.exit_code == 1 and "give --indices" in whole.output
    garbage = tmp_path / "garbage.mts"
    garbage.write_bytes(b"not a tensor map")
    result = runner.invoke(app, import_args(garbage, dataset_path, tmp_path / "p.h5", index))
    assert result.exit_code == 1 and "is not a metatensor TensorMap" in result.output
    missing = runner.invoke(app, import_args(tmp_path / "test.mts", dataset_path, tmp_path / "p.h5", index))
    assert missing.exit_code == 1 and f"NAME_{TARGET}.mts" in missing.output
    foreign = tmp_path / "foreign.idx"
    write_index_file(foreign, selection, dataset_id="0" * 32)
    result = runner.invoke(app, import_args(prediction, dataset_path, tmp_path / "p.h5", foreign))
    assert result.exit_code == 1 and "is a split of dataset" in result.output
    assert not (tmp_path / "p.h5").exists()


def test_export_format_is_checked(tmp_path: Path, dataset_path: Path) -> None:
    result = runner.invoke(app, ["export", str(dataset_path), "--format", "xyz", "-o", str(tmp_path / "x")])
    assert result.exit_code == 1 and "--format must be mts or metatrain" in result.output
    two = ["--indices", str(tmp_path / "a.idx"), "--indices", str(tmp_path / "b.idx")]
    result = runner.invoke(app, ["export", str(dataset_path), "-o", str(tmp_path / "c.mts"), *two])
    assert result.exit_code == 1 and "one --indices" in result.output


@pytest.mark.skipif(HAS_METATRAIN, reason="metatrain is installed here")
def test_export_without_metatrain_says_what_to_install(tmp_path: Path, dataset_path: Path) -> None:
    result = runner.invoke(app, ["export", str(dataset_path), "--format", "metatrain", "-o", str(tmp_path / "mtt")])
    assert result.exit_code == 1 and "needs metatrain" in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "mtt").exists()
