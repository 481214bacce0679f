import numpy as np
import pytest
from conftest import assert_same_structure

from rho_data import (
    Grid,
    Provenance,
    RhoDataError,
    RhoWriter,
    Structure,
    create_dataset,
    create_grids,
    create_predictions,
    open_dataset,
    open_file,
    open_grids,
    open_predictions,
)


def test_dataset_reads_back_exactly(dataset_path, structures, basis):
    with open_dataset(dataset_path) as f:
        assert len(f) == len(structures)
        assert f.basis.same_as(basis)
        assert f.provenance.producer == "test" and f.provenance.functional == "PBE"
        for original, read in zip(structures, f):
            assert_same_structure(original, read)
        # random access, negative indices and out of range
        assert_same_structure(structures[3], f[3])
        assert_same_structure(structures[-1], f[-1])
        with pytest.raises(IndexError):
            f[len(structures)]


def test_batches_follow_requested_order(dataset_path, structures):
    with open_dataset(dataset_path) as f:
        batches = list(f.iter_batches(2, indices=[4, 0, 2]))
        assert [len(b) for b in batches] == [2, 1]
        assert [s.label for b in batches for s in b] == ["mol4", "mol0", "mol2"]
        assert sum(len(b) for b in f.iter_batches(3)) == len(structures)


def test_metadata_and_labels(dataset_path, structures):
    with open_dataset(dataset_path) as f:
        assert f.labels() == [s.label for s in structures]
        energies = f.metadata_column("energy")
        np.testing.assert_array_equal(energies, [s.metadata["energy"] for s in structures])
        assert np.isnan(f.metadata_column("time_scf_s")).all()
        with pytest.raises(RhoDataError, match="no metadata 'nope'"):
            f.metadata_column("nope")


def test_reopen_appends_and_keeps_identity(dataset_path, structures):
    with open_dataset(dataset_path) as f:
        dataset_id = f.dataset_id
    with RhoWriter(dataset_path) as w:
        w.append(structures[0])
    with open_dataset(dataset_path) as f:
        assert len(f) == len(structures) + 1 and f.dataset_id == dataset_id
        assert_same_structure(f[-1], structures[0])


def test_periodic_structure_and_extras(tmp_path, basis):
    rng = np.random.default_rng(1)
    numbers = np.array([8, 1, 1])
    n = basis.n_functions(numbers)
    s = Structure(
        numbers,
        rng.normal(size=(3, 3)),
        cell=np.diag([5.0, 6.0, 7.0]),
        pbc=[True, True, False],
        coefficients=rng.normal(size=n),
        extras={"density_matrix": rng.normal(size=16)},
    )
    path = tmp_path / "p.h5"
    with create_dataset(path, basis, projections=False, overlap=False, extras=["density_matrix"]) as w:
        w.append(s)
    with open_dataset(path) as f:
        r = f[0]
        np.testing.assert_array_equal(r.cell, s.cell)
        assert r.pbc.tolist() == [True, True, False]
        np.testing.assert_array_equal(r.extras["density_matrix"], s.extras["density_matrix"])
        assert r.projections is None and r.overlap is None


def test_predictions_are_tied_to_their_dataset(tmp_path, dataset_path, structures, basis):
    with open_dataset(dataset_path) as ds:
        dataset_id = ds.dataset_id
    path = tmp_path / "pred.h5"
    with create_predictions(path, basis, dataset_id=dataset_id, provenance=Provenance(producer="rho-model")) as w:
        for i, s in enumerate(structures):
            w.append(Structure(s.numbers, s.positions, label=s.label, coefficients=2 * s.coefficients, dataset_index=i))
    with open_predictions(path) as p:
        assert p.kind == "predictions" and p.dataset_id == dataset_id and p.file_id != dataset_id
        np.testing.assert_array_equal(p[2].coefficients, 2 * structures[2].coefficients)
        assert p[2].dataset_index == 2
    with pytest.raises(RhoDataError, match="is a rho-data 'predictions' file, expected a 'dataset' file"):
        open_dataset(path)


def test_grids_roundtrip(tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "g.h5"
    grids = [Grid(rng.normal(size=(k, 3)), rng.random(k), {"scf": rng.random(k), "ml": rng.random(k)}) for k in (10, 7)]
    with create_grids(path, fields=["scf", "ml"], dataset_id="abc") as w:
        for k, g in enumerate(grids):
            w.append(Structure([1], [[0.0, 0.0, 0.0]], grid=g, dataset_index=k))
    with open_grids(path) as f:
        assert f.field_names == ["ml", "scf"] and f.dataset_id == "abc"
        for g, r in zip(grids, f):
            np.testing.assert_array_equal(g.points, r.grid.points)
            np.testing.assert_array_equal(g.values["ml"], r.grid.values["ml"])
            assert r.grid.integrate("scf") == pytest.approx(g.weights @ g.values["scf"])


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: setattr(s, "coefficients", s.coefficients[:-1]), "coefficients has .* values, the basis of its atoms has"),
        (lambda s: s.coefficients.__setitem__(0, np.nan), "non-finite"),
        (lambda s: setattr(s, "numbers", np.array([8, 1, 9])), r"atomic numbers \[9\]"),
        (lambda s: setattr(s, "metadata", {"colour": 1.0}), "not declared"),
        (lambda s: setattr(s, "overlap", None), "has no overlap"),
    ],
)
def test_writer_refuses_bad_structures_and_keeps_what_was_written(dataset_path, structures, change, message):
    bad = Structure(
        structures[0].numbers.copy(),
        structures[0].positions.copy(),
        label="bad",
        coefficients=structures[0].coefficients.copy(),
        projections=structures[0].projections,
        overlap=structures[0].overlap,
    )
    change(bad)
    with RhoWriter(dataset_path) as w:
        with pytest.raises(RhoDataError, match=message) as info:
            w.append(bad)
    assert f"{dataset_path}: structure {len(structures)}: " in str(info.value) and "(bad)" in str(info.value)
    with open_dataset(dataset_path) as f:
        assert len(f) == len(structures)


def test_create_refuses_to_overwrite(dataset_path, basis):
    with pytest.raises(RhoDataError, match="already exists"):
        create_dataset(dataset_path, basis)


def test_open_file_detects_kind(dataset_path):
    with open_file(dataset_path) as f:
        assert f.kind == "dataset"


def test_dataset_without_metadata(tmp_path, basis, structures):
    path = tmp_path / "nometa.h5"
    s = structures[0]
    s.metadata = {}
    with create_dataset(path, basis, metadata=[]) as w:
        w.append(s)
    with open_dataset(path) as f:
        assert f.metadata_names == [] and f[0].metadata == {}
