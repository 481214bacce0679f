"""rho-eval: real-space evaluation of predicted densities against the RI and SCF densities."""

__version__ = "0.1.0"

from . import api as _api  # noqa: E402
from .api import density_on_grid, density_on_points  # noqa: E402
from .config import Settings, load_settings  # noqa: E402
from .errors import RhoEvalError  # noqa: E402
from .evaluate import Plan, evaluate_chunk, run_chunks  # noqa: E402
from .gridmatch import match_points, merge_grids  # noqa: E402
from .metrics import coefficient_squared_error, field_errors, integral, structure_metrics  # noqa: E402
from .run import evaluate_files  # noqa: E402

# importing the submodule .evaluate binds its name here: the notebook API function takes it back
evaluate = _api.evaluate

__all__ = [
    "Plan",
    "RhoEvalError",
    "Settings",
    "__version__",
    "coefficient_squared_error",
    "density_on_grid",
    "density_on_points",
    "evaluate",
    "evaluate_chunk",
    "evaluate_files",
    "field_errors",
    "integral",
    "load_settings",
    "match_points",
    "merge_grids",
    "run_chunks",
    "structure_metrics",
]
