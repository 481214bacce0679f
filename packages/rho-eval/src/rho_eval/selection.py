"""Subset selection: ``"0:100,120,200:300:5"`` -> indices (Python slice semantics)."""

from __future__ import annotations

from .errors import RhoEvalError


def parse_selection(spec: str | None, n: int) -> list[int]:
    """Indices selected by ``spec`` among ``range(n)``, in order, without repeats.

    ``spec`` is a comma-separated list of indices (negative counts from the end) and slices
    ``start:stop[:step]``; ``None`` or ``""`` selects everything.
    """
    if spec is None or not str(spec).strip():
        return list(range(n))
    chosen: list[int] = []
    seen: set[int] = set()
    for part in str(spec).split(","):
        part = part.strip()
        try:
            if ":" in part:
                fields = [int(x) if x.strip() else None for x in part.split(":")]
                if len(fields) > 3:
                    raise ValueError
                picked = list(range(n))[slice(*fields)]
            else:
                i = int(part)
                if not -n <= i < n:
                    raise RhoEvalError(f"selection '{spec}': index {i} is out of range for {n} structures")
                picked = [i % n]
        except ValueError as err:
            if isinstance(err, RhoEvalError):
                raise
            raise RhoEvalError(f"selection '{spec}': cannot read '{part}' (use indices and start:stop:step slices, comma separated)") from None
        for i in picked:
            if i not in seen:
                seen.add(i)
                chosen.append(i)
    if not chosen:
        raise RhoEvalError(f"selection '{spec}' selects none of the {n} structures")
    return chosen
