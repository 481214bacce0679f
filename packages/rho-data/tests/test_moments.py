"""Analytic charge and dipole integrals of Gaussian auxiliary functions against a dense grid."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rho_data import AuxiliaryBasis, ElementBasis, GaussianRadial
from rho_data.moments import (
    MomentsUnavailable,
    charge_integrals,
    dipole_integrals,
    dipole_moment,
    electron_count,
    has_analytic_moments,
    radial_moment,
)


def _solid(l: int, d: np.ndarray) -> np.ndarray:
    """r^l Y_lm for m = -l..l (orthonormal real harmonics; l = 1 is y, z, x)."""
    x, y, z = d[:, 0], d[:, 1], d[:, 2]
    if l == 0:
        return np.full((len(d), 1), 0.5 / math.sqrt(math.pi))
    if l == 1:
        return math.sqrt(3 / (4 * math.pi)) * np.stack([y, z, x], axis=1)
    c = 0.5 * math.sqrt(15 / math.pi)
    r2 = x * x + y * y + z * z
    return np.stack(
        [c * x * y, c * y * z, 0.25 * math.sqrt(5 / math.pi) * (3 * z * z - r2), c * x * z, 0.5 * c * (x * x - y * y)], axis=1
    )


BASIS = AuxiliaryBasis(
    {
        "H": ElementBasis(
            "H",
            (2, 1),
            (GaussianRadial(0, (0.5,), (0.4,)), GaussianRadial(0, (1.6, 0.6), (0.7, -0.3)), GaussianRadial(1, (0.9,), (0.8,))),
        ),
        "O": ElementBasis(
            "O",
            (1, 2, 1),
            (
                GaussianRadial(0, (0.35, 2.0), (0.3, 1.1)),
                GaussianRadial(1, (0.6,), (0.5,)),
                GaussianRadial(1, (1.5, 0.4), (1.0, 0.2)),
                GaussianRadial(2, (0.9,), (0.7,)),
            ),
        ),
    }
)
NUMBERS = np.array([8, 1, 1])
POSITIONS = np.array([[0.1, -0.2, 0.3], [1.43, 1.1, 0.0], [-1.43, 1.1, 0.2]])


def _grid_values(points: np.ndarray) -> np.ndarray:
    columns = []
    for z, centre in zip(NUMBERS, POSITIONS):
        d = points - centre
        r2 = np.einsum("ij,ij->i", d, d)
        for g in BASIS[int(z)].gaussians:
            radial = sum(c * np.exp(-a * r2) for a, c in zip(g.exponents, g.coefficients))
            columns.append(radial[:, None] * _solid(g.l, d))
    return np.concatenate(columns, axis=1)


@pytest.fixture(scope="module")
def dense():
    """Points and trapezoid weights of a 0.2 bohr cube 9 bohr beyond every atom (exact to ~1e-12 for these Gaussians)."""
    h = 0.2
    axes = [np.arange(POSITIONS[:, k].min() - 9, POSITIONS[:, k].max() + 9 + h, h) for k in range(3)]
    points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    return points, h**3, _grid_values(points)


def test_radial_moment_is_the_integral():
    g = GaussianRadial(1, (0.7, 2.0), (0.3, -1.2))
    r = np.linspace(0, 30, 300001)
    for n in (2, 3, 4):
        numeric = np.trapezoid(g(r) * r**n, r)
        assert radial_moment(g, n) == pytest.approx(numeric, rel=1e-9)


def test_charge_and_dipole_integrals_match_a_dense_grid(dense):
    points, w, phi = dense
    q_grid = w * phi.sum(axis=0)
    d_grid = w * (points.T @ phi)
    assert np.abs(charge_integrals(BASIS, NUMBERS) - q_grid).max() < 1e-9
    assert np.abs(dipole_integrals(BASIS, NUMBERS, POSITIONS) - d_grid).max() < 1e-9
    assert np.abs(d_grid).max() > 0.1  # the test has teeth: p functions carry dipoles


def test_electron_count_and_dipole_of_a_density(dense):
    points, w, phi = dense
    d = np.random.default_rng(0).normal(size=phi.shape[1])
    rho = phi @ d
    assert electron_count(BASIS, NUMBERS, d) == pytest.approx(w * rho.sum(), abs=1e-9)
    expected = NUMBERS @ POSITIONS - w * (points.T @ rho)
    np.testing.assert_allclose(dipole_moment(BASIS, NUMBERS, POSITIONS, d), expected, atol=1e-9)


def test_numeric_basis_has_no_analytic_moments():
    numeric = AuxiliaryBasis.from_counts({"H": [2, 1]})
    assert not has_analytic_moments(numeric)
    assert has_analytic_moments(BASIS, NUMBERS)
    with pytest.raises(MomentsUnavailable, match="numeric radial functions"):
        charge_integrals(numeric, np.array([1]))
