"""Densities on PySCF's DFT integration grid, evaluated in chunks of bounded memory."""

from __future__ import annotations

import numpy as np

_CHUNK_BYTES = 100 * 2**20


def dft_grid(mol, level: int) -> tuple[np.ndarray, np.ndarray]:
    """Points (bohr) and weights of PySCF's DFT grid of ``mol`` at ``level`` (Becke partition)."""
    from pyscf import dft

    grids = dft.gen_grid.Grids(mol)
    grids.level = int(level)
    grids.build(with_non0tab=False)
    return np.asarray(grids.coords), np.asarray(grids.weights)


def _chunks(n_points: int, n_functions: int):
    step = max(256, _CHUNK_BYTES // (8 * max(n_functions, 1)))
    for start in range(0, n_points, step):
        yield slice(start, min(start + step, n_points))


def ao_density(mol, dm: np.ndarray, points: np.ndarray) -> np.ndarray:
    """rho(r) = sum_mn D_mn chi_m(r) chi_n(r) for an AO density matrix."""
    out = np.empty(len(points))
    for part in _chunks(len(points), mol.nao_nr()):
        ao = mol.eval_gto("GTOval_sph", points[part])
        out[part] = np.einsum("pm,pm->p", ao @ dm, ao)
    return out


def aux_density(auxmol, coefficients: np.ndarray, points: np.ndarray) -> np.ndarray:
    """rho(r) = sum_P d_P phi_P(r) for coefficients in PySCF order; ``coefficients`` may be
    (n_aux,) or (n_aux, K) for K fields at once."""
    d = np.asarray(coefficients)
    out = np.empty((len(points),) + d.shape[1:])
    for part in _chunks(len(points), auxmol.nao_nr()):
        out[part] = auxmol.eval_gto("GTOval_sph", points[part]) @ d
    return out
