"""The exception of rho-eval: a user-facing, one-line message (a :class:`rho_data.RhoDataError`)."""

from __future__ import annotations

from rho_data import RhoDataError


class RhoEvalError(RhoDataError):
    """Bad input to an evaluation: the message names the file, the structure and the problem."""
