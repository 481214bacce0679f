"""The Kohn-Sham potential of a density given by auxiliary coefficients (the guess of :mod:`pyscf_io.guess`).

Molecules: J from the SCF's own density-fitting tensors (or three-centre integrals), V_xc on a
DFT grid of the guess's level. Gamma-point cells: rho(r) = sum_P d_P sum_T phi_P(r - T) on the
SCF's uniform mesh (points r_g of one cell, weights vol / n), the Hartree potential
v_H = IFFT(4 pi / |G|^2 FFT(rho)) without the G = 0 term (PySCF's FFT convention: the
neutralising background, whose counterpart is the G = 0 part of the pseudopotential in the core
Hamiltonian) and V_xc on the same mesh, F_mn = h_mn + sum_g w chi_m [v_H + v_xc] chi_n (+ the GGA
gradient term) with chi the Gamma-point Bloch sums of the AOs.

Points where rho < 1e-10 (an ML density may dip below zero) get no exchange-correlation potential.
"""

from __future__ import annotations

import numpy as np

from .grid import chunks, uniform_grid

RHO_FLOOR = 1e-10


def xc_on_points(xc: str, kind: str, rho: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(rho as ``eval_xc`` takes it, v_rho, v_sigma or None) of ``rho`` (rows: value [, gradient x, y, z]);
    ``rho`` is floored in place (points below :data:`RHO_FLOOR` get zero density and potential)."""
    from pyscf.dft import numint

    gga = kind == "GGA"
    low = rho[0] < RHO_FLOOR
    rho[:, low] = 0.0
    rho_in = rho if gga else rho[0]
    vxc = numint.NumInt().eval_xc(xc, rho_in, spin=0, deriv=1)[1]  # (v_rho,) or (v_rho, v_sigma, ...)
    vrho = np.where(low, 0.0, vxc[0])  # a floored point contributes nothing
    vsigma = np.where(low, 0.0, vxc[1]) if gga else None
    return rho_in, vrho, vsigma


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
        rho_in, vrho, vsigma = xc_on_points(xc, kind, rho)
        v += numint.eval_mat(mol, ao, weight, rho_in, (vrho, vsigma), non0tab=mask, xctype=kind)
    return v, nel


def cell_fock_potential(cell, auxcell, d: np.ndarray, xc: str, kind: str) -> tuple[np.ndarray, float]:
    """(J + V_xc of rho = sum_P d_P phi_P on the Gamma-point cell's mesh, the integral of rho on that mesh)."""
    mesh = np.asarray(cell.mesh)
    points, weights = uniform_grid(cell, mesh)
    name, rows = _derivatives(kind)
    rho = np.empty((rows, len(points)))
    for part in chunks(len(points), 8 * rows * auxcell.nao_nr()):
        rho[:, part] = np.atleast_2d(np.asarray(auxcell.pbc_eval_gto(name, points[part])) @ d)
    return cell_potential_matrix(cell, rho, xc, kind), float(rho[0] @ weights)


def cell_potential_matrix(cell, rho: np.ndarray, xc: str, kind: str) -> np.ndarray:
    """J + V_xc (nao, nao) of a periodic density given on the cell's mesh ``cell.mesh`` (rows: value
    [, gradient x, y, z] for a GGA; floored in place), in the AOs' Gamma-point Bloch sums."""
    from pyscf.dft.numint import eval_mat
    from pyscf.pbc import tools

    mesh = np.asarray(cell.mesh)
    points, weights = uniform_grid(cell, mesh)
    name, rows = _derivatives(kind)
    hartree = tools.ifft(tools.get_coulG(cell, mesh=mesh) * tools.fft(rho[0], mesh), mesh).real
    rho_in, vrho, vsigma = xc_on_points(xc, kind, rho)
    vrho = vrho + hartree
    v = np.zeros((cell.nao_nr(), cell.nao_nr()))
    for part in chunks(len(points), 8 * rows * cell.nao_nr()):
        ao = np.asarray(cell.pbc_eval_gto(name, points[part]))
        sigma = vsigma[part] if vsigma is not None else None
        v += eval_mat(cell, ao, weights[part], rho_in[..., part], (vrho[part], sigma), xctype=kind)
    return v


def _derivatives(kind: str) -> tuple[str, int]:
    """(PySCF's eval_gto name, rows of rho) of an LDA or GGA potential."""
    return ("GTOval_sph_deriv1", 4) if kind == "GGA" else ("GTOval_sph", 1)
