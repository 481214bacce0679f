"""Periodic structures for FHI-aims: the checks of a cell and the k-point keywords of control.in.

FHI-aims treats a structure with ``lattice_vector`` lines as periodic in all three directions
and one without them as a cluster; it has no partial periodicity (a slab is a 3D cell with
vacuum along the surface normal, set up by the user). So aims-io accepts pbc ``T T T`` with a
cell of non-zero volume, or pbc ``F F F`` with no cell (all zeros); anything else is refused
with one line (:func:`check_cell`).

k-points (FHI-aims keywords, written for periodic structures only):

- ``k_grid n1 n2 n3``: an n1 x n2 x n3 grid along the reciprocal lattice vectors (the keyword of
  the FHI-aims manual; rholearn's periodic settings use it, e.g. ``k_grid: [4, 4, 1]`` for a
  slab, and pymatgen's FHI-aims interface refuses a periodic structure without ``k_grid`` or
  ``k_grid_density``);
- ``k_grid_density d``: FHI-aims chooses the grid itself from a density of d k-points per
  inverse Angstrom along each reciprocal lattice vector. aims-io does not compute that grid:
  it reads the number of k-points FHI-aims reports (``| k-points reduced from: N to M``, the
  line lab-cosmo/rholearn's ``rholearn/aims_interface/parser.py`` reads) at import.
  :func:`grid_from_density` gives the grid of the convention ``n_i = ceil(2 pi |b_i| d)``
  (b_i rows of the inverse transposed cell, ASE's ``kptdensity2monkhorstpack`` and FHI-vibes'
  ``d2k``, written by FHI-aims developers) for the test stand-in only.

Neither setting with a molecule: a k-point grid for a cluster is a one-line error.
"""

from __future__ import annotations

import math
from os import PathLike

import numpy as np

from rho_data.yaml_input import short_repr

from .errors import AimsIOError

#: Atoms closer than this (Angstrom), also through the cell boundary, are refused.
MIN_DISTANCE_A = 0.5


def is_periodic(pbc: np.ndarray) -> bool:
    return bool(np.asarray(pbc, dtype=bool).any())


def check_cell(
    cell: np.ndarray, pbc: np.ndarray, positions: np.ndarray, *, where: str | PathLike, structure: int | None = None
) -> None:
    """Refuse what FHI-aims cannot run: partial periodicity, a cell without pbc, pbc without a
    cell, a cell of zero volume, atoms closer than :data:`MIN_DISTANCE_A` (minimum image)."""
    cell = np.asarray(cell, dtype=np.float64).reshape(3, 3)
    pbc = np.asarray(pbc, dtype=bool).reshape(3)
    has_cell = bool(np.abs(cell).max() > 0) if np.isfinite(cell).all() else True

    def fail(message: str) -> AimsIOError:
        return AimsIOError(message, path=where, structure=structure)

    if not np.isfinite(cell).all():
        raise fail("the cell is not finite")
    if pbc.any() and not pbc.all():
        flags = " ".join("T" if p else "F" for p in pbc)
        raise fail(
            f"pbc {flags}: FHI-aims is periodic in all 3 directions or none; write a slab as a 3D cell with vacuum (pbc T T T)"
        )
    if has_cell and not pbc.any():
        raise fail("has a cell but pbc F F F: set pbc T T T for a periodic structure, or drop the cell for a molecule")
    if not pbc.any():
        return
    if not has_cell:
        raise fail("pbc T T T but no cell (lattice vectors all zero)")
    volume = abs(float(np.linalg.det(cell)))
    if volume < 1e-6:
        raise fail(f"periodic structure with a cell of zero volume ({volume:.3g} A^3)")
    pair = closest_pair(cell, positions)
    if pair is not None and pair[2] < MIN_DISTANCE_A:
        i, j, d = pair
        through = " (through the cell boundary)" if _direct(positions, i, j) > d + 1e-9 else ""
        raise fail(f"atoms {i + 1} and {j + 1} are {d:.3f} A apart{through}, closer than {MIN_DISTANCE_A} A")


def _direct(positions: np.ndarray, i: int, j: int) -> float:
    return float(np.linalg.norm(np.asarray(positions)[j] - np.asarray(positions)[i]))


def closest_pair(cell: np.ndarray, positions: np.ndarray) -> tuple[int, int, float] | None:
    """The closest pair of sites (i <= j, distance in Angstrom) under the minimum-image convention,
    an atom and its own images included (i == j); None without atoms. Differences are wrapped to
    fractional [-1/2, 1/2) and the 27 neighbouring images searched (exact unless the cell is very skewed)."""
    cell = np.asarray(cell, dtype=np.float64)
    pos = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    inv = np.linalg.inv(cell)
    shifts = np.array([[a, b, c] for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)], dtype=np.float64)
    images = shifts @ cell
    best: tuple[int, int, float] | None = None
    for i in range(len(pos)):
        diff = pos[i:] - pos[i]
        frac = diff @ inv
        frac -= np.floor(frac + 0.5)
        wrapped = frac @ cell
        dist = np.linalg.norm(wrapped[:, None, :] + images[None, :, :], axis=2)
        dist[0, 13] = np.inf  # the atom itself (shift 0, 0, 0)
        k = np.unravel_index(int(np.argmin(dist)), dist.shape)
        if best is None or dist[k] < best[2]:
            best = (i, i + int(k[0]), float(dist[k]))
    return best


def grid_from_density(cell: np.ndarray, density: float) -> list[int]:
    """n_i = ceil(2 pi |b_i| d), b = inv(cell).T (see the module doc: not FHI-aims's own code)."""
    recip = np.linalg.inv(np.asarray(cell, dtype=np.float64)).T
    return [max(1, math.ceil(2 * math.pi * float(np.linalg.norm(b)) * float(density) - 1e-9)) for b in recip]


def k_point_lines(dft: dict, periodic: bool, *, where: str | PathLike, structure: int | None = None) -> list[tuple[str, str]]:
    """The k-point keyword of control.in: ``k_grid`` (default 1 1 1, the Gamma point) or
    ``k_grid_density`` for a periodic structure; nothing for a molecule (a k-grid set for one is an error)."""
    grid, density = dft.get("k_grid"), dft.get("k_grid_density")
    if not periodic:
        if grid is not None or density is not None:
            name = "dft.k_grid" if grid is not None else "dft.k_grid_density"
            message = f"setting '{name}' is set but this structure is a molecule (no cell)"
            raise AimsIOError(message, path=where, structure=structure)
        return []
    if density is not None:
        return [("k_grid_density", f"{float(density):g}")]
    n = [1, 1, 1] if grid is None else [int(k) for k in grid]
    return [("k_grid", " ".join(str(k) for k in n))]


def check_k_settings(dft: dict) -> None:
    """``dft.k_grid``: null or three integers >= 1; ``dft.k_grid_density``: null or > 0; not both."""
    grid, density = dft.get("k_grid"), dft.get("k_grid_density")
    if grid is not None:
        counts = isinstance(grid, list) and len(grid) == 3
        if not counts or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in grid):
            raise AimsIOError(f"setting 'dft.k_grid' must be null or 3 integers >= 1, got {short_repr(grid)}")
    if density is not None and not density > 0:
        raise AimsIOError(f"setting 'dft.k_grid_density' must be > 0, got {short_repr(density)}")
    if grid is not None and density is not None:
        raise AimsIOError("settings 'dft.k_grid' and 'dft.k_grid_density' are both set: choose one")
