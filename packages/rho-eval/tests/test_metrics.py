"""Metric functions on analytic fields: Gaussians on a uniform grid with known integrals."""

import math

import numpy as np
import pytest
from rho_data import BlockSparseOverlap, Grid

from rho_eval import RhoEvalError, coefficient_squared_error, field_errors, integral, structure_metrics


def gaussian(points, centre, a, q):
    d = points - np.asarray(centre)
    return q * (a / math.pi) ** 1.5 * np.exp(-a * np.einsum("ij,ij->i", d, d))


def overlap_integral(a, b, distance):
    """integral of (a/pi)^1.5 exp(-a r^2) (b/pi)^1.5 exp(-b |r - R|^2)."""
    return (a * b / (math.pi * (a + b))) ** 1.5 * math.exp(-a * b * distance**2 / (a + b))


@pytest.fixture(scope="module")
def grid():
    axis = np.arange(-9.0, 9.0 + 1e-9, 0.25)
    points = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)
    return Grid(points, np.full(len(points), 0.25**3), {})


def test_integral_and_perfect_prediction(grid):
    rho = gaussian(grid.points, [0.1, -0.2, 0.3], 1.2, 8.0)
    g = Grid(grid.points, grid.weights, {"ml": rho, "ref": rho.copy()})
    assert integral(g, "ref") == pytest.approx(8.0, rel=1e-12)
    errors = field_errors(g, "ml", "ref")
    assert errors["nmae_percent"] == 0.0 and errors["squared_error"] == 0.0
    assert errors["norm"] == pytest.approx(8.0, rel=1e-12)


def test_scaled_prediction_has_known_nmae(grid):
    """rho_ML = (1 + eps) rho_ref gives %NMAE = 100 |eps| exactly."""
    rho = gaussian(grid.points, [0, 0, 0], 0.9, 10.0)
    for eps in (0.01, -0.003):
        g = Grid(grid.points, grid.weights, {"ml": (1 + eps) * rho, "ref": rho})
        errors = field_errors(g, "ml", "ref")
        assert errors["nmae_percent"] == pytest.approx(100 * abs(eps), rel=1e-10)
        assert errors["abs_error"] == pytest.approx(10.0 * abs(eps), rel=1e-10)


def test_squared_error_of_shifted_gaussians(grid):
    """integral (q1 g_a - q2 g_b(R))^2 from the analytic Gaussian product integral."""
    a, b, q1, q2, R = 1.1, 0.7, 2.0, 1.7, 0.8
    ml = gaussian(grid.points, [0, 0, 0], a, q1)
    ref = gaussian(grid.points, [0, 0, R], b, q2)
    expected = q1**2 * overlap_integral(a, a, 0) + q2**2 * overlap_integral(b, b, 0) - 2 * q1 * q2 * overlap_integral(a, b, R)
    errors = field_errors(Grid(grid.points, grid.weights, {"ml": ml, "ref": ref}), "ml", "ref")
    assert errors["squared_error"] == pytest.approx(expected, rel=1e-10)
    assert errors["norm"] == pytest.approx(q2, rel=1e-12)


def test_structure_metrics_without_scf(grid):
    rho = gaussian(grid.points, [0, 0, 0], 1.0, 2.0)
    g = Grid(grid.points, grid.weights, {"ml": 1.01 * rho, "ri": rho})
    m = structure_metrics(g, "ml", ("ri", "scf"))
    assert m["n_electrons_pred"] == pytest.approx(2.02, rel=1e-12)
    assert m["nmae_ri_percent"] == pytest.approx(1.0, rel=1e-10)
    assert all(math.isnan(m[k]) for k in ("abs_error_scf", "norm_scf", "nmae_scf_percent", "squared_error_scf"))


def test_missing_or_malformed_field_is_an_error(grid):
    g = Grid(grid.points, grid.weights, {"ml": np.zeros(len(grid.weights)), "bad": np.zeros(3)})
    with pytest.raises(RhoEvalError, match="no field 'ri'"):
        field_errors(g, "ml", "ri")
    with pytest.raises(RhoEvalError, match="has shape"):
        field_errors(g, "ml", "bad")


def test_zero_reference_gives_nan_nmae():
    g = Grid(np.zeros((2, 3)), np.ones(2), {"ml": np.array([1.0, 0.0]), "ref": np.zeros(2)})
    assert math.isnan(field_errors(g, "ml", "ref")["nmae_percent"])


def test_coefficient_squared_error_matches_dense():
    rng = np.random.default_rng(1)
    sizes = np.array([3, 5, 2])
    b = rng.normal(size=(10, 10))
    S = b @ b.T + np.eye(10)
    overlap = BlockSparseOverlap.from_dense(S, sizes)
    d1, d2 = rng.normal(size=10), rng.normal(size=10)
    assert coefficient_squared_error(overlap, d1, d2) == pytest.approx((d1 - d2) @ S @ (d1 - d2), rel=1e-12)
