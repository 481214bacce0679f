"""Error measures of a predicted density, on a quadrature grid and in coefficient space.

With quadrature weights w_k at points r_k, a predicted field p and a reference field r:

- absolute error  A = integral |p - r| dr      ~ sum_k w_k |p_k - r_k|
- norm            N = integral r dr            ~ sum_k w_k r_k    (electrons of the reference)
- %NMAE             = 100 A / N
- squared error   E = integral (p - r)^2 dr    ~ sum_k w_k (p_k - r_k)^2

(computed by :func:`rho_data.grid_errors.field_errors`, which the producers use for their fit errors)

For fields expanded in one basis, p - r = sum_a (d_p - d_r)_a phi_a, so
E = (d_p - d_r)^T S (d_p - d_r) with the basis overlap S: an exact identity that checks the
grid, the overlap and the coefficients against each other.
"""

from __future__ import annotations

import numpy as np
from rho_data import BlockSparseOverlap, Grid, grid_errors

from .errors import RhoEvalError


def _field(grid: Grid, name: str) -> np.ndarray:
    if name not in grid.values:
        raise RhoEvalError(f"the grid has no field '{name}' (it has {sorted(grid.values)})")
    values = np.asarray(grid.values[name], dtype=np.float64)
    if values.shape != np.shape(grid.weights):
        raise RhoEvalError(f"field '{name}' has shape {values.shape}, the grid has {len(grid.weights)} points")
    return values


def integral(grid: Grid, name: str) -> float:
    """integral f dr = sum_k w_k f_k (for a density: its number of electrons)."""
    return float(np.asarray(grid.weights, dtype=np.float64) @ _field(grid, name))


def field_errors(grid: Grid, predicted: str, reference: str, normalisation: str = "integral") -> dict[str, float]:
    """``abs_error``, ``norm``, ``nmae_percent`` and ``squared_error`` of ``predicted`` against
    ``reference``; the norm is the integral of the reference (``integral``) or of its absolute
    value (``absolute``, for fields that change sign)."""
    return grid_errors.field_errors(grid.weights, _field(grid, predicted), _field(grid, reference), normalisation)


def coefficient_squared_error(overlap: BlockSparseOverlap, predicted: np.ndarray, reference: np.ndarray) -> float:
    """(d_p - d_r)^T S (d_p - d_r): the squared error integral computed from coefficients."""
    delta = np.asarray(predicted, dtype=np.float64) - np.asarray(reference, dtype=np.float64)
    return overlap.quadratic(delta)


def coefficient_error_scale(overlap: BlockSparseOverlap, predicted: np.ndarray, reference: np.ndarray) -> float:
    """|dc|^T |S| |dc| (elementwise absolute values): the sum of the magnitudes of the terms of
    dc^T S dc. A grid integrates each term with a small relative error, so the grid's error in
    the squared error is bounded by that error times this scale, however much the terms cancel."""
    delta = np.abs(np.asarray(predicted, dtype=np.float64) - np.asarray(reference, dtype=np.float64))
    return BlockSparseOverlap(overlap.atom_sizes, overlap.pairs, np.abs(overlap.values)).quadratic(delta)


def consistency_difference(grid_value: float, coefficient_value: float, scale: float) -> float:
    """|grid - coefficient| / scale (0 when both are 0), the grid-vs-overlap check of rho-eval."""
    scale = max(scale, abs(grid_value), abs(coefficient_value))
    return abs(grid_value - coefficient_value) / scale if scale > 0.0 else 0.0


def relative_difference(a: float, b: float) -> float:
    """|a - b| / max(|a|, |b|), 0 when both are 0."""
    scale = max(abs(a), abs(b))
    return abs(a - b) / scale if scale > 0.0 else 0.0


def structure_metrics(grid: Grid, predicted: str, references: tuple[str, ...], normalisation: str = "integral") -> dict[str, float]:
    """The metrics of one structure: ``n_electrons_pred`` and, for each reference ``ref`` present
    on the grid, ``abs_error_<ref>``, ``norm_<ref>``, ``nmae_<ref>_percent``, ``squared_error_<ref>``
    (NaN when the grid lacks that reference)."""
    out = {"n_electrons_pred": integral(grid, predicted)}
    for ref in references:
        errors = (
            field_errors(grid, predicted, ref, normalisation)
            if ref in grid.values
            else dict.fromkeys(("abs_error", "norm", "nmae_percent", "squared_error"), float("nan"))
        )
        out[f"abs_error_{ref}"] = errors["abs_error"]
        out[f"norm_{ref}"] = errors["norm"]
        out[f"nmae_{ref}_percent"] = errors["nmae_percent"]
        out[f"squared_error_{ref}"] = errors["squared_error"]
    return out
