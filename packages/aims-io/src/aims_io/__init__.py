"""aims-io: FHI-aims inputs, runs (local or SLURM), output parsing and import into rho-data."""

__version__ = "0.1.0"

from .aimsout import AimsOutput, parse_aims_out
from .errors import AimsIOError
from .geometry import Geometry, read_geometry, write_geometry
from .rifiles import RIRun, read_ri_run
from .settings import load_settings

__all__ = [
    "AimsIOError",
    "AimsOutput",
    "Geometry",
    "RIRun",
    "__version__",
    "load_settings",
    "parse_aims_out",
    "read_geometry",
    "read_ri_run",
    "write_geometry",
]
