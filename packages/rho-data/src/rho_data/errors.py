"""The one exception type of rho-data: a user-facing, one-line message."""

from __future__ import annotations

from os import PathLike


class RhoDataError(ValueError):
    """Raised for bad input: the message names the file, the structure and the problem."""

    def __init__(self, message: str, *, path: str | PathLike | None = None, structure: int | None = None):
        parts = []
        if path is not None:
            parts.append(str(path))
        if structure is not None:
            parts.append(f"structure {structure}")
        prefix = ": ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.path = path
        self.structure = structure
