"""Test-only field builder (test code, not a backend): evaluates the dataset's Gaussian
auxiliary basis functions analytically on a uniform cubic grid (trapezoid rule, which is
accurate to ~1e-12 for the smooth Gaussians used here) and the "SCF" density of a test
structure from a sum of s-type Gaussians stored in its extras["scf_gaussians"]
(rows: x, y, z in bohr, exponent a, electrons q; rho = sum q (a/pi)^1.5 exp(-a |r - c|^2)).

Real solid harmonics r^l Y_lm (orthonormal Y_lm, m = -l..l) are written out for l <= 2.

It also implements the optional property protocol (``coulomb_matrix``, ``nuclear_potential``,
``scf_properties``): the potential of phi = R(r) Y_lm is analytic,
V(r) = 4 pi / (2l + 1) r^l Y_lm [r^(-2l-1) int_0^r R s^(l+2) ds + int_r^inf R s^(1-l) ds]
(incomplete gamma functions), so v_P = sum_A Z_A V_P(R_A) exactly and J_PQ = int phi_P V_Q on
the grid; the SCF values of the s-Gaussian density are analytic (erf).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
from rho_data import GaussianRadial, Grid, RhoFile, Structure
from rho_data.field_builders import FieldRequest
from scipy.special import gammainc

BOHR = 0.529177210903


def solid_harmonics(l: int, xyz: np.ndarray) -> np.ndarray:
    """r^l Y_lm(r_hat) for m = -l..l, shape (n, 2l+1)."""
    x, y, z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    if l == 0:
        return np.full((len(xyz), 1), 0.5 / math.sqrt(math.pi))
    if l == 1:
        return math.sqrt(3 / (4 * math.pi)) * np.stack([y, z, x], axis=1)
    if l == 2:
        c = 0.5 * math.sqrt(15 / math.pi)
        r2 = x * x + y * y + z * z
        return np.stack([c * x * y, c * y * z, 0.25 * math.sqrt(5 / math.pi) * (3 * z * z - r2), c * x * z, 0.5 * c * (x * x - y * y)], axis=1)
    raise ValueError(f"the test builder knows l <= 2, got {l}")


def normalised(l: int, exponents: Sequence[float], weights: Sequence[float] | None = None) -> GaussianRadial:
    """A radial function with integral R(r)^2 r^2 dr = 1 (so each phi = R Y_lm is normalised)."""
    a = np.asarray(exponents, dtype=float)
    w = np.ones_like(a) if weights is None else np.asarray(weights, dtype=float)
    gram = math.gamma(l + 1.5) / (2.0 * (a[:, None] + a[None, :]) ** (l + 1.5))
    scale = 1.0 / math.sqrt(float(w @ gram @ w))
    return GaussianRadial(l, tuple(a), tuple(w * scale))


def basis_matrix(basis, numbers: np.ndarray, positions_bohr: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(n_points, n_functions) values of every basis function, canonical order atom -> l -> n -> m."""
    columns = []
    for z, centre in zip(numbers, positions_bohr):
        d = points - centre
        r2 = np.einsum("ij,ij->i", d, d)
        for g in basis[int(z)].gaussians:
            radial = sum(c * np.exp(-a * r2) for a, c in zip(g.exponents, g.coefficients))
            columns.append(radial[:, None] * solid_harmonics(g.l, d))
    return np.concatenate(columns, axis=1)


def basis_potentials(basis, numbers: np.ndarray, positions_bohr: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(n_points, n_functions) electrostatic potential of every basis function (canonical order)."""
    columns = []
    for z, centre in zip(numbers, positions_bohr):
        d = points - centre
        r = np.sqrt(np.einsum("ij,ij->i", d, d))
        for g in basis[int(z)].gaussians:
            l, inner, outer = g.l, np.zeros(len(r)), np.zeros(len(r))
            for a, c in zip(g.exponents, g.coefficients):
                inner += c * math.gamma(l + 1.5) * gammainc(l + 1.5, a * r * r) / (2.0 * a ** (l + 1.5))
                outer += c * np.exp(-a * r * r) / (2.0 * a)
            safe = np.where(r > 1e-12, r, 1.0)
            radial = np.where(r > 1e-12, inner / safe ** (2 * l + 1), 0.0) + outer
            columns.append((4.0 * math.pi / (2 * l + 1)) * radial[:, None] * solid_harmonics(l, d))
    return np.concatenate(columns, axis=1)


def _coulomb(a: float, b: float, distance: float) -> float:
    """Coulomb energy of two unit s-Gaussian charges (exponents a, b) at ``distance``."""
    mu = math.sqrt(a * b / (a + b))
    return 2.0 * mu / math.sqrt(math.pi) if distance < 1e-12 else math.erf(mu * distance) / distance


def scf_density(rows: np.ndarray, points: np.ndarray) -> np.ndarray:
    rho = np.zeros(len(points))
    for x, y, z, a, q in np.asarray(rows).reshape(-1, 5):
        d = points - np.array([x, y, z])
        rho += q * (a / math.pi) ** 1.5 * np.exp(-a * np.einsum("ij,ij->i", d, d))
    return rho


def cubic_grid(positions_bohr: np.ndarray, spacing: float, margin: float) -> tuple[np.ndarray, np.ndarray]:
    lo = positions_bohr.min(axis=0) - margin
    hi = positions_bohr.max(axis=0) + margin
    axes = [np.arange(lo[k], hi[k] + spacing, spacing) for k in range(3)]
    points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    return points, np.full(len(points), spacing**3)


class GaussianFieldBuilder:
    """A FieldBuilder (and build_on_points) for datasets whose basis carries Gaussian radial data.

    ``scf_on_own_grid``: return the SCF density as a second grid with the points shuffled (as a
    backend that reads separate grid files might); ``no_scf``: provide no SCF density;
    ``shifted_scf_grid``: return the SCF density on a grid shifted by 0.01 bohr (must be refused).
    """

    def __init__(
        self, spacing: float = 0.3, margin: float = 7.0, scf_on_own_grid: bool = False, no_scf: bool = False, shifted_scf_grid: bool = False
    ):
        self.spacing, self.margin = spacing, margin
        self.scf_on_own_grid, self.no_scf, self.shifted_scf_grid = scf_on_own_grid, no_scf, shifted_scf_grid

    def build(self, dataset: RhoFile, requests: Sequence[FieldRequest]) -> Iterator[tuple[FieldRequest, Grid]]:
        for request in requests:
            s: Structure = dataset[request.index]
            positions = s.positions / BOHR
            points, weights = cubic_grid(positions, self.spacing, self.margin)
            phi = basis_matrix(dataset.basis, s.numbers, positions, points)
            values = {name: phi @ np.asarray(d) for name, d in request.coefficients.items()}
            scf = None if self.no_scf else scf_density(s.extras["scf_gaussians"], points)
            if scf is not None and not (self.scf_on_own_grid or self.shifted_scf_grid):
                values["scf"] = scf
            yield request, Grid(points, weights, values)
            if scf is not None and (self.scf_on_own_grid or self.shifted_scf_grid):
                order = np.random.default_rng(request.index).permutation(len(points))
                shift = 0.01 if self.shifted_scf_grid else 0.0
                yield request, Grid(points[order] + shift, weights[order], {"scf": scf[order]})

    def build_on_points(self, dataset: RhoFile, request: FieldRequest, points_bohr: np.ndarray) -> dict[str, np.ndarray]:
        s = dataset[request.index]
        phi = basis_matrix(dataset.basis, s.numbers, s.positions / BOHR, points_bohr)
        values = {name: phi @ np.asarray(d) for name, d in request.coefficients.items()}
        if not self.no_scf:
            values["scf"] = scf_density(s.extras["scf_gaussians"], points_bohr)
        return values

    def _geometry(self, dataset: RhoFile, index: int):
        s = dataset[index]
        return s, s.numbers, s.positions / BOHR

    def coulomb_matrix(self, dataset: RhoFile, index: int) -> np.ndarray:
        """J_PQ = (P|Q) = int phi_P V_Q on the cubic grid (symmetrised)."""
        _, numbers, positions = self._geometry(dataset, index)
        points, weights = cubic_grid(positions, self.spacing, self.margin)
        phi = basis_matrix(dataset.basis, numbers, positions, points)
        J = phi.T @ (weights[:, None] * basis_potentials(dataset.basis, numbers, positions, points))
        return 0.5 * (J + J.T)

    def nuclear_potential(self, dataset: RhoFile, index: int) -> np.ndarray:
        """v_P = int phi_P sum_A Z_A / |r - R_A| = sum_A Z_A V_P(R_A) (exact)."""
        _, numbers, positions = self._geometry(dataset, index)
        return np.asarray(numbers, dtype=float) @ basis_potentials(dataset.basis, numbers, positions, positions)

    def scf_properties(self, dataset: RhoFile, index: int) -> dict:
        """Electrons, total dipole (nuclear - electronic), Hartree and electron-nuclear energy of the s-Gaussian SCF density."""
        s, numbers, positions = self._geometry(dataset, index)
        rows = np.asarray(s.extras["scf_gaussians"]).reshape(-1, 5)
        centres, a, q = rows[:, :3], rows[:, 3], rows[:, 4]
        hartree = 0.5 * sum(
            q[i] * q[j] * _coulomb(a[i], a[j], float(np.linalg.norm(centres[i] - centres[j]))) for i in range(len(q)) for j in range(len(q))
        )
        en = -sum(z * q[i] * _point(a[i], float(np.linalg.norm(centres[i] - p))) for i in range(len(q)) for z, p in zip(numbers, positions))
        dipole = np.asarray(numbers, dtype=float) @ positions - q @ centres
        return {"n_electrons": float(q.sum()), "dipole_au": dipole, "hartree_energy_ha": float(hartree), "electron_nuclear_energy_ha": float(en)}


def _point(a: float, distance: float) -> float:
    """Potential of a unit s-Gaussian charge (exponent a) at ``distance``."""
    return 2.0 * math.sqrt(a / math.pi) if distance < 1e-12 else math.erf(math.sqrt(a) * distance) / distance


class NoPropertiesBuilder(GaussianFieldBuilder):
    """The same builder without the optional property protocol (like aims-io)."""

    coulomb_matrix = nuclear_potential = scf_properties = None  # type: ignore[assignment]


class GridOnlyBuilder(GaussianFieldBuilder):
    """The same builder without build_on_points (like a backend that only has integration grids)."""

    build_on_points = None  # type: ignore[assignment]
