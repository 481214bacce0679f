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


def is_periodic(pbc) -> bool:
    """Whether a structure is a cell (periodic in any direction)."""
    return bool(np.any(pbc))


def cell_box_points(cell_bohr: np.ndarray, spacing: float) -> tuple[tuple[int, int, int], np.ndarray]:
    """The cube grid of one unit cell: n_i = ceil(|a_i| / spacing) points along lattice vector a_i
    (voxel axes a_i / n_i, origin 0, the cell's periodicity not repeated), points (i/n1, j/n2, k/n3)
    @ cell in the cube-file order (last index fastest), bohr."""
    cell = np.asarray(cell_bohr, dtype=np.float64).reshape(3, 3)
    shape = tuple(max(1, int(np.ceil(np.linalg.norm(a) / spacing))) for a in cell)
    fractions = np.stack(np.meshgrid(*[np.arange(n) / n for n in shape], indexing="ij"), axis=-1).reshape(-1, 3)
    return shape, fractions @ cell  # type: ignore[return-value]


def cell_plane_points(
    positions_bohr: np.ndarray, numbers: np.ndarray, cell_bohr: np.ndarray, margin: float, resolution: int, thickness: float = 1.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A square-pixel grid on the plane through the atoms' centroid spanned by lattice vectors a1, a2.

    Returns (points (a*b, 3), s (a,), t (b,), atoms in the plane (m, 2), their atomic numbers (m,),
    the cell outline (5, 2), closed): the window is the cell's section by the plane (a parallelogram
    congruent to the a1-a2 face) plus ``margin`` bohr; the atoms drawn are those of the 3x3x3 images
    of the cell that fall inside the window and lie within ``thickness`` bohr of the plane.
    """
    cell = np.asarray(cell_bohr, dtype=np.float64).reshape(3, 3)
    positions = np.asarray(positions_bohr, dtype=np.float64).reshape(-1, 3)
    centre = positions.mean(axis=0)
    u = cell[0] / np.linalg.norm(cell[0])
    v = cell[1] - (cell[1] @ u) * u
    v /= np.linalg.norm(v)
    normal = np.cross(u, v)
    fraction = float((centre @ normal) / (cell[2] @ normal))  # where the plane crosses a3
    corners = fraction * cell[2] + np.array([[0, 0, 0], cell[0], cell[0] + cell[1], cell[1], [0, 0, 0]])
    outline = (corners - centre) @ np.stack([u, v], axis=1)
    lo, hi = outline.min(axis=0) - margin, outline.max(axis=0) + margin
    step = (hi - lo).max() / (resolution - 1)
    s = np.arange(lo[0], hi[0] + 0.5 * step, step)
    t = np.arange(lo[1], hi[1] + 0.5 * step, step)
    ss, tt = np.meshgrid(s, t, indexing="ij")
    points = centre + ss.reshape(-1, 1) * u + tt.reshape(-1, 1) * v
    shifts = np.stack(np.meshgrid(*[np.arange(-1, 2)] * 3, indexing="ij"), axis=-1).reshape(-1, 3) @ cell
    images = (positions[None, :, :] + shifts[:, None, :]).reshape(-1, 3) - centre
    image_numbers = np.tile(np.asarray(numbers), len(shifts))
    in_plane = images @ np.stack([u, v], axis=1)
    keep = (np.abs(images @ normal) <= thickness) & np.all((in_plane >= lo) & (in_plane <= hi), axis=1)
    return points, s, t, in_plane[keep], image_numbers[keep], outline
