"""One structure: checks, density-fitted SCF, RI fit, and the rho-data record."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from rho_data import BlockSparseOverlap, Structure, TargetValues
from rho_data.elements import symbol
from rho_data.grid_errors import field_errors
from rho_data.orbital_fields import FieldSpec, nmae_normalisation, target_name

from .basis import canonical_permutation, make_mole
from .cell import closest_pair
from .config import fit_metric
from .context import RunContext
from .errors import PyscfIoError
from .field_matrices import field_density_matrix
from .fit import SolveInfo, density_integrals, function_integrals, metric_matrix, solve_metric
from .geometry import InputStructure
from .grid import ao_density, aux_density, dft_grid


class ScfNotConverged(PyscfIoError):
    """The SCF stopped at its cycle limit."""


def check_structure(inp: InputStructure, ctx: RunContext) -> None:
    """Input errors found before any SCF: missing basis, spin parity, overlapping atoms."""
    s = ctx.settings
    for z in sorted(set(inp.numbers)):
        sym = symbol(z)
        if sym in ctx.missing:
            raise PyscfIoError(ctx.missing[sym])
        if sym not in ctx.ao or sym not in ctx.aux:
            raise PyscfIoError(f"no basis was prepared for element {sym}")
    charge, spin = inp.charge_spin(s)
    where = "the structure's" if (inp.charge, inp.spin) != (None, None) else "the settings'"
    n_electrons = sum(inp.numbers) - charge
    if n_electrons <= 0:
        raise PyscfIoError(f"charge {charge} ({where} charge/spin) leaves {n_electrons} electrons")
    if (n_electrons - spin) % 2 or spin > n_electrons:
        raise PyscfIoError(
            f"{n_electrons} electrons cannot have spin 2S = {spin} ({where} charge/spin; "
            "set 'spin' or 'charge', or the extxyz info keys charge, spin or multiplicity)"
        )
    if spin == 0 and any(f.kind == "spin_density" for f in ctx.fields()):
        raise PyscfIoError(
            f"field 'spin_density': the structure is a singlet ({where} spin 2S = 0), whose spin density is zero "
            "everywhere; give it spin > 0 or drop the field"
        )
    if inp.periodic and (charge or spin):
        raise PyscfIoError(
            f"a periodic structure must be neutral and closed-shell (charge 0, spin 0; {where} are {charge}, {spin})"
        )
    i, j, distance = closest_pair(inp.positions_array, inp.cell_array, inp.pbc)
    if distance < s["min_distance"]:
        direct = float(np.linalg.norm(inp.positions_array[i] - inp.positions_array[j]))
        if i == j:
            who = f"atom {i} and its own periodic image"
        else:
            who = f"atoms {i} and {j}" + (" (through the cell boundary)" if direct > distance + 1e-9 else "")
        raise PyscfIoError(f"{who} are {distance:.3f} A apart (min_distance {s['min_distance']} A)")


def make_scf(mol, settings: dict):
    """The Kohn-Sham (or Hartree-Fock for xc: HF) object of the settings, not run.

    Density-fitted on ``scf_aux_basis`` unless ``scf_density_fit`` is false (exact integrals).
    """
    from pyscf import dft, scf

    hf = settings["xc"].upper() == "HF"
    if hf:
        mf = scf.RHF(mol) if mol.spin == 0 else scf.UHF(mol)
    else:
        mf = dft.RKS(mol) if mol.spin == 0 else dft.UKS(mol)
        mf.xc = settings["xc"]
        mf.grids.level = settings["grid_level"]
    if settings.get("scf_density_fit", True):
        mf = mf.density_fit(auxbasis=settings["scf_aux_basis"])
    mf.conv_tol = settings["scf_conv_tol"]
    mf.max_cycle = settings["scf_max_cycle"]
    mf.verbose = 0
    return mf


def run_scf(mol, settings: dict):
    """The SCF of :func:`make_scf`, run."""
    mf = make_scf(mol, settings)
    mf.kernel()
    return mf


def total_density_matrix(mf) -> np.ndarray:
    dm = np.asarray(mf.make_rdm1())
    return dm if dm.ndim == 2 else dm[0] + dm[1]


def compute_structure(inp: InputStructure, ctx: RunContext, input_index: int = -1) -> Structure:
    """The rho-data record of one structure; raises PyscfIoError (or ScfNotConverged)."""
    from pyscf import df

    s = ctx.settings
    check_structure(inp, ctx)
    if inp.periodic:
        from .cell_compute import compute_cell

        return compute_cell(inp, ctx, input_index)
    charge, spin = inp.charge_spin(s)
    mol = make_mole(inp.numbers, inp.positions_array, ctx.ao, charge, spin)

    t0 = time.perf_counter()
    mf = run_scf(mol, s)
    time_scf = time.perf_counter() - t0
    check_converged(mf, s)
    dm = total_density_matrix(mf)

    t0 = time.perf_counter()
    auxmol = df.addons.make_auxmol(mol, {sym: ctx.aux[sym] for sym in {symbol(z) for z in inp.numbers}})
    fields = ctx.fields()
    matrices, integrals = field_matrices(mf, fields, dm, s["degeneracy_ev"])
    metric = fit_metric(s)
    rhs = density_integrals(mol, auxmol, np.stack(matrices), metric)
    coeffs, info = solve_metric(metric_matrix(auxmol, metric), rhs, s["fit_rcond"])
    overlap = auxmol.intor("int1e_ovlp")
    overlap = 0.5 * (overlap + overlap.T)  # exactly symmetric (libcint's blocks differ in the last bit)
    time_fit = time.perf_counter() - t0

    points, weights = dft_grid(mol, s["grid_level"])
    errors = [
        field_errors(weights, aux_density(auxmol, c, points), ao_density(mol, m, points), nmae_normalisation(f))
        for f, c, m in zip(fields, coeffs, matrices)
    ]
    fit = FitResult(coeffs, overlap, info, errors, time_fit)
    return make_record(inp, ctx, auxmol, mf, time_scf, fit, matrices, integrals, {"density_matrix": dm.reshape(-1)}, input_index)


def check_converged(mf, settings: dict, periodic: bool = False) -> None:
    """Raise ScfNotConverged for an SCF that stopped at its cycle limit."""
    if not mf.converged:
        hint = ""
        if periodic and settings["cell_smearing_ev"] == 0:
            hint = "; a cell whose gap closes at its k-points needs smearing (e.g. --set cell_smearing_ev=0.1) or a k-mesh"
        raise ScfNotConverged(
            f"SCF did not converge in {settings['scf_max_cycle']} cycles (conv_tol {settings['scf_conv_tol']:g}){hint}"
        )


@dataclass(frozen=True)
class FitResult:
    """The fit of the K fields of one structure: coefficients (K, n_aux) and overlap in PySCF order."""

    coeffs: np.ndarray
    overlap: np.ndarray
    info: SolveInfo
    errors: list[dict]
    time_fit: float


def make_record(
    inp: InputStructure,
    ctx: RunContext,
    auxmol,
    mf,
    time_scf: float,
    fit: FitResult,
    matrices: list[np.ndarray],
    integrals: list[float],
    extras: dict[str, np.ndarray],
    input_index: int,
    metadata: dict[str, float] | None = None,
) -> Structure:
    """The rho-data record (canonical order, block-sparse overlap, metadata) of a fitted structure,
    a molecule or a cell."""
    s = ctx.settings
    charge, spin = inp.charge_spin(s)
    coeffs = fit.coeffs
    projections = coeffs @ fit.overlap
    n_fit = coeffs @ function_integrals(auxmol)
    fields = ctx.fields()
    perm = canonical_permutation(auxmol)
    basis = ctx.basis()
    sizes = basis.atom_sizes(np.array(inp.numbers))
    if sizes.sum() != len(perm):
        raise PyscfIoError(f"internal: {len(perm)} auxiliary functions, the dataset basis expects {sizes.sum()}")
    sparse = BlockSparseOverlap.from_dense(fit.overlap[np.ix_(perm, perm)], sizes, s["overlap_threshold"])
    errors = fit.errors
    metadata = {
        "energy": float(mf.e_tot),
        "scf_converged": 1.0,
        "scf_cycles": float(getattr(mf, "cycles", -1)),
        "n_electrons": float(mf.mol.nelectron),
        "n_electrons_fit": float(n_fit[0]),
        "fit_nmae_percent": errors[0]["nmae_percent"],
        "fit_squared_error": errors[0]["squared_error"],
        "time_scf_s": time_scf,
        "time_fit_s": fit.time_fit,
        "fit_dropped": float(fit.info.dropped),
        "fit_condition": fit.info.condition,
        "input_index": float(input_index),
        "charge": float(charge),
        "spin": float(spin),
        **(metadata or {}),
    }
    if fields[0].kind != "density":
        metadata["field_integral"] = integrals[0]
    targets = {}
    for k, field in enumerate(fields):
        name = target_name(field)
        if field.kind != "density":
            extras[f"density_matrix@{name}"] = matrices[k].reshape(-1)
        if k:
            targets[name] = TargetValues(coeffs[k][perm], projections[k][perm])
            metadata.update(
                {
                    f"field_integral@{name}": integrals[k],
                    f"n_fit@{name}": float(n_fit[k]),
                    f"fit_nmae_percent@{name}": errors[k]["nmae_percent"],
                    f"fit_squared_error@{name}": errors[k]["squared_error"],
                }
            )
    return Structure(
        numbers=np.array(inp.numbers),
        positions=inp.positions_array,
        cell=inp.cell_array,
        pbc=np.array(inp.pbc, dtype=bool),
        label=inp.label,
        coefficients=coeffs[0][perm],
        projections=projections[0][perm],
        overlap=sparse,
        metadata=metadata,
        extras=extras,
        targets=targets,
    )


def field_matrices(mf, fields: list[FieldSpec], dm: np.ndarray, degeneracy_ev: float) -> tuple[list[np.ndarray], list[float]]:
    """AO density matrices and integrals of the fields (the density: the SCF's total density matrix)."""
    matrices, integrals = [], []
    for field in fields:
        if field.kind == "density":
            matrix, integral = dm, float(mf.mol.nelectron)
        else:
            matrix, integral = field_density_matrix(mf, field, degeneracy_ev=degeneracy_ev)
        matrices.append(matrix)
        integrals.append(integral)
    return matrices, integrals
