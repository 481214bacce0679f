"""The notebook API: density_on_points, density_on_grid, evaluate."""

import numpy as np
import pytest
from gaussian_builder import BOHR, GaussianFieldBuilder, GridOnlyBuilder, basis_matrix
from rho_data import open_dataset
from test_evaluate import read_csv, run

import rho_eval
from rho_eval import RhoEvalError


def test_density_on_points_is_the_basis_expansion(dataset_path):
    with open_dataset(dataset_path) as ds:
        s = ds[2]
        points = np.random.default_rng(0).normal(size=(50, 3))
        got = rho_eval.density_on_points(ds, 2, 2 * s.coefficients, points, builder=GaussianFieldBuilder())
        expected = basis_matrix(ds.basis, s.numbers, s.positions / BOHR, points) @ (2 * s.coefficients)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)
    with pytest.raises(RhoEvalError, match="no build_on_points"):
        rho_eval.density_on_points(dataset_path, 2, s.coefficients, points, builder=GridOnlyBuilder())


def test_density_on_grid_has_pred_ri_scf(dataset_path):
    with open_dataset(dataset_path) as ds:
        d = ds[1].coefficients
    grid = rho_eval.density_on_grid(dataset_path, 1, 0.5 * d, builder=GaussianFieldBuilder())
    assert set(grid.values) == {"pred", "ri", "scf"}
    assert grid.integrate("pred") == pytest.approx(0.5 * grid.integrate("ri"), rel=1e-12)


def test_evaluate_matches_the_command(dataset_path, make_predictions, tmp_path):
    """The API gives the same numbers as rho-eval's metrics.csv for the same structure."""
    run(make_predictions(lambda i, d: 1.01 * d), dataset_path, tmp_path / "r")
    row = read_csv(tmp_path / "r" / "metrics.csv")[3]
    with open_dataset(dataset_path) as ds:
        got = rho_eval.evaluate(ds, 3, 1.01 * ds[3].coefficients, builder=GaussianFieldBuilder())
    for key in (
        "nmae_ri_percent",
        "nmae_scf_percent",
        "squared_error_coef_ri",
        "rmse_coef_ri_percent",
        "dipole_error_scf_debye",
        "electrostatic_error_scf_kcal_mol",
    ):
        assert got[key] == pytest.approx(float(row[key]), rel=1e-10), key


def test_evaluate_refuses_bad_coefficients(dataset_path):
    with open_dataset(dataset_path) as ds:
        d = ds[0].coefficients.copy()
    with pytest.raises(RhoEvalError, match="coefficients given"):
        rho_eval.evaluate(dataset_path, 0, d[:-1], builder=GaussianFieldBuilder())
    d[0] = np.nan
    with pytest.raises(RhoEvalError, match="structure 0.*NaN"):
        rho_eval.evaluate(dataset_path, 0, d, builder=GaussianFieldBuilder())
