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
- Gamma-point cells (pbc T T T or T T F, ``kmesh: [1, 1, 1]``): J and V_xc of the lattice-summed
  density on the SCF's uniform mesh (:func:`pyscf_io.guess_potential.cell_fock_potential`), the SCF
  rebuilt as the dataset ran it (``cell_scf``, smearing). Of PySCF's guesses minao, atom and 1e
  are offered for cells.
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
from .cell import make_auxcell, make_cell, make_cell_scf
from .compute import make_scf
from .errors import PyscfIoError
from .fields import structure_charge_spin
from .fit import function_integrals
from .guess_potential import cell_fock_potential, coulomb_from_scf_df, coulomb_of_coefficients, xc_potential

#: Guesses built from coefficients: the predictions ('ml') and the dataset's own RI fit ('ri').
COEFFICIENT_GUESSES = ("ml", "ri")
#: PySCF's guesses (``mf.init_guess``); vsap only for DFT (PySCF silently uses minao otherwise).
PYSCF_GUESSES = ("minao", "atom", "huckel", "mod_huckel", "vsap", "sap", "1e")
#: PySCF's guesses that its periodic SCF has.
CELL_PYSCF_GUESSES = ("minao", "atom", "1e")
#: Settings the guess command rebuilds from the dataset's provenance (and, for cells, CELL_REBUILT).
REBUILT = ("xc", "scf_aux_basis", "grid_level", "scf_conv_tol", "scf_max_cycle")
CELL_REBUILT = ("cell_scf", "cell_smearing_ev", "kmesh")
#: |N_guess - N| above which the guess's electron count is reported (it is always renormalised).
ELECTRON_TOLERANCE = 1e-3


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
    periodic = bool(extra.get("periodic", False))
    keys = REBUILT + (CELL_REBUILT if periodic else ())
    missing = [k for k in keys if k not in stored]
    if missing:
        raise PyscfIoError(f"provenance settings lack {', '.join(missing)}: the SCF cannot be rebuilt", path=dataset.path)
    settings = {k: stored[k] for k in keys}
    settings["scf_density_fit"] = bool(stored.get("scf_density_fit", True))
    settings["periodic"] = periodic
    if periodic and list(settings["kmesh"]) != [1, 1, 1]:
        raise PyscfIoError(
            f"was computed on a {'x'.join(map(str, settings['kmesh']))} k-mesh: SCF guesses are built for "
            "molecules and Gamma-point cells only",
            path=dataset.path,
        )
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
    """What one structure's SCF needs: the molecule (or Cell), the fit's auxiliary molecule (or Cell), its order."""

    mol: object
    auxmol: object
    perm: np.ndarray
    label: str
    periodic: bool = False


def rebuild_molecule(dataset: RhoFile, index: int) -> Molecule:
    """The PySCF molecules of structure ``index``; a structure that cannot be rebuilt is one line."""
    from pyscf import df

    extra = dataset.provenance.extra
    s = dataset[index]
    periodic = bool(s.pbc.any())
    if periodic != bool(extra.get("periodic", False)):
        kind = "periodic" if periodic else "a molecule"
        raise PyscfIoError(f"is {kind}, unlike the dataset's SCF settings", path=dataset.path, structure=index)
    syms = sorted({symbol(int(z)) for z in s.numbers})
    lacking = [x for x in syms if x not in extra["ao_basis"] or x not in extra["aux_basis"]]
    if lacking:
        raise PyscfIoError(f"the provenance has no basis for {', '.join(lacking)}", path=dataset.path, structure=index)
    charge, spin = structure_charge_spin(dataset, s.metadata)
    n = int(sum(int(z) for z in s.numbers)) - charge
    if n <= 0 or (n - spin) % 2 or spin > n:
        raise PyscfIoError(f"charge {charge} and spin {spin} do not fit {n} electrons", path=dataset.path, structure=index)
    aux = {x: extra["aux_basis"][x] for x in syms}
    if periodic:
        if charge or spin:
            raise PyscfIoError(
                f"a cell of charge {charge} and spin {spin}: cells are neutral and closed-shell",
                path=dataset.path,
                structure=index,
            )
        mol = make_cell(s.numbers, s.positions, s.cell, s.pbc, extra["ao_basis"], extra.get("pseudo"))
        auxmol = make_auxcell(mol, aux)
    else:
        mol = make_mole(s.numbers, s.positions, extra["ao_basis"], charge, spin)
        auxmol = df.addons.make_auxmol(mol, aux)
    perm = canonical_permutation(auxmol)
    if s.coefficients is not None and s.coefficients.shape != perm.shape:
        raise PyscfIoError(
            f"{s.coefficients.size} coefficients, the auxiliary basis has {perm.size}", path=dataset.path, structure=index
        )
    return Molecule(mol, auxmol, perm, s.label, periodic)


@dataclass
class GuessBuild:
    dm: np.ndarray
    build_s: float
    df_s: float
    n_electrons_guess: float
    n_electrons_grid: float


def coefficient_guess(mf, auxmol, d: np.ndarray, xc: str, kind: str, grid_level: int, periodic: bool = False) -> GuessBuild:
    """The density matrix of one Kohn-Sham step from rho = sum_P d_P phi_P (PySCF order, renormalised);
    ``periodic``: a Gamma-point cell, its potential on the SCF's uniform mesh (``grid_level`` unused)."""
    t0 = time.perf_counter()
    mol = mf.mol
    if periodic:
        df_s = 0.0
        jv, nel_grid = cell_fock_potential(mol, auxmol, d, xc, kind)
        return _one_step(mf, mf.get_hcore() + jv, d, auxmol, t0, df_s, nel_grid)
    if hasattr(mf, "with_df"):
        mf.with_df.get_naoaux()  # builds the DF tensors (timed apart: the SCF reuses them)
        df_s = time.perf_counter() - t0
        j = coulomb_from_scf_df(mf, auxmol, d)
    else:
        df_s = 0.0
        j = coulomb_of_coefficients(mol, auxmol, d)
    v, nel_grid = xc_potential(mol, auxmol, d, xc, kind, grid_level)
    return _one_step(mf, mf.get_hcore() + j + v, d, auxmol, t0, df_s, nel_grid)


def _one_step(mf, f: np.ndarray, d: np.ndarray, auxmol, t0: float, df_s: float, nel_grid: float) -> GuessBuild:
    """F diagonalised with the AO overlap and occupied by the SCF's own rule (aufbau, or its smearing)."""
    if mf.mol.spin:
        f = np.array([f, f])
    mo_e, mo_c = mf.eig(f, mf.get_ovlp())
    dm = mf.make_rdm1(mo_c, mf.get_occ(mo_e, mo_c))
    return GuessBuild(np.asarray(dm), time.perf_counter() - t0, df_s, float(function_integrals(auxmol) @ d), nel_grid)


def normalised(d: np.ndarray, auxmol, n_electrons: int) -> tuple[np.ndarray, float]:
    """(d scaled so that its analytic integral is N, the integral before scaling)."""
    n = float(function_integrals(auxmol) @ d)
    if not np.isfinite(n) or n <= 0:
        raise PyscfIoError(f"the density integrates to {n:g} electrons, no guess can be built from it")
    return d * (n_electrons / n), n


def new_scf(mol: Molecule, settings: dict):
    """The SCF object of the structure as the dataset ran it, not run (a Gamma-point SCF for a cell)."""
    return make_cell_scf(mol.mol, settings, None) if mol.periodic else make_scf(mol.mol, settings)


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
            mf = new_scf(mol, settings)
            built = coefficient_guess(mf, mol.auxmol, d, xc, kind, guess_grid_level, mol.periodic)
            row["build_s"], row["df_build_s"] = built.build_s, built.df_s
            require_finite(built.dm, f"{guess} guess density matrix", error=PyscfIoError)
            row.update(run_one(mf, guess, built.dm))
        else:
            if mol.periodic and guess not in CELL_PYSCF_GUESSES:
                raise PyscfIoError(f"PySCF's periodic SCF has no {guess} guess (for cells: {', '.join(CELL_PYSCF_GUESSES)})")
            mf = new_scf(mol, settings)
            if guess == "vsap" and not hasattr(mf, "init_guess_by_vsap"):
                raise PyscfIoError("the vsap guess needs a DFT functional (PySCF would silently use minao)")
            row.update(run_one(mf, guess, None))
        row["total_s"] = row["build_s"] + row["scf_s"]
        rows.append(row)
    return rows
