"""SCF initial guesses from auxiliary-basis density coefficients, and PySCF's own guesses.

From coefficients d (rho(r) = sum_P d_P phi_P(r)) the guess is one Kohn-Sham step:
F = h + J[rho] + V_xc[rho], diagonalised with the AO overlap, occupied (aufbau), and the density
matrix passed to the SCF as ``dm0``.

- J: for a density-fitted SCF from the SCF's own DF tensors (built once; the SCF reuses them):
  with B = L^-1 (Q|ij) (PySCF's ``_cderi``, j2c = L L^T), J_ij = sum_Q B_Qij c_Q, c = L^-1 (Q|P) d,
  the Coulomb potential of rho as the SCF's own DF represents it. For an exact-integral SCF
  (``scf_density_fit: false``) J_ij = sum_P d_P (ij|P) from three-centre integrals.
- V_xc: the functional's semilocal (LDA or GGA) potential of rho evaluated on a DFT grid of level
  ``guess_grid_level`` (coarser than the SCF's: evaluating the auxiliary functions and their
  gradients on the grid is the cost), auxiliary shells screened per block of points
  (``numint.make_mask``). The exact-exchange part of a hybrid is left out of the guess (it needs
  a density matrix); Hartree-Fock uses Slater exchange. Points where rho < 1e-10 (an ML density
  may dip below zero) contribute nothing.
- Open shell (2S > 0): the same restricted F for both spins, occupied N_alpha / N_beta.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np

from rho_data import RhoFile
from rho_data.checks import require_finite
from rho_data.elements import symbol

from .basis import canonical_permutation, make_mole, to_pyscf_order
from .compute import make_scf
from .errors import PyscfIoError
from .fields import structure_charge_spin
from .fit import function_integrals

#: Guesses built from coefficients: the predictions ('ml') and the dataset's own RI fit ('ri').
COEFFICIENT_GUESSES = ("ml", "ri")
#: PySCF's guesses (``mf.init_guess``); vsap only for DFT (PySCF silently uses minao otherwise).
PYSCF_GUESSES = ("minao", "atom", "huckel", "mod_huckel", "vsap", "sap", "1e")
#: Settings the guess command rebuilds from the dataset's provenance.
REBUILT = ("xc", "scf_aux_basis", "grid_level", "scf_conv_tol", "scf_max_cycle")
#: |N_guess - N| above which the guess's electron count is reported (it is always renormalised).
ELECTRON_TOLERANCE = 1e-3
RHO_FLOOR = 1e-10


def scf_settings(dataset: RhoFile) -> dict:
    """The SCF settings of a pyscf-io dataset (its provenance), or one line saying what is missing."""
    prov = dataset.provenance
    extra = prov.extra
    if prov.producer != "pyscf-io" or "ao_basis" not in extra or "aux_basis" not in extra:
        raise PyscfIoError(
            f"was not written by pyscf-io (producer '{prov.producer}'), its SCF settings cannot be rebuilt", path=dataset.path
        )
    stored = extra.get("settings")
    if not isinstance(stored, dict):
        raise PyscfIoError("has no SCF settings in its provenance (extra.settings), they cannot be rebuilt", path=dataset.path)
    missing = [k for k in REBUILT if k not in stored]
    if missing:
        raise PyscfIoError(f"provenance settings lack {', '.join(missing)}: the SCF cannot be rebuilt", path=dataset.path)
    settings = {k: stored[k] for k in REBUILT}
    settings["scf_density_fit"] = bool(stored.get("scf_density_fit", True))
    return settings


def guess_xc(xc: str) -> tuple[str, str]:
    """(functional, 'LDA' or 'GGA') whose potential the guess uses; meta-GGAs are refused."""
    from pyscf.dft import numint

    if xc.upper() == "HF":
        return "lda,", "LDA"
    ni = numint.NumInt()
    kind = ni.libxc.xc_type(xc)
    if kind not in ("LDA", "GGA"):
        raise PyscfIoError(f"a density guess needs an LDA or GGA functional, '{xc}' is {kind}")
    return xc, kind


@dataclass
class Molecule:
    """What one structure's SCF needs: the molecule, the fit's auxiliary molecule, its order."""

    mol: object
    auxmol: object
    perm: np.ndarray
    label: str


def rebuild_molecule(dataset: RhoFile, index: int) -> Molecule:
    """The PySCF molecules of structure ``index``; a structure that cannot be rebuilt is one line."""
    from pyscf import df

    extra = dataset.provenance.extra
    s = dataset[index]
    if s.pbc.any():
        raise PyscfIoError("is periodic: SCF guesses are built for molecules only", path=dataset.path, structure=index)
    syms = sorted({symbol(int(z)) for z in s.numbers})
    lacking = [x for x in syms if x not in extra["ao_basis"] or x not in extra["aux_basis"]]
    if lacking:
        raise PyscfIoError(f"the provenance has no basis for {', '.join(lacking)}", path=dataset.path, structure=index)
    charge, spin = structure_charge_spin(dataset, s.metadata)
    n = int(sum(int(z) for z in s.numbers)) - charge
    if n <= 0 or (n - spin) % 2 or spin > n:
        raise PyscfIoError(f"charge {charge} and spin {spin} do not fit {n} electrons", path=dataset.path, structure=index)
    mol = make_mole(s.numbers, s.positions, extra["ao_basis"], charge, spin)
    auxmol = df.addons.make_auxmol(mol, {x: extra["aux_basis"][x] for x in syms})
    perm = canonical_permutation(auxmol)
    if s.coefficients is not None and s.coefficients.shape != perm.shape:
        raise PyscfIoError(
            f"{s.coefficients.size} coefficients, the auxiliary basis has {perm.size}", path=dataset.path, structure=index
        )
    return Molecule(mol, auxmol, perm, s.label)


def coulomb_of_coefficients(mol, auxmol, d: np.ndarray) -> np.ndarray:
    """J_ij = sum_P d_P (ij|P) from three-centre integrals (the exact-integral SCF's guess)."""
    from pyscf import lib
    from pyscf.df.incore import aux_e2

    ints = aux_e2(mol, auxmol, "int3c2e", aosym="s2ij")
    return lib.unpack_tril(ints @ d)


def coulomb_from_scf_df(mf, auxmol, d: np.ndarray) -> np.ndarray:
    """J of rho = sum_P d_P phi_P through the SCF's own DF tensors (built here, reused by the SCF).

    The DF object keeps B = L^-1 (Q|ij) but not j2c = (Q|Q') nor L, so L is computed again here
    from ``int2c2e`` of the DF auxiliary molecule, as PySCF computes it (a Cholesky factor; where
    it fails PySCF decomposes j2c otherwise, and the exact integrals are used instead).
    """
    import scipy.linalg
    from pyscf import gto, lib

    with_df = mf.with_df
    naux = with_df.get_naoaux()  # builds the DF tensors when they are not yet built
    dfaux = with_df.auxmol
    try:
        low = scipy.linalg.cholesky(dfaux.intor("int2c2e"), lower=True)
    except np.linalg.LinAlgError:
        return coulomb_of_coefficients(mf.mol, auxmol, d)
    if naux != low.shape[0]:
        return coulomb_of_coefficients(mf.mol, auxmol, d)
    c = scipy.linalg.solve_triangular(low, gto.mole.intor_cross("int2c2e", dfaux, auxmol) @ d, lower=True)
    j_packed = np.zeros(mf.mol.nao_nr() * (mf.mol.nao_nr() + 1) // 2)
    start = 0
    for block in with_df.loop():  # rows of B, in order
        j_packed += c[start : start + len(block)] @ block
        start += len(block)
    return lib.unpack_tril(j_packed)


def xc_potential(mol, auxmol, d: np.ndarray, xc: str, kind: str, grid_level: int) -> tuple[np.ndarray, float]:
    """(V_xc of rho on a level-``grid_level`` grid, integral of rho on that grid).

    V_ij = sum_g w_g [v_rho phi_i phi_j + 2 v_sigma grad(rho) . grad(phi_i phi_j)] (the last term
    for a GGA), PySCF's ``numint.eval_mat`` of the potential ``eval_xc`` gives for rho.
    """
    from pyscf.dft import gen_grid, numint

    grids = gen_grid.Grids(mol)
    grids.level = grid_level
    grids.build()
    ni = numint.NumInt()
    nao = mol.nao_nr()
    gga = kind == "GGA"
    v = np.zeros((nao, nao))
    nel = 0.0
    for ao, mask, weight, coords in ni.block_loop(mol, grids, nao, 1 if gga else 0):
        amask = numint.make_mask(auxmol, coords)
        aux = auxmol.eval_gto("GTOval_sph_deriv1" if gga else "GTOval_sph", coords, non0tab=amask)
        rho = np.atleast_2d(aux @ d)  # (4, g) or (1, g)
        nel += float(rho[0] @ weight)
        low = rho[0] < RHO_FLOOR
        rho[:, low] = 0.0
        rho_in = rho if gga else rho[0]
        vxc = ni.eval_xc(xc, rho_in, spin=0, deriv=1)[1]  # (v_rho,) or (v_rho, v_sigma, ...)
        vrho = np.where(low, 0.0, vxc[0])  # a floored point contributes nothing
        vsigma = np.where(low, 0.0, vxc[1]) if gga else None
        v += numint.eval_mat(mol, ao, weight, rho_in, (vrho, vsigma), non0tab=mask, xctype=kind)
    return v, nel


@dataclass
class GuessBuild:
    dm: np.ndarray
    build_s: float
    df_s: float
    n_electrons_guess: float
    n_electrons_grid: float


def coefficient_guess(mf, auxmol, d: np.ndarray, xc: str, kind: str, grid_level: int) -> GuessBuild:
    """The density matrix of one Kohn-Sham step from rho = sum_P d_P phi_P (PySCF order, renormalised)."""
    t0 = time.perf_counter()
    mol = mf.mol
    if hasattr(mf, "with_df"):
        mf.with_df.get_naoaux()  # builds the DF tensors (timed apart: the SCF reuses them)
        df_s = time.perf_counter() - t0
        j = coulomb_from_scf_df(mf, auxmol, d)
    else:
        df_s = 0.0
        j = coulomb_of_coefficients(mol, auxmol, d)
    v, nel_grid = xc_potential(mol, auxmol, d, xc, kind, grid_level)
    f = mf.get_hcore() + j + v
    s = mf.get_ovlp()
    if mol.spin:
        f = np.array([f, f])
    mo_e, mo_c = mf.eig(f, s)
    dm = mf.make_rdm1(mo_c, mf.get_occ(mo_e, mo_c))
    return GuessBuild(np.asarray(dm), time.perf_counter() - t0, df_s, float(function_integrals(auxmol) @ d), nel_grid)


def normalised(d: np.ndarray, auxmol, n_electrons: int) -> tuple[np.ndarray, float]:
    """(d scaled so that its analytic integral is N, the integral before scaling)."""
    n = float(function_integrals(auxmol) @ d)
    if not np.isfinite(n) or n <= 0:
        raise PyscfIoError(f"the density integrates to {n:g} electrons, no guess can be built from it")
    return d * (n_electrons / n), n


def run_one(mf, guess: str, dm0: np.ndarray | None) -> dict:
    """Run the SCF from ``dm0`` (or PySCF's ``guess``); cycles, energy, time."""
    t0 = time.perf_counter()
    with warnings.catch_warnings():  # PySCF's atom guess calls its own deprecated remove_linear_dep_
        warnings.simplefilter("ignore", DeprecationWarning)
        if dm0 is None:
            mf.init_guess = guess
            mf.kernel()
        else:
            mf.kernel(dm0=dm0)
    return {
        "scf_s": time.perf_counter() - t0,
        "cycles": int(getattr(mf, "cycles", -1)),
        "converged": bool(mf.converged),
        "energy_ha": float(mf.e_tot),
    }


def structure_guesses(
    mol: Molecule,
    settings: dict,
    guesses: list[str],
    coefficients: dict[str, np.ndarray],
    guess_grid_level: int,
    warn=None,
    where: str = "",
) -> list[dict]:
    """One row per guess: cycles, SCF time, guess-build time, total, energy, electron counts."""
    xc, kind = guess_xc(settings["xc"])
    rows = []
    for guess in guesses:
        row = {"guess": guess, "build_s": 0.0, "df_build_s": 0.0, "n_electrons_guess": float("nan"), "renormalised": False}
        if guess in COEFFICIENT_GUESSES:  # checked before the SCF object (and its DF temporary file) exists
            c = np.asarray(coefficients[guess], dtype=np.float64)
            require_finite(c, f"{guess} coefficients", error=PyscfIoError)
            d = to_pyscf_order(c, mol.perm)
            d, n = normalised(d, mol.auxmol, mol.mol.nelectron)
            row["n_electrons_guess"] = n
            if abs(n - mol.mol.nelectron) > ELECTRON_TOLERANCE:
                row["renormalised"] = True
                if warn is not None:
                    warn(
                        f"{where}: the {guess} density has {n:.6f} electrons, not {mol.mol.nelectron} "
                        f"(off by {n - mol.mol.nelectron:+.2e}); the guess is renormalised to {mol.mol.nelectron}"
                    )
            mf = make_scf(mol.mol, settings)
            built = coefficient_guess(mf, mol.auxmol, d, xc, kind, guess_grid_level)
            row["build_s"], row["df_build_s"] = built.build_s, built.df_s
            require_finite(built.dm, f"{guess} guess density matrix", error=PyscfIoError)
            row.update(run_one(mf, guess, built.dm))
        else:
            mf = make_scf(mol.mol, settings)
            if guess == "vsap" and not hasattr(mf, "init_guess_by_vsap"):
                raise PyscfIoError("the vsap guess needs a DFT functional (PySCF would silently use minao)")
            row.update(run_one(mf, guess, None))
        row["total_s"] = row["build_s"] + row["scf_s"]
        rows.append(row)
    return rows
