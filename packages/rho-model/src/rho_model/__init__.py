"""rho-model: equivariant lambda-SOAP models of density-fitting coefficients, fitted in the overlap metric."""

__version__ = "0.1.0"

from .errors import RhoModelError
from .model import RhoModel, build_model, load_model, save_model

__all__ = ["RhoModel", "RhoModelError", "__version__", "build_model", "load_model", "save_model"]
