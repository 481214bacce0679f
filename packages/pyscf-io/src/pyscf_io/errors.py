"""The exception for bad input: one line naming the file, the structure and the problem."""

from __future__ import annotations

from rho_data import RhoDataError


class PyscfIoError(RhoDataError):
    """Bad input or a failed structure; the message is shown to the user as is."""
