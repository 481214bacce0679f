"""The one user-facing exception type of rho-model."""

from __future__ import annotations


class RhoModelError(ValueError):
    """Bad user input (options, datasets, model files): a one-line message naming the culprit."""
