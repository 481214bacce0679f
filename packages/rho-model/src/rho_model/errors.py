"""The one user-facing exception type of rho-model."""

from __future__ import annotations

from rho_data import RhoDataError


class RhoModelError(RhoDataError):
    """Bad user input (options, datasets, model files): a one-line message naming the culprit.

    A :class:`~rho_data.RhoDataError` (and so a ``ValueError``): every rho CLI prints it as one line.
    """
