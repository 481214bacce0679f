"""The user-facing error of aims-io: one line naming the run directory, the file and the problem."""

from __future__ import annotations

from os import PathLike

from rho_data import RhoDataError


class AimsIOError(RhoDataError):
    """Bad input or a failed run: ``"<path>: <message>"`` (path = run directory / file)."""

    def __init__(self, message: str, *, path: str | PathLike | None = None, structure: int | None = None):
        super().__init__(message, path=path, structure=structure)
