"""Further targets of a dataset (schema 1.1): several fields on one overlap."""

import h5py
import numpy as np
import pytest

from rho_data import Provenance, RhoDataError, TargetValues, create_dataset, open_dataset
from rho_data.merge import merge_files
from rho_data.validate import validate_file


def with_targets(structures, names=("homo", "lumo+1")):
    out = []
    for s in structures:
        dense = s.overlap.to_dense()
        s.targets = {t: TargetValues(k * s.coefficients, k * dense @ s.coefficients) for k, t in enumerate(names, start=2)}
        out.append(s)
    return out


def write(path, basis, structures, **options):
    with create_dataset(path, basis, Provenance(producer="test"), **options) as writer:
        for s in structures:
            writer.append(s)
    return path


def test_targets_round_trip_and_column_reads(tmp_path, basis, structures):
    path = write(tmp_path / "t.h5", basis, with_targets(structures), targets=["homo", "lumo+1"])
    with open_dataset(path) as f:
        assert f.targets == ["electron_density", "homo", "lumo+1"]
        for i, s in enumerate(structures):
            np.testing.assert_array_equal(f.coefficients(i), s.coefficients)
            np.testing.assert_array_equal(f.coefficients(i, "homo"), 2 * s.coefficients)
            np.testing.assert_array_equal(f.coefficients(i, "electron_density"), s.coefficients)
            np.testing.assert_array_equal(f.projections(i, "lumo+1"), 3 * s.overlap.to_dense() @ s.coefficients)
            back = f[i]
            assert set(back.targets) == {"homo", "lumo+1"}
            np.testing.assert_array_equal(back.targets["lumo+1"].coefficients, 3 * s.coefficients)
            assert f.read(i, ("coefficients",)).targets == {}  # only what is asked for is read
        with pytest.raises(RhoDataError, match="no target 'lumo'"):
            f.coefficients(0, "lumo")
    assert validate_file(path) == []


def test_main_target_layout_is_unchanged_for_older_readers(tmp_path, basis, structures):
    """A 1.0 reader of the main target reads the same columns and index: the targets are extra groups."""
    plain = write(tmp_path / "plain.h5", basis, structures)
    more = write(tmp_path / "more.h5", basis, with_targets(structures), targets=["homo", "lumo+1"])
    with h5py.File(plain, "r") as a, h5py.File(more, "r") as b:
        assert list(a["structures/index"].attrs["columns"]) == list(b["structures/index"].attrs["columns"])
        np.testing.assert_array_equal(a["structures/index"][:], b["structures/index"][:])
        for name in ("coefficients", "projections", "overlap_values"):
            np.testing.assert_array_equal(a[f"structures/{name}"][:], b[f"structures/{name}"][:])
        assert set(b["structures"]) - set(a["structures"]) == {"targets"}


def test_merge_keeps_targets_and_refuses_different_ones(tmp_path, basis, structures):
    one = write(tmp_path / "a.h5", basis, with_targets(structures[:2]), targets=["homo", "lumo+1"])
    two = write(tmp_path / "b.h5", basis, with_targets(structures[2:]), targets=["homo", "lumo+1"])
    merge_files(tmp_path / "ab.h5", [one, two])
    with open_dataset(tmp_path / "ab.h5") as f:
        assert f.extra_targets == ["homo", "lumo+1"] and len(f) == len(structures)
        np.testing.assert_array_equal(f.coefficients(4, "homo"), 2 * structures[4].coefficients)
    other = write(tmp_path / "c.h5", basis, with_targets(structures[2:], ("homo",)), targets=["homo"])
    with pytest.raises(RhoDataError, match="extra targets differ"):
        merge_files(tmp_path / "ac.h5", [one, other])


def test_bad_targets_are_one_line_errors(tmp_path, basis, structures):
    with pytest.raises(RhoDataError, match="repeat"):
        create_dataset(tmp_path / "x.h5", basis, targets=["homo", "homo"])
    with pytest.raises(RhoDataError, match="repeat"):
        create_dataset(tmp_path / "y.h5", basis, target="homo", targets=["homo"])
    with pytest.raises(RhoDataError, match="may hold only"):
        create_dataset(tmp_path / "z.h5", basis, targets=["a/b"])
    with create_dataset(tmp_path / "w.h5", basis, targets=["homo"]) as writer:
        with pytest.raises(RhoDataError, match="differ from the file's further targets"):
            writer.append(structures[0])  # no targets
        s = with_targets([structures[1]], ("homo",))[0]
        s.targets["homo"].coefficients = s.targets["homo"].coefficients * np.nan
        with pytest.raises(RhoDataError, match="coefficients of 'homo' has non-finite"):
            writer.append(s)


def test_validate_finds_wrong_projections_of_a_target(tmp_path, basis, structures):
    bad = with_targets(structures)
    bad[1].targets["homo"].projections = bad[1].targets["homo"].projections + 1.0
    path = write(tmp_path / "bad.h5", basis, bad, targets=["homo", "lumo+1"])
    problems = validate_file(path)
    assert [(p.structure, p.field) for p in problems] == [(1, "targets/homo/projections")]


def test_info_lists_further_targets(tmp_path, basis, structures):
    import subprocess
    import sys

    structures = with_targets(structures)
    for s in structures:
        s.metadata = {"field_integral@homo": 1.0}
    path = write(tmp_path / "t.h5", basis, structures, targets=["homo", "lumo+1"], metadata=["field_integral@homo"])
    out = subprocess.run([sys.executable, "-m", "rho_data.cli", "info", str(path)], capture_output=True, text=True, check=True)
    assert "further targets" in out.stdout and "homo (mean integral 1)" in out.stdout and "lumo+1" in out.stdout


def test_export_of_a_further_target(tmp_path, basis, structures):
    metatensor = pytest.importorskip("metatensor")
    import subprocess
    import sys

    from rho_data import mts

    path = write(tmp_path / "t.h5", basis, with_targets(structures), targets=["homo", "lumo+1"])
    out = tmp_path / "homo.mts"
    cli = [sys.executable, "-m", "rho_data.cli", "export", str(path), "-o", str(out), "--target", "homo"]
    subprocess.run(cli, check=True, capture_output=True)
    back = metatensor.load(str(out))
    expected = mts.coefficients_to_tensormap(
        [s.numbers for s in structures], [2 * s.coefficients for s in structures], basis, list(range(len(structures)))
    )
    for key in expected.keys:
        np.testing.assert_allclose(back.block(key).values, expected.block(key).values)
