"""Putting fields that a backend returned on separate grids onto one grid.

A backend may return the fields of one structure as several grids (FHI-aims writes the SCF
density and each rebuilt density to its own file). They can be compared point by point only
if they hold the same points: in the same order (fast path), or in another order, in which
case each point is matched to the reference point at the same coordinates (within
``tolerance`` bohr, one to one). Anything else is refused.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rho_data import Grid
from scipy.spatial import cKDTree

from .errors import RhoEvalError


def match_points(reference: np.ndarray, other: np.ndarray, tolerance: float = 1e-5) -> np.ndarray:
    """Permutation ``p`` with ``other[p] == reference`` (within ``tolerance`` bohr per point).

    Raises :class:`RhoEvalError` when the two point sets differ in size, when a point has no
    partner within the tolerance, or when two points claim the same partner.
    """
    reference = np.asarray(reference, dtype=np.float64)
    other = np.asarray(other, dtype=np.float64)
    if reference.shape != other.shape:
        raise RhoEvalError(f"the grids differ: {len(reference)} points and {len(other)} points")
    if len(reference) == 0 or np.abs(reference - other).max() <= tolerance:
        return np.arange(len(reference))
    distance, p = cKDTree(other).query(reference, k=1)
    worst = int(np.argmax(distance))
    if distance[worst] > tolerance:
        raise RhoEvalError(
            f"the grids hold different points: point {worst} at {reference[worst].round(6).tolist()} bohr has no "
            f"partner within {tolerance:g} bohr (nearest {distance[worst]:.3g} bohr away)"
        )
    if len(np.unique(p)) != len(p):
        raise RhoEvalError(f"the grids cannot be matched one to one within {tolerance:g} bohr (points closer than the tolerance)")
    return p


def merge_grids(grids: Sequence[Grid], tolerance: float = 1e-5, weight_rtol: float = 1e-6) -> Grid:
    """One grid holding the fields of all ``grids``, on the points (and order) of the first.

    The integration weights of every grid must agree with the first one's at the matched points;
    a field name given twice is refused.
    """
    if not grids:
        raise RhoEvalError("no grid to merge")
    first = grids[0]
    values = {name: np.asarray(v, dtype=np.float64) for name, v in first.values.items()}
    for other in grids[1:]:
        p = match_points(first.points, other.points, tolerance)
        weights = np.asarray(other.weights, dtype=np.float64)[p]
        scale = max(float(np.abs(first.weights).max(initial=0.0)), 1e-300)
        if np.abs(weights - first.weights).max(initial=0.0) > weight_rtol * scale:
            raise RhoEvalError("the grids hold the same points but different integration weights")
        for name, v in other.values.items():
            if name in values:
                raise RhoEvalError(f"field '{name}' was returned on two grids")
            values[name] = np.asarray(v, dtype=np.float64)[p]
    return Grid(points=first.points, weights=first.weights, values=values)
