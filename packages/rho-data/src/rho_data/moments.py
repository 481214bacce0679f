"""Integrals of the auxiliary basis functions from the coefficients alone (no grid).

For phi(r) = R(|r - R_A|) Y_lm(r - R_A) centred on atom A, with R(r) = sum_k c_k r^l exp(-a_k r^2)
(:class:`~rho_data.basis.GaussianRadial`) and orthonormal real spherical harmonics Y_lm
(canonical m = -l..l; for l = 1, m = -1, 0, 1 are y, z, x):

- charge   integral phi dr   = sqrt(4 pi) integral R(r) r^2 dr        (l = 0 only, else 0)
- dipole   integral r phi dr = R_A integral phi dr
                              + sqrt(4 pi / 3) integral R(r) r^3 dr e_m  (l = 1 only; e_m the axis of m)

with integral_0^inf r^n exp(-a r^2) dr = Gamma((n + 1) / 2) / (2 a^((n + 1) / 2)).

A density rho = sum_b d_b phi_b then has N = q . d electrons and electronic dipole D . d
(integral r rho). A basis without Gaussian radial functions (numeric radial functions, as
FHI-aims uses) has no analytic moments: :func:`has_analytic_moments` says so and the other
functions raise :class:`MomentsUnavailable`.
"""

from __future__ import annotations

import math

import numpy as np

from .basis import AuxiliaryBasis, GaussianRadial
from .errors import RhoDataError

#: Canonical m = -1, 0, 1 of l = 1 point along y, z, x (Cartesian axis index).
P_AXES = (1, 2, 0)


class MomentsUnavailable(RhoDataError):
    """The basis has no analytic radial functions, so its integrals need a grid."""


def radial_moment(radial: GaussianRadial, n: int) -> float:
    """integral_0^inf R(r) r^n dr for R(r) = sum_k c_k r^l exp(-a_k r^2)."""
    p = radial.l + n
    return float(
        sum(c * math.gamma((p + 1) / 2) / (2.0 * a ** ((p + 1) / 2)) for a, c in zip(radial.exponents, radial.coefficients))
    )


def has_analytic_moments(basis: AuxiliaryBasis, numbers: np.ndarray | None = None) -> bool:
    """True when every element (of ``numbers``, or of the basis) has Gaussian radial functions."""
    elements = basis.symbols if numbers is None else {int(z) for z in numbers}
    return all(basis[e].gaussians is not None for e in elements)


def _gaussians(basis: AuxiliaryBasis, z: int) -> tuple[GaussianRadial, ...]:
    element = basis[int(z)]
    if element.gaussians is None:
        raise MomentsUnavailable(
            f"the auxiliary basis of {element.symbol} has numeric radial functions (no Gaussian data): its integrals need a grid"
        )
    return element.gaussians


def charge_integrals(basis: AuxiliaryBasis, numbers: np.ndarray) -> np.ndarray:
    """q_b = integral phi_b dr for every function of the structure (canonical order)."""
    out = []
    for z in numbers:
        for g in _gaussians(basis, z):
            value = math.sqrt(4.0 * math.pi) * radial_moment(g, 2) if g.l == 0 else 0.0
            out += [value] * (2 * g.l + 1)
    return np.array(out, dtype=np.float64)


def dipole_integrals(basis: AuxiliaryBasis, numbers: np.ndarray, positions_bohr: np.ndarray) -> np.ndarray:
    """D[:, b] = integral r phi_b dr (bohr), shape (3, n_functions), canonical order."""
    positions = np.asarray(positions_bohr, dtype=np.float64).reshape(-1, 3)
    columns = []
    for z, centre in zip(numbers, positions):
        for g in _gaussians(basis, z):
            block = np.zeros((3, 2 * g.l + 1))
            if g.l == 0:
                block[:, 0] = centre * math.sqrt(4.0 * math.pi) * radial_moment(g, 2)
            elif g.l == 1:
                value = math.sqrt(4.0 * math.pi / 3.0) * radial_moment(g, 3)
                for k, axis in enumerate(P_AXES):
                    block[axis, k] = value
            columns.append(block)
    return np.concatenate(columns, axis=1) if columns else np.zeros((3, 0))


def electron_count(basis: AuxiliaryBasis, numbers: np.ndarray, coefficients: np.ndarray) -> float:
    """integral rho dr = sum_b d_b integral phi_b dr."""
    return float(charge_integrals(basis, numbers) @ np.asarray(coefficients, dtype=np.float64))


def dipole_moment(basis: AuxiliaryBasis, numbers: np.ndarray, positions_bohr: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """Total dipole (atomic units, e bohr): sum_A Z_A R_A - integral r rho dr, about the origin
    of the coordinates (origin-independent only for a neutral structure)."""
    positions = np.asarray(positions_bohr, dtype=np.float64).reshape(-1, 3)
    nuclear = np.asarray(numbers, dtype=np.float64) @ positions
    return nuclear - dipole_integrals(basis, numbers, positions) @ np.asarray(coefficients, dtype=np.float64)
