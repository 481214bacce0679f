"""rho-data: the versioned HDF5 format of rho (see SCHEMA.md)."""

from .basis import AuxiliaryBasis, ElementBasis, GaussianRadial
from .errors import RhoDataError
from .files import PARTS, RhoFile, open_dataset, open_file, open_grids, open_predictions
from .overlap import BlockSparseOverlap
from .provenance import Provenance
from .records import Grid, Structure, TargetValues
from .schema import SCHEMA_NAME, SCHEMA_VERSION, STANDARD_METADATA
from .writer import RhoWriter, create_dataset, create_grids, create_predictions

__version__ = "0.1.0"

__all__ = [
    "AuxiliaryBasis",
    "BlockSparseOverlap",
    "ElementBasis",
    "GaussianRadial",
    "Grid",
    "PARTS",
    "Provenance",
    "RhoDataError",
    "RhoFile",
    "RhoWriter",
    "SCHEMA_NAME",
    "SCHEMA_VERSION",
    "STANDARD_METADATA",
    "Structure",
    "TargetValues",
    "create_dataset",
    "create_grids",
    "create_predictions",
    "open_dataset",
    "open_file",
    "open_grids",
    "open_predictions",
    "__version__",
]
