"""One periodic structure: the SCF of the cell and the fit of its density over lattice-summed functions.

The density of the cell, rho(r) = (1/Nk) sum_k sum_mn D^k_mn chi^k_m(r) conj(chi^k_n(r)), is fitted as
rho(r) ~ sum_T sum_P d_P phi_P(r - T) in the overlap metric:

    S_PQ = sum_T <phi_P | phi_Q(. - T)>,   w_P = int_cell rho(r) sum_T phi_P(r - T) dr,   d = S^+ w

(``solve_metric``: the eigen-solve with the conditioning guard of molecules). ``cell_fit_integrals``:
``grid`` sums w on the SCF's own uniform mesh (``cell.mesh``, weights vol/n; the same grid functions as
the field builder), ``analytic`` takes w from the Gamma-point three-centre overlaps (mn|P).
The fit error (%NMAE, squared error) is measured on the same uniform mesh, stored as grid_mesh_a/b/c.
"""

from __future__ import annotations

import time

import numpy as np

from rho_data import Structure
from rho_data.elements import symbol
from rho_data.grid_errors import field_errors
from rho_data.orbital_fields import nmae_normalisation

from .cell import kpoints, make_auxcell, make_cell, make_cell_scf
from .compute import FitResult, check_converged, make_record
from .context import RunContext
from .fit import density_integrals, metric_matrix, solve_metric
from .geometry import InputStructure
from .grid import cell_ao_density, cell_aux_density, cell_aux_projections, uniform_grid


def run_cell_scf(cell, settings: dict):
    """The SCF of the cell at the Gamma point or on ``settings["kmesh"]``, run; (mf, k-points or None)."""
    kpts = kpoints(cell, settings["kmesh"])
    mf = make_cell_scf(cell, settings, kpts)
    mf.kernel()
    return mf, kpts


def fit_cell(
    cell, auxcell, dm: np.ndarray, kpts: np.ndarray | None, settings: dict, normalisation: str
) -> tuple[FitResult, tuple[int, ...]]:
    """The overlap-metric fit of the cell's SCF density (module doc) and its error on the SCF's uniform mesh."""
    t0 = time.perf_counter()
    mesh = tuple(int(n) for n in cell.mesh)
    points, weights = uniform_grid(cell, mesh)
    scf_density = cell_ao_density(cell, dm, points, kpts)
    if settings["cell_fit_integrals"] == "analytic":
        rhs = density_integrals(cell, auxcell, dm, "overlap")
    else:
        rhs = cell_aux_projections(auxcell, points, weights, scf_density)
    overlap = metric_matrix(auxcell, "overlap")
    coeffs, info = solve_metric(overlap, rhs[None], settings["fit_rcond"])
    time_fit = time.perf_counter() - t0
    errors = [field_errors(weights, cell_aux_density(auxcell, coeffs[0], points), scf_density, normalisation)]
    return FitResult(coeffs, overlap, info, errors, time_fit), mesh


def compute_cell(inp: InputStructure, ctx: RunContext, input_index: int = -1) -> Structure:
    """The rho-data record of one periodic structure (checked by ``check_structure`` before)."""
    s = ctx.settings
    cell = make_cell(inp.numbers, inp.positions_array, inp.cell_array, inp.pbc, ctx.ao, s["pseudo"])
    t0 = time.perf_counter()
    mf, kpts = run_cell_scf(cell, s)
    time_scf = time.perf_counter() - t0
    check_converged(mf, s, periodic=True)
    dm = np.asarray(mf.make_rdm1())

    auxcell = make_auxcell(cell, {sym: ctx.aux[sym] for sym in {symbol(z) for z in inp.numbers}})
    fit, mesh = fit_cell(cell, auxcell, dm, kpts, s, nmae_normalisation(ctx.fields()[0]))
    if kpts is None:
        extras = {"density_matrix": dm.reshape(-1)}
    else:
        extras = {"density_matrix_k": np.stack([dm.real, dm.imag], axis=1).reshape(-1)}
    mesh_metadata = {f"grid_mesh_{axis}": float(n) for axis, n in zip("abc", mesh)}
    return make_record(inp, ctx, auxcell, mf, time_scf, fit, [dm], [float(cell.nelectron)], extras, input_index, mesh_metadata)
