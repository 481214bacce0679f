"""Properties read off the coefficients (no grid): electron count, dipole, electrostatic energies,
and SALTED's coefficient-space %RMSE.

For a density rho = sum_b d_b phi_b (canonical order):

- electrons      N = sum_b d_b integral phi_b                          (rho_data.moments, analytic)
                 and its error N - N_ref (N_RI from the RI coefficients, N_SCF from ``scf_properties``)
- dipole         mu = sum_A Z_A R_A - integral r rho                    (a.u.; reported in debye)
- Hartree energy E_H = 1/2 d^T J d, J_PQ = (P|Q)                        (backend ``coulomb_matrix``)
- e-n energy     E_en = -v^T d, v_P = integral phi_P sum_A Z_A/|r-R_A|  (backend ``nuclear_potential``)
- electrostatic  E_es = E_H + E_en (the electron-electron and electron-nuclear Coulomb energy)

The SCF values come from the backend's ``scf_properties`` (``n_electrons``, ``dipole_au`` (the
total dipole, nuclear minus electronic), ``hartree_energy_ha``, ``electron_nuclear_energy_ha``).
A basis without Gaussian radial functions has no analytic moments and a backend without these
methods has no energies: the columns are then NaN and the summary says why.

A periodic structure (any pbc) gets its electron count per cell only (the integral of a lattice-summed
function over the cell is that of one function over all space; N_SCF is the dataset's ``n_electrons``):
dipole and electrostatic energies are not defined per cell without more theory, so they are skipped
(NaN, the reason in the summary's notes) and the backend's property methods are not called.

SALTED's %RMSE = 100 sqrt(sum_s dc_s^T S_s dc_s / sum_s (c_s - cbar)^T S_s (c_s - cbar)), with
c_s the RI coefficients and cbar the species-averaged l = 0 coefficients of the evaluated
reference structures (:func:`species_mean`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from rho_data import AuxiliaryBasis, RhoFile
from rho_data.moments import dipole_moment, electron_count, has_analytic_moments
from rho_data.units import BOHR_PER_ANGSTROM, DEBYE_PER_AU, KCAL_MOL_PER_HARTREE

from .errors import RhoEvalError

ENERGY_METHODS = ("coulomb_matrix", "nuclear_potential")
SCF_METHOD = "scf_properties"

#: Per-structure error columns whose summary also gets MAE and RMSE (signed electron-count and energy errors,
#: dipole error norms).
ERROR_COLUMNS = (
    "n_electrons_error_{ref}",
    "dipole_error_{ref}_debye",
    "hartree_error_{ref}_kcal_mol",
    "electrostatic_error_{ref}_kcal_mol",
)


def property_columns(predicted_vs: tuple[str, ...], rmse: bool) -> list[str]:
    """The property columns of a run comparing the prediction with ``predicted_vs`` (("ri", "scf") or ("scf",))."""
    cols = ["n_electrons_coef_pred"] + [f"n_electrons_error_{ref}" for ref in predicted_vs]
    cols += ["dipole_pred_debye"] + [f"dipole_{ref}_debye" for ref in predicted_vs]
    cols += [f"dipole_error_{ref}_debye" for ref in predicted_vs]
    cols += ["hartree_energy_pred_ha", "electrostatic_energy_pred_ha"]
    cols += [c.format(ref=ref) for ref in predicted_vs for c in ERROR_COLUMNS[2:]]
    if rmse:
        cols += ["rmse_denominator_ri", "rmse_coef_ri_percent"]
    return cols


def species_mean(dataset: RhoFile, indices: Iterable[int], target: str | None = None) -> dict[int, np.ndarray]:
    """cbar per atomic number: the mean over all atoms of that element in ``indices`` of each of
    its coefficients (of ``target``; None: the main one), kept for l = 0 and zero for l > 0 (one
    element-sized vector each)."""
    sums: dict[int, np.ndarray] = {}
    counts: dict[int, int] = {}
    for index in indices:
        numbers, coefficients = dataset.numbers(index), dataset.coefficients(index, target)
        start = 0
        for z in numbers:
            element = dataset.basis[int(z)]
            block = coefficients[start : start + element.n_functions]
            sums[int(z)] = sums.get(int(z), 0.0) + block
            counts[int(z)] = counts.get(int(z), 0) + 1
            start += element.n_functions
    out = {}
    for z, total in sums.items():
        mean = np.zeros_like(total)
        for l, sl in dataset.basis[z].l_slices():
            if l == 0:
                mean[sl] = total[sl] / counts[z]
        out[z] = mean
    return out


def mean_vector(basis: AuxiliaryBasis, numbers: np.ndarray, cbar: Mapping[int, np.ndarray]) -> np.ndarray:
    """cbar laid out for one structure (canonical order)."""
    return np.concatenate([np.asarray(cbar[int(z)]) for z in numbers])


PERIODIC_NOTE = (
    "periodic structures: %NMAE, squared errors and electron counts are per unit cell (lattice-summed fields on the cell's grid); "
    "dipole and electrostatic properties are not defined per cell here and were skipped"
)


def backend_notes(builder: Any, producer: str, basis: AuxiliaryBasis) -> list[str]:
    """Why some property columns are empty (NaN) for this backend and basis."""
    notes = []
    if not has_analytic_moments(basis):
        notes.append("the auxiliary basis has numeric radial functions (no Gaussian data): no electron count or dipole from the coefficients")
    missing = [m for m in (*ENERGY_METHODS, SCF_METHOD) if not callable(getattr(builder, m, None))]
    if missing:
        notes.append(f"the '{producer}' field builder has no {', '.join(missing)}: the properties that need them are left out")
    return notes


def structure_properties(
    dataset: RhoFile,
    index: int,
    structure: Any,
    coefficients: Mapping[str, np.ndarray],
    predicted: str,
    references: tuple[str, ...],
    builder: Any,
    cbar: Mapping[int, np.ndarray] | None = None,
) -> dict[str, float]:
    """The property columns of one structure (NaN where the basis or the backend cannot give them)."""
    numbers = np.asarray(structure.numbers)
    positions = np.asarray(structure.positions, dtype=np.float64) * BOHR_PER_ANGSTROM
    d = {name: np.asarray(c, dtype=np.float64) for name, c in coefficients.items()}
    periodic = bool(np.any(getattr(structure, "pbc", False)))
    if periodic:
        counted = float(getattr(structure, "metadata", {}).get("n_electrons", float("nan")))
        scf = {"n_electrons": counted} if np.isfinite(counted) else None
    else:
        scf = builder.scf_properties(dataset, index) if callable(getattr(builder, SCF_METHOD, None)) else None
    compared = _Compared(d, predicted, references, scf)
    computed: dict[str, float] = {}
    if has_analytic_moments(dataset.basis, numbers):
        computed.update(_moments(dataset.basis, numbers, positions, compared, dipoles=not periodic))
    if not periodic and all(callable(getattr(builder, m, None)) for m in ENERGY_METHODS):
        J = np.asarray(builder.coulomb_matrix(dataset, index), dtype=np.float64)
        v = np.asarray(builder.nuclear_potential(dataset, index), dtype=np.float64)
        computed.update(_energies(J, v, compared))
    if cbar is not None and structure.overlap is not None and "ri" in d:
        centred = d["ri"] - mean_vector(dataset.basis, numbers, cbar)
        denominator = structure.overlap.quadratic(centred)
        numerator = structure.overlap.quadratic(d[predicted] - d["ri"])
        computed["rmse_denominator_ri"] = denominator
        computed["rmse_coef_ri_percent"] = 100.0 * float(np.sqrt(numerator / denominator))
    wrong = sorted(k for k, v in computed.items() if not np.isfinite(v))
    if wrong:
        raise RhoEvalError(f"non-finite properties {wrong} (from the coefficients or the backend)", path=dataset.path, structure=index)
    out = dict.fromkeys(property_columns(references, cbar is not None), float("nan"))
    out.update(computed)
    return out


@dataclass(frozen=True)
class _Compared:
    """The coefficient vectors of one structure by name, which one is predicted, the references, the backend's SCF values."""

    d: Mapping[str, np.ndarray]
    predicted: str
    references: tuple[str, ...]
    scf: Mapping[str, Any] | None


def _moments(basis: AuxiliaryBasis, numbers: np.ndarray, positions: np.ndarray, compared: _Compared, dipoles: bool = True) -> dict[str, float]:
    """Electron counts and (``dipoles``) dipoles (Debye) from the coefficients, and their errors against the references."""
    d, predicted, references, scf = compared.d, compared.predicted, compared.references, compared.scf
    out: dict[str, float] = {}
    out["n_electrons_coef_pred"] = electron_count(basis, numbers, d[predicted])
    for ref in references:
        if ref == "scf" and scf is not None:
            out["n_electrons_error_scf"] = out["n_electrons_coef_pred"] - float(scf["n_electrons"])
        elif ref in d:
            out[f"n_electrons_error_{ref}"] = out["n_electrons_coef_pred"] - electron_count(basis, numbers, d[ref])
    if not dipoles:
        return out
    mu = {name: dipole_moment(basis, numbers, positions, c) for name, c in d.items()}
    if scf is not None:
        mu["scf"] = np.asarray(scf["dipole_au"], dtype=np.float64).reshape(3)
    out["dipole_pred_debye"] = DEBYE_PER_AU * float(np.linalg.norm(mu[predicted]))
    for ref in references:
        if ref in mu:
            out[f"dipole_{ref}_debye"] = DEBYE_PER_AU * float(np.linalg.norm(mu[ref]))
            out[f"dipole_error_{ref}_debye"] = DEBYE_PER_AU * float(np.linalg.norm(mu[predicted] - mu[ref]))
    return out


def _energies(J: np.ndarray, v: np.ndarray, compared: _Compared) -> dict[str, float]:
    """Hartree energy 1/2 d^T J d and electrostatic energy 1/2 d^T J d - v^T d, and their errors (kcal/mol)."""
    d, predicted, references, scf = compared.d, compared.predicted, compared.references, compared.scf
    out: dict[str, float] = {}
    hartree = {name: 0.5 * float(c @ J @ c) for name, c in d.items()}
    total = {name: hartree[name] - float(v @ c) for name, c in d.items()}
    if scf is not None:
        hartree["scf"] = float(scf["hartree_energy_ha"])
        total["scf"] = hartree["scf"] + float(scf["electron_nuclear_energy_ha"])
    out["hartree_energy_pred_ha"] = hartree[predicted]
    out["electrostatic_energy_pred_ha"] = total[predicted]
    for ref in references:
        if ref in hartree:
            out[f"hartree_error_{ref}_kcal_mol"] = KCAL_MOL_PER_HARTREE * (hartree[predicted] - hartree[ref])
            out[f"electrostatic_error_{ref}_kcal_mol"] = KCAL_MOL_PER_HARTREE * (total[predicted] - total[ref])
    return out
