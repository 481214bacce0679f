"""Grid files of FHI-aims: ``rho_scf.out``, ``rho_rebuilt_ri.out``, ``partition_tab.out``.

Each line is ``x y z value``: a point of FHI-aims's integration grid and the density there
(or, for ``partition_tab.out``, the integration weight). Coordinates are taken in bohr
(FHI-aims's internal unit). Grids of different files are used point by point when their
coordinates agree; otherwise points are matched by coordinates, and a point without a match
is an error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import AimsIOError
from .floats import read_columns


def read_grid_file(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(points (n, 3), values (n,))."""
    table = read_columns(path, 4)
    if len(table) == 0:
        raise AimsIOError("has no grid points", path=path)
    return np.ascontiguousarray(table[:, :3]), np.ascontiguousarray(table[:, 3])


def align(ref_points: np.ndarray, points: np.ndarray, values: np.ndarray, path: str | Path, tol: float = 1e-6) -> np.ndarray:
    """``values`` reordered onto ``ref_points`` (same points, maybe in another order)."""
    if points.shape == ref_points.shape and np.abs(points - ref_points).max() <= tol:
        return values
    if len(points) != len(ref_points):
        raise AimsIOError(f"has {len(points)} grid points, the reference grid has {len(ref_points)}", path=path)
    ref_key = np.round(ref_points / tol).astype(np.int64)
    key = np.round(points / tol).astype(np.int64)
    ref_order = np.lexsort(ref_key.T[::-1])
    order = np.lexsort(key.T[::-1])
    # equal rounded keys, or (rounding may split equal points across a boundary) equal within tol
    if not np.array_equal(ref_key[ref_order], key[order]) and np.abs(ref_points[ref_order] - points[order]).max() > tol:
        raise AimsIOError("its grid points do not match the reference grid (neither in order nor by coordinates)", path=path)
    out = np.empty_like(values)
    out[ref_order] = values[order]
    return out


def read_fields(run_dir: str | Path, names: dict[str, str], weights_file: str = "partition_tab.out"):
    """Points, weights and {name: values on those points} for files ``names = {name: file}``."""
    run_dir = Path(run_dir)
    points, weights = read_grid_file(run_dir / weights_file)
    fields = {}
    for name, file in names.items():
        p, v = read_grid_file(run_dir / file)
        fields[name] = align(points, p, v, run_dir / file)
    return points, weights, fields
