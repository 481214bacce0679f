"""Density matrices of the fields of :mod:`rho_data.orbital_fields` from a converged PySCF SCF.

D_f = sum_s C_s diag(w_s) C_s^T over spin channels s (molecules: one k-point), with the weights
w of the field name; the field's integral is sum w (the orbitals are orthonormal in the AO metric:
tr(D_f S_AO) = sum w).
"""

from __future__ import annotations

import numpy as np

from rho_data.orbital_fields import DEFAULT_DEGENERACY_EV, FieldSpec, KohnShamStates, orbital_weights, parse_field


def kohn_sham_states(mf) -> KohnShamStates:
    """Orbital energies and occupations of a restricted or unrestricted molecular SCF."""
    return KohnShamStates.of(np.asarray(mf.mo_energy), np.asarray(mf.mo_occ))


def field_density_matrix(mf, field: FieldSpec | str, *, degeneracy_ev: float = DEFAULT_DEGENERACY_EV) -> tuple[np.ndarray, float]:
    """(D_f in the AO basis, integral of the field) for one field of a converged SCF."""
    spec = parse_field(field) if isinstance(field, str) else field
    weights = orbital_weights(spec, kohn_sham_states(mf), degeneracy_ev=degeneracy_ev)[:, 0]  # (spin, orbital)
    coefficients = np.asarray(mf.mo_coeff)
    if coefficients.ndim == 2:
        coefficients = coefficients[None]
    matrix = sum((c * w) @ c.T for c, w in zip(coefficients, weights))
    return 0.5 * (matrix + matrix.T), float(weights.sum())
