"""Predictions that do not belong to the dataset, missing backends and grids: one-line errors."""

import dataclasses

import numpy as np
import pytest
from conftest import BASIS
from gaussian_builder import GaussianFieldBuilder, normalised
from rho_data import AuxiliaryBasis, Grid, Provenance, Structure, create_dataset, create_predictions, open_dataset
from rich.console import Console

from rho_eval import RhoEvalError, Settings, evaluate_files

QUIET = Console(quiet=True)


def run(pred, ref, out, factory=GaussianFieldBuilder, **settings):
    return evaluate_files(pred, ref, out, Settings(plots=False, **settings), factory=factory, console=QUIET)


def write(path, dataset_path, rows, dataset_id=None, basis=None):
    """Predictions with rows (dataset_index, numbers, positions) taken as given."""
    with open_dataset(dataset_path) as ds:
        writer = create_predictions(path, basis or ds.basis, dataset_id=ds.dataset_id if dataset_id is None else dataset_id)
        for index, numbers, positions in rows:
            writer.append(Structure(numbers=numbers, positions=positions, coefficients=np.zeros(BASIS.n_functions(numbers)), dataset_index=index))
        writer.close()
    return path


@pytest.fixture
def structures(dataset_path):
    with open_dataset(dataset_path) as ds:
        return [(i, ds[i].numbers, ds[i].positions) for i in range(len(ds))]


def test_other_dataset(dataset_path, structures, tmp_path):
    pred = write(tmp_path / "p.h5", dataset_path, structures, dataset_id="0123abcd")
    with pytest.raises(RhoEvalError, match=r"p\.h5: the predictions were made for dataset '0123abcd'.*--reference"):
        run(pred, dataset_path, tmp_path / "r")


def test_other_basis(dataset_path, structures, tmp_path):
    h = BASIS["H"]
    other = AuxiliaryBasis({**BASIS.elements, "H": dataclasses.replace(h, gaussians=(normalised(0, [0.51]),) + h.gaussians[1:])})
    pred = write(tmp_path / "p.h5", dataset_path, structures, basis=other)
    with pytest.raises(RhoEvalError, match="another auxiliary basis.*radial functions differ"):
        run(pred, dataset_path, tmp_path / "r")


def test_other_structures(dataset_path, structures, tmp_path):
    (i0, n0, p0), (i1, n1, p1) = structures[:2]
    swapped = write(tmp_path / "a.h5", dataset_path, [(i0, n1, p1)])
    with pytest.raises(RhoEvalError, match=r"a\.h5: structure 0: its atoms differ from those of dataset structure 0"):
        run(swapped, dataset_path, tmp_path / "r")
    moved = write(tmp_path / "b.h5", dataset_path, [(i1, n1, p1 + 0.01)])
    with pytest.raises(RhoEvalError, match="positions differ by up to 0.01 Angstrom"):
        run(moved, dataset_path, tmp_path / "r")
    twice = write(tmp_path / "c.h5", dataset_path, [(i0, n0, p0), (i0, n0, p0)])
    with pytest.raises(RhoEvalError, match=r"structure 1: predicts dataset structure 0 again"):
        run(twice, dataset_path, tmp_path / "r")
    outside = write(tmp_path / "d.h5", dataset_path, [(17, n0, p0)])
    with pytest.raises(RhoEvalError, match="dataset_index 17 is not a structure"):
        run(outside, dataset_path, tmp_path / "r")


def test_backend_not_installed(dataset_path, make_predictions, tmp_path):
    pred = make_predictions(lambda i, d: d)
    with pytest.raises(ValueError, match="no field builder is installed for producer 'gaussian-test'.*install"):
        run(pred, dataset_path, tmp_path / "r", factory=None)


def test_dataset_without_producer(tmp_path):
    path = tmp_path / "anonymous.h5"
    writer = create_dataset(path, BASIS, Provenance(), overlap=False, projections=False)
    writer.append(Structure(numbers=[1, 1], positions=[[0, 0, 0], [0, 0, 0.7]], coefficients=np.zeros(10)))
    writer.close()
    with pytest.raises(RhoEvalError, match="records no producer"):
        run(None, path, tmp_path / "r", factory=None, fit_only=True)


def test_predictions_or_fit_only_needed(dataset_path, tmp_path):
    with pytest.raises(RhoEvalError, match="--fit-only"):
        run(None, dataset_path, tmp_path / "r")


class NoGridBuilder(GaussianFieldBuilder):
    def build(self, dataset, requests):
        return iter(())


class MissingFieldBuilder(GaussianFieldBuilder):
    def build(self, dataset, requests):
        for request, grid in super().build(dataset, requests):
            yield request, Grid(grid.points, grid.weights, {"scf": grid.values["scf"]})


def test_missing_grids_or_fields(dataset_path, make_predictions, tmp_path):
    pred = make_predictions(lambda i, d: d)
    with pytest.raises(RhoEvalError, match="structure 0: the field builder returned no grid"):
        run(pred, dataset_path, tmp_path / "r", factory=NoGridBuilder)
    with pytest.raises(RhoEvalError, match="structure 0: the field builder returned no 'ri' field"):
        run(pred, dataset_path, tmp_path / "r2", factory=MissingFieldBuilder)
