"""Densities on PySCF's grids (DFT grid of a molecule, uniform grid of a cell), in chunks of bounded memory.

Periodic fields are lattice sums: an auxiliary function of a cell is phi_P(r) = sum_T phi_P(r - T)
(``auxcell.pbc_eval_gto`` at Gamma), and the SCF density of a cell with k-points k (weights 1/Nk) is
rho(r) = (1/Nk) sum_k Re sum_mn chi^k_m(r) D^k_mn conj(chi^k_n(r)) with the Bloch sums
chi^k_m(r) = sum_T e^{ik.T} chi_m(r - T) (``cell.pbc_eval_gto(..., kpts=kpts)``; PySCF's own convention,
``pyscf.pbc.dft.numint``). Both are periodic, so points outside the cell give the values of their image.
"""

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


def uniform_mesh(cell, auxcell) -> tuple[int, int, int]:
    """The mesh of a cell's fields: elementwise max(cell.mesh, auxcell.mesh) (PySCF's meshes from the bases and precision)."""
    return tuple(int(n) for n in np.maximum(np.asarray(cell.mesh), np.asarray(auxcell.mesh)))  # type: ignore[return-value]


def uniform_grid(cell, mesh) -> tuple[np.ndarray, np.ndarray]:
    """Points (bohr, ``cell.get_uniform_grids(mesh)``: the fractions of the lattice vectors in FFT order,
    0, 1/n, ..., then the negative ones, last index fastest) and weights vol / n_points of one unit cell
    (sum of weights = cell volume)."""
    points = np.asarray(cell.get_uniform_grids(np.asarray(mesh)), dtype=np.float64)
    return points, np.full(len(points), float(cell.vol) / len(points))


def chunks(n_points: int, bytes_per_point: int):
    step = max(256, _CHUNK_BYTES // max(bytes_per_point, 1))
    for start in range(0, n_points, step):
        yield slice(start, min(start + step, n_points))


def ao_density(mol, dm: np.ndarray, points: np.ndarray) -> np.ndarray:
    """rho(r) = sum_mn D_mn chi_m(r) chi_n(r) for an AO density matrix."""
    out = np.empty(len(points))
    for part in chunks(len(points), 8 * mol.nao_nr()):
        ao = mol.eval_gto("GTOval_sph", points[part])
        out[part] = np.einsum("pm,pm->p", ao @ dm, ao)
    return out


def aux_density(auxmol, coefficients: np.ndarray, points: np.ndarray) -> np.ndarray:
    """rho(r) = sum_P d_P phi_P(r) for coefficients in PySCF order; ``coefficients`` may be
    (n_aux,) or (n_aux, K) for K fields at once."""
    d = np.asarray(coefficients)
    out = np.empty((len(points),) + d.shape[1:])
    for part in chunks(len(points), 8 * auxmol.nao_nr()):
        out[part] = auxmol.eval_gto("GTOval_sph", points[part]) @ d
    return out


def cell_ao_density(cell, dm: np.ndarray, points: np.ndarray, kpts: np.ndarray | None = None) -> np.ndarray:
    """The periodic SCF density of a cell: ``dm`` real (nao, nao) at Gamma (``kpts`` None), or complex
    (nk, nao, nao) with ``kpts`` (nk, 3) (1/bohr), rho = (1/Nk) sum_k Re sum_mn chi^k_m D^k_mn conj(chi^k_n)."""
    out = np.empty(len(points))
    if kpts is None:
        for part in chunks(len(points), 8 * cell.nao_nr()):
            ao = np.asarray(cell.pbc_eval_gto("GTOval_sph", points[part]))
            out[part] = np.einsum("pm,pm->p", ao @ dm, ao)
        return out
    kpts = np.asarray(kpts, dtype=np.float64).reshape(-1, 3)
    for part in chunks(len(points), 16 * cell.nao_nr() * len(kpts)):
        ao_k = cell.pbc_eval_gto("GTOval_sph", points[part], kpts=kpts)
        total = np.zeros(part.stop - part.start)
        for ao, d in zip(ao_k, dm):
            total += np.einsum("pm,pm->p", ao @ d, ao.conj()).real
        out[part] = total / len(kpts)
    return out


def cell_aux_density(auxcell, coefficients: np.ndarray, points: np.ndarray) -> np.ndarray:
    """rho(r) = sum_P d_P sum_T phi_P(r - T) (lattice-summed at Gamma) for coefficients in PySCF order,
    (n_aux,) or (n_aux, K)."""
    d = np.asarray(coefficients)
    out = np.empty((len(points),) + d.shape[1:])
    for part in chunks(len(points), 8 * auxcell.nao_nr()):
        out[part] = np.asarray(auxcell.pbc_eval_gto("GTOval_sph", points[part])) @ d
    return out


def cell_aux_projections(auxcell, points: np.ndarray, weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """w_P = sum_r w_r phi_P(r) f(r) over one cell's grid for lattice-summed aux functions phi_P: the
    projections <P|f> of periodic fields ``values`` (n_points,) -> (n_aux,), or (n_points, K) -> (K, n_aux)."""
    f = np.asarray(values) * (weights if np.ndim(values) == 1 else weights[:, None])
    out = np.zeros((auxcell.nao_nr(),) + f.shape[1:])
    for part in chunks(len(points), 8 * auxcell.nao_nr()):
        out += np.asarray(auxcell.pbc_eval_gto("GTOval_sph", points[part])).T @ f[part]
    return out.T
