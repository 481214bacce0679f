"""Density fitting of an SCF density on the auxiliary basis.

Coulomb metric:  d = J^-1 b,  J_PQ = (P|Q),   b_P = (P|rho) = sum_mn D_mn (P|mn)
Overlap metric:  d = S^-1 b,  S_PQ = <P|Q>,   b_P = <P|rho> = sum_mn D_mn <P mn>

For a cell (a PySCF ``Cell``) the functions are lattice sums, phi_P(r) = sum_T phi_P(r - T): S is
``auxcell.pbc_intor("int1e_ovlp")`` and the analytic b the Gamma-point three-centre overlaps of
``pyscf.pbc.df.incore.aux_e2`` (the overlap metric only; see cell.py and cell_fit.py).

The metric M (J or S) of an even-tempered basis is badly conditioned (smallest eigenvalues
1e-9..1e-13 of the largest), so the solve is an eigen-decomposition M = V diag(l) V^T that
keeps the eigenvalues l_k > rcond * l_max:  d = V_k diag(1 / l_k) V_k^T b.  The number of
dropped directions and the condition number are recorded with every structure.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gamma, pi, sqrt

import numpy as np

_CHUNK_BYTES = 200 * 2**20


@dataclass(frozen=True)
class SolveInfo:
    dropped: int
    condition: float


def is_cell(mol) -> bool:
    """True for a PySCF ``Cell`` (periodic), False for a ``Mole``."""
    from pyscf.pbc.gto import Cell

    return isinstance(mol, Cell)


def metric_matrix(auxmol, metric: str) -> np.ndarray:
    """J = (P|Q) for the Coulomb metric, S = <P|Q> for the overlap metric (PySCF order); for a cell
    the lattice-summed overlap (exactly symmetric)."""
    if is_cell(auxmol):
        if metric != "overlap":
            raise ValueError("the metric of a cell is its lattice-summed overlap")
        s = np.asarray(auxmol.pbc_intor("int1e_ovlp", hermi=1))
        return 0.5 * (s + s.T)
    return auxmol.intor("int2c2e" if metric == "coulomb" else "int1e_ovlp")


def density_integrals(mol, auxmol, dm: np.ndarray, metric: str) -> np.ndarray:
    """b_P = sum_mn D_mn (P|mn) (Coulomb) or <P mn> (overlap), in aux-shell chunks of bounded memory.

    ``dm`` is one AO density matrix (n, n) -> b of shape (n_aux,), or K of them (K, n, n) -> (K, n_aux):
    the three-centre integrals are computed once for all K.
    """
    from pyscf import lib

    if is_cell(mol):
        from pyscf.pbc.df.incore import aux_e2

        if metric != "overlap":
            raise ValueError("the three-centre integrals of a cell are overlaps")
        aosym = "s2"  # Gamma point: real, (mn) packed as m >= n like the molecular s2ij
    else:
        from pyscf.df.incore import aux_e2

        aosym = "s2ij"
    intor = "int3c2e" if metric == "coulomb" else "int3c1e"
    dm = np.asarray(dm)
    single = dm.ndim == 2
    dms = dm[None] if single else dm
    # (mn) pairs with m >= n, off-diagonal twice
    packed = np.stack([lib.pack_tril(d + d.T - np.diag(np.diag(d))) for d in dms])
    npair = packed.shape[1]
    ao_loc = auxmol.ao_loc_nr()
    out = np.empty((len(dms), auxmol.nao_nr()))
    per_chunk = max(1, _CHUNK_BYTES // (8 * npair))
    start = 0
    while start < auxmol.nbas:
        stop = start + 1
        while stop < auxmol.nbas and ao_loc[stop + 1] - ao_loc[start] <= per_chunk:
            stop += 1
        ints = aux_e2(mol, auxmol, intor, aosym=aosym, shls_slice=(0, mol.nbas, 0, mol.nbas, start, stop))
        out[:, ao_loc[start] : ao_loc[stop]] = packed @ ints.reshape(npair, -1)
        start = stop
    return out[0] if single else out


def solve_metric(matrix: np.ndarray, rhs: np.ndarray, rcond: float) -> tuple[np.ndarray, SolveInfo]:
    """d = M^+ b over the eigenvectors of M with eigenvalue > rcond * max (see module doc).

    ``rhs`` may be (n,) or (K, n) for K fields of one structure (one decomposition for all).
    """
    values, vectors = np.linalg.eigh(matrix)
    keep = values > rcond * values[-1]
    kept = vectors[:, keep]
    rhs = np.asarray(rhs)
    coeffs = ((rhs @ kept) / values[keep]) @ kept.T  # the same for one b (n,) and for K of them (K, n)
    condition = float(values[-1] / values[keep][0])
    return coeffs, SolveInfo(int((~keep).sum()), condition)


def function_integrals(auxmol) -> np.ndarray:
    """integral phi_P(r) dr for every aux function (PySCF order); only s functions are non-zero.

    For phi = R(r) Y_00 with R = sum_k c_k exp(-a_k r^2): sqrt(4 pi) sum_k c_k Gamma(3/2) / (2 a_k^(3/2)).
    """
    from pyscf import gto

    out = np.zeros(auxmol.nao_nr())
    ao_loc = auxmol.ao_loc_nr()
    for ib in range(auxmol.nbas):
        if auxmol.bas_angular(ib) != 0:
            continue
        exps = auxmol.bas_exp(ib)
        coeffs = auxmol.bas_ctr_coeff(ib) * gto.gto_norm(0, exps)[:, None]
        radial = gamma(1.5) / (2 * exps**1.5)
        out[ao_loc[ib] : ao_loc[ib + 1]] = sqrt(4 * pi) * (radial @ coeffs)
    return out
