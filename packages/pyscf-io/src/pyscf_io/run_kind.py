"""One run computes molecules or periodic cells: the settings that apply to each, checked before any SCF."""

from __future__ import annotations

from collections.abc import Sequence

from .cell import cell_dimension, scf_method
from .config import fit_metric
from .errors import PyscfIoError
from .geometry import InputStructure


def _name(s: InputStructure) -> str:
    return f"{s.source} structure {s.frame} ({s.label})"


def resolve_run_kind(settings: dict, structures: Sequence[InputStructure]) -> bool:
    """True for a run of cells, False for molecules.

    In ``settings``: ``fit_metric: auto`` becomes coulomb (molecules) or overlap (cells), ``cell_scf: auto``
    the scheme :func:`scf_method` picks. Raises one line for a mix of both kinds (or of 3D and 2D cells),
    a k-mesh with molecules, the Coulomb metric with a cell, or a cell setting that cannot be computed.
    """
    cells = [s for s in structures if s.periodic]
    molecules = [s for s in structures if not s.periodic]
    if cells and molecules:
        raise PyscfIoError(
            f"{_name(molecules[0])} is a molecule and {_name(cells[0])} a periodic cell: "
            "one run computes one kind (run the molecules and the cells separately)"
        )
    if not cells:
        if settings["kmesh"] != [1, 1, 1]:
            raise PyscfIoError(f"kmesh {settings['kmesh']} is set but {_name(molecules[0])} is a molecule (no cell, no k-points)")
        settings["fit_metric"] = fit_metric(settings)
        return False
    first = _name(cells[0])
    if settings["fit_metric"] == "coulomb":
        raise PyscfIoError(
            f"fit_metric coulomb with {first}: the Coulomb metric of a cell needs its G = 0 term, which pyscf-io "
            "does not treat; use fit_metric overlap (or auto)"
        )
    settings["fit_metric"] = fit_metric(settings, periodic=True)
    dimensions = {cell_dimension(s.pbc): s for s in cells}
    if len(dimensions) > 1:
        raise PyscfIoError(
            f"{_name(dimensions[3])} is a 3D cell and {_name(dimensions[2])} a 2D one (pbc T T F): "
            "one run computes one kind (run them separately)"
        )
    others = [str(f) for f in settings["fields"] if str(f) != "density"]
    if others:
        raise PyscfIoError(f"fields {others} with {first}: cells are fitted for the total density only (fields: [density])")
    if settings["cell_fit_integrals"] == "analytic" and settings["kmesh"] != [1, 1, 1]:
        raise PyscfIoError(
            f"cell_fit_integrals analytic with kmesh {settings['kmesh']} ({first}): the analytic three-centre "
            "overlaps are Gamma-point only; use cell_fit_integrals grid"
        )
    settings["cell_scf"] = scf_method(settings)  # resolves auto; refuses multigrid with HF before any SCF
    return True
