"""Periodic frames: the form featomic takes, and atom-pair distances over lattice images.

featomic computes neighbour lists over the images of a cell, but only for a frame periodic
along all three cell vectors or along none. A frame periodic along some vectors only (a slab,
pbc T T F) is given to featomic with each non-periodic vector replaced by a vector orthogonal
to the periodic ones of length L = (diameter of the atoms) + cutoff + 1 Angstrom. Every image
along a replaced vector is then farther than L - diameter > cutoff from every atom, so the
neighbourhoods within the cutoff, and hence the descriptors, are exactly those of the
partially periodic frame. A frame periodic along no vector is given with a zero cell.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import RhoModelError

#: Distance (Angstrom) added beyond the cutoff to a replaced non-periodic cell vector.
VACUUM_MARGIN = 1.0


def featomic_frame(atoms: Any, cutoff: float, where: str = "") -> Any:
    """``atoms`` as featomic takes it: periodic along all vectors or none (see the module docstring)."""
    import ase

    pbc = np.asarray(atoms.pbc, dtype=bool).reshape(-1)
    pbc = np.repeat(pbc, 3) if pbc.shape == (1,) else pbc
    cell = np.asarray(atoms.cell[:], dtype=np.float64)
    if pbc.all():
        if abs(np.linalg.det(cell)) < 1e-12:
            raise RhoModelError(f"{where}periodic structure with a zero-volume cell")
        return atoms
    positions = np.asarray(atoms.positions, dtype=np.float64)
    if not pbc.any():
        if not np.any(cell):
            return atoms
        return ase.Atoms(numbers=atoms.numbers, positions=positions)
    periodic = cell[pbc]
    if np.linalg.matrix_rank(periodic, tol=1e-6) < len(periodic):
        raise RhoModelError(f"{where}the periodic cell vectors are linearly dependent")
    _, _, vt = np.linalg.svd(periodic)
    normals = vt[len(periodic) :]  # orthonormal basis of the directions no periodic vector spans
    diameter = float(np.linalg.norm(positions.max(axis=0) - positions.min(axis=0)))
    length = diameter + float(cutoff) + VACUUM_MARGIN
    full = cell.copy()
    full[~pbc] = length * normals
    if np.linalg.det(full) < 0:
        full[np.flatnonzero(~pbc)[-1]] *= -1.0
    return ase.Atoms(numbers=atoms.numbers, positions=positions, cell=full, pbc=True)


def pair_distances(positions: np.ndarray, pairs: np.ndarray, cell: np.ndarray | None, pbc: np.ndarray | None) -> np.ndarray:
    """|r_i - r_j| of atom pairs, for a periodic structure over the nearest lattice image of j."""
    vectors = positions[pairs[:, 1]] - positions[pairs[:, 0]]
    if pbc is None or not np.any(pbc):
        return np.linalg.norm(vectors, axis=1)
    from ase.geometry import find_mic

    _, lengths = find_mic(vectors, np.asarray(cell, dtype=np.float64), np.asarray(pbc, dtype=bool))
    return np.asarray(lengths, dtype=np.float64)
