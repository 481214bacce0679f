"""Reading the plain number files FHI-aims writes (one or more floats per line).

FHI-aims writes Fortran numbers, sometimes with a ``D`` exponent (``1.0D-03``); overflowed
fields appear as ``*****``. Everything is read in chunks so that memory stays close to the
size of the result, and every value is checked to be finite.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import AimsIOError

_CHUNK = 1 << 24  # bytes per chunk


def _convert(tokens: list[bytes], path: Path) -> np.ndarray:
    try:
        return np.array(tokens, dtype=np.float64)
    except ValueError:
        for t in tokens:
            try:
                float(t)
            except ValueError:
                raise AimsIOError(f"'{t.decode(errors='replace')}' is not a number", path=path) from None
        raise  # pragma: no cover


def read_floats(path: str | Path, expected: int | None = None) -> np.ndarray:
    """All whitespace-separated numbers of ``path`` (E or D exponents) as one flat array.

    With ``expected``, the file must hold exactly that many values. NaN or inf is an error.
    """
    path = Path(path)
    if not path.is_file():
        raise AimsIOError("missing file", path=path)
    parts: list[np.ndarray] = []
    count = 0
    with open(path, "rb") as f:
        rest = b""
        while True:
            chunk = f.read(_CHUNK)
            if not chunk:
                break
            data = rest + chunk
            cut = max(data.rfind(b"\n"), data.rfind(b" "))
            if cut < 0:
                rest = data
                continue
            data, rest = data[: cut + 1], data[cut + 1 :]
            values = _convert(data.replace(b"D", b"E").replace(b"d", b"e").split(), path)
            count += len(values)
            if expected is not None and count > expected:
                raise AimsIOError(f"has more than the expected {expected} values", path=path)
            parts.append(values)
        if rest.strip():
            parts.append(_convert(rest.replace(b"D", b"E").replace(b"d", b"e").split(), path))
    out = np.concatenate(parts) if parts else np.zeros(0)
    if expected is not None and len(out) != expected:
        raise AimsIOError(f"has {len(out)} values, expected {expected}", path=path)
    bad = ~np.isfinite(out)
    if bad.any():
        raise AimsIOError(f"value {int(np.flatnonzero(bad)[0]) + 1} is {out[bad][0]} (not finite)", path=path)
    return out


def read_columns(path: str | Path, n_columns: int) -> np.ndarray:
    """A table of ``n_columns`` numbers per row (e.g. grid files: x y z value)."""
    values = read_floats(path)
    if len(values) % n_columns:
        raise AimsIOError(f"has {len(values)} numbers, not a multiple of {n_columns} columns", path=path)
    return values.reshape(-1, n_columns)
