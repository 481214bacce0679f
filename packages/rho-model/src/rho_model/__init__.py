"""rho-model: equivariant lambda-SOAP models of density-fitting coefficients, fitted in the overlap metric.

``rho_model.load(path).predict(atoms)`` is the notebook API (:mod:`rho_model.api`). Names that need
torch or featomic are imported on first use, so ``import rho_model`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

from .errors import RhoModelError

_LAZY = {
    "RhoModel": "model",
    "build_model": "model",
    "load_model": "model_file",
    "save_model": "model_file",
    "load": "api",
    "LoadedModel": "api",
    "Prediction": "api",
}

__all__ = [
    "LoadedModel",
    "Prediction",
    "RhoModel",
    "RhoModelError",
    "__version__",
    "build_model",
    "load",
    "load_model",
    "save_model",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
