"""Reading a small text input file (settings, FHI-aims inputs and outputs) with one-line errors."""

from __future__ import annotations

from os import PathLike
from pathlib import Path

from .errors import RhoDataError


def read_text(
    path: str | PathLike,
    *,
    what: str = "file",
    missing: str = "no such file",
    max_bytes: int | None = None,
    error: type[RhoDataError] = RhoDataError,
) -> str:
    """The UTF-8 text of ``path``; a directory, a missing, unreadable or non-UTF-8 file, or one
    over ``max_bytes`` (read bounded: a device such as /dev/zero has no size) is one ``error``
    naming the file."""
    path = Path(path)
    if path.is_dir():
        raise error(f"is a directory, not a {what}", path=path)
    try:
        with path.open("rb") as handle:
            data = handle.read() if max_bytes is None else handle.read(max_bytes + 1)
        if max_bytes is not None and len(data) > max_bytes:
            raise error(f"is larger than {max_bytes // 1024} KiB; a {what} is never this large", path=path)
        return data.decode("utf-8")
    except FileNotFoundError:
        raise error(missing, path=path) from None
    except UnicodeDecodeError as err:
        raise error(f"is not UTF-8 text (byte {err.start})", path=path) from None
    except OSError as err:
        raise error(f"cannot read: {err.strerror}", path=path) from None
