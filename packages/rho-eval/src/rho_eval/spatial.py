"""Points where fields are evaluated for pictures: a plane through a molecule and a box around it."""

from __future__ import annotations

import numpy as np


def molecule_plane(positions_bohr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centre, u, v): the plane through the centroid spanned by the two principal axes of
    the atom positions (any plane through the axis for linear molecules, any for one atom)."""
    positions = np.asarray(positions_bohr, dtype=np.float64).reshape(-1, 3)
    centre = positions.mean(axis=0)
    centred = positions - centre
    if len(positions) > 1 and np.abs(centred).max() > 1e-8:
        _, _, vt = np.linalg.svd(centred, full_matrices=True)
        u = vt[0]
        v = vt[1]
    else:
        u, v = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    v = v - (v @ u) * u
    return centre, u / np.linalg.norm(u), v / np.linalg.norm(v)


def plane_points(positions_bohr: np.ndarray, margin: float, resolution: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A square-pixel grid on :func:`molecule_plane`: (points (a*b, 3), s (a,), t (b,), atom
    coordinates in the plane (n, 2)), extending ``margin`` bohr beyond the atoms."""
    centre, u, v = molecule_plane(positions_bohr)
    atoms_2d = (np.asarray(positions_bohr) - centre) @ np.stack([u, v], axis=1)
    lo = atoms_2d.min(axis=0) - margin
    hi = atoms_2d.max(axis=0) + margin
    step = (hi - lo).max() / (resolution - 1)
    s = np.arange(lo[0], hi[0] + 0.5 * step, step)
    t = np.arange(lo[1], hi[1] + 0.5 * step, step)
    ss, tt = np.meshgrid(s, t, indexing="ij")
    points = centre + ss.reshape(-1, 1) * u + tt.reshape(-1, 1) * v
    return points, s, t, atoms_2d


def box_points(positions_bohr: np.ndarray, spacing: float, margin: float) -> tuple[np.ndarray, tuple[int, int, int], np.ndarray]:
    """A regular axis-aligned grid around the atoms: (origin (3,), shape, points (nx*ny*nz, 3)),
    points ordered with z fastest (the cube-file order), all in bohr."""
    positions = np.asarray(positions_bohr, dtype=np.float64).reshape(-1, 3)
    origin = positions.min(axis=0) - margin
    extent = positions.max(axis=0) + margin - origin
    shape = tuple(int(np.ceil(e / spacing)) + 1 for e in extent)
    axes = [origin[k] + spacing * np.arange(shape[k]) for k in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    return origin, shape, grid  # type: ignore[return-value]
