"""Errors of a fitted or predicted density against a reference on a quadrature grid.

With weights w_k at points r_k, a field p and a reference r:

- absolute error  A = integral |p - r| dr   ~ sum_k w_k |p_k - r_k|
- norm            N = integral r dr         ~ sum_k w_k r_k   (electrons of the reference), or with
                  ``normalisation="absolute"`` integral |r| dr (for fields that change sign)
- %NMAE             = 100 A / N             (NaN when N = 0)
- squared error   E = integral (p - r)^2 dr ~ sum_k w_k (p_k - r_k)^2
"""

from __future__ import annotations

import numpy as np


def field_errors(weights, predicted, reference, normalisation: str = "integral") -> dict[str, float]:
    """``abs_error``, ``norm``, ``nmae_percent`` and ``squared_error`` of ``predicted`` against ``reference``.

    ``normalisation`` is ``integral`` (N = integral r) or ``absolute`` (N = integral |r|).
    """
    if normalisation not in ("integral", "absolute"):
        raise ValueError(f"normalisation must be 'integral' or 'absolute', got {normalisation!r}")
    w = np.asarray(weights, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    diff = np.asarray(predicted, dtype=np.float64) - reference
    abs_error = float(w @ np.abs(diff))
    norm = float(w @ (reference if normalisation == "integral" else np.abs(reference)))
    return {
        "abs_error": abs_error,
        "norm": norm,
        "nmae_percent": 100.0 * abs_error / norm if norm != 0.0 else float("nan"),
        "squared_error": float(w @ (diff * diff)),
    }
