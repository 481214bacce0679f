"""Refusing non-finite numbers: a NaN or an infinity is never averaged or learned silently."""

from __future__ import annotations

from os import PathLike

import numpy as np

from .errors import RhoDataError


def require_finite(
    values: object,
    what: str,
    *,
    path: str | PathLike | None = None,
    structure: int | None = None,
    label: str = "",
    error: type[RhoDataError] = RhoDataError,
) -> np.ndarray:
    """``values`` as an array, or an error naming the file, the structure and the first bad entry."""
    array = np.asarray(values)
    if array.dtype.kind in "fc" and not np.all(np.isfinite(array)):
        bad = np.flatnonzero(~np.isfinite(array.ravel()))
        name = f" ({label})" if label else ""
        raise error(
            f"{what}{name} holds {len(bad)} non-finite value(s) (first: entry {int(bad[0])} = {array.ravel()[bad[0]]})",
            path=path,
            structure=structure,
        )
    return array
