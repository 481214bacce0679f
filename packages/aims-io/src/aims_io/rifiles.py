"""One finished RI-fit run directory -> canonical coefficients, projections, overlap.

Files read (``ri_full_output``): ``aims.out``, ``geometry.in``, ``basis_info.out``,
``ri_restart_coeffs.out`` (coefficients d), ``ri_projections.out`` (w_a = integral phi_a rho),
``ri_ovlp.out`` (S), and, when present, the grid files ``rho_scf.out``, ``rho_rebuilt_ri.out``,
``partition_tab.out`` for the fit quality on FHI-aims's grid. Every check failure raises
:class:`AimsIOError` naming ``<run dir>/<file>``.

A periodic run (``lattice_vector`` in geometry.in) writes the same three files, one real value
per auxiliary function of the cell (no k index: the files lab-cosmo/rholearn's parser reads for
its periodic runs too); the overlap is taken as the Gamma-point, lattice-summed overlap
S_ij = sum_T <phi_i|phi_j(. - T)> of the cell's auxiliary functions, as rho-data stores it. Its
k-points: ``k_grid`` / ``k_grid_density`` of control.in and the count aims.out reports, which
must equal n1 n2 n3 of ``k_grid``; a molecule with a k-point keyword is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rho_data import BlockSparseOverlap
from rho_data.grid_errors import field_errors
from rho_data.yaml_input import short_repr

from .aimsout import AimsOutput, parse_aims_out, tail
from .basis_info import n_functions, read_basis_info
from .control import read_keywords
from .errors import AimsIOError
from .floats import read_floats
from .geometry import Geometry, read_geometry
from .grids import read_fields
from .order import AimsOrder, order_for_run

GRID_FILES = {"scf": "rho_scf.out", "ri": "rho_rebuilt_ri.out"}


@dataclass
class RIRun:
    run_dir: Path
    aims: AimsOutput
    geometry: Geometry
    atom_counts: list[tuple[int, ...]]
    order: AimsOrder
    coefficients: np.ndarray
    projections: np.ndarray
    overlap: BlockSparseOverlap | None = None
    fit_quality: dict[str, float] = field(default_factory=dict)
    k_points: dict[str, str] = field(default_factory=dict)  # k_grid / k_grid_density of control.in

    @property
    def periodic(self) -> bool:
        return bool(self.geometry.pbc.any())

    @property
    def n_functions(self) -> int:
        return len(self.coefficients)


def read_finished_aims_out(run_dir: Path) -> AimsOutput:
    aims = parse_aims_out(run_dir / "aims.out")
    if not aims.finished:
        raise AimsIOError(
            f"FHI-aims did not finish (no 'Have a nice day.'); last lines: {tail(run_dir / 'aims.out', 3)}",
            path=run_dir / "aims.out",
        )
    if aims.version_number is None:
        raise AimsIOError(f"cannot read the FHI-aims version (got {short_repr(aims.version)})", path=run_dir / "aims.out")
    return aims


def read_ri_run(run_dir: str | Path, *, overlap: bool = True, threshold: float = 0.0) -> RIRun:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise AimsIOError("run directory not found", path=run_dir)
    aims = read_finished_aims_out(run_dir)
    geometry = read_geometry(run_dir / "geometry.in")
    if geometry.ghost.any():
        raise AimsIOError(
            "has ghost sites ('empty'); importing them into rho-data is not supported", path=run_dir / "geometry.in"
        )
    k_points = check_k_points(run_dir, aims, bool(geometry.pbc.any()))
    counts = read_basis_info(run_dir / "basis_info.out")
    if len(counts) != len(geometry.numbers):
        raise AimsIOError(
            f"describes {len(counts)} atoms, geometry.in has {len(geometry.numbers)}", path=run_dir / "basis_info.out"
        )
    if aims.n_atoms is not None and aims.n_atoms != len(geometry.numbers):
        raise AimsIOError(f"reports {aims.n_atoms} atoms, geometry.in has {len(geometry.numbers)}", path=run_dir / "aims.out")
    sizes = np.array([n_functions(c) for c in counts], dtype=np.int64)
    n = int(sizes.sum())
    if aims.n_auxiliary is not None and aims.n_auxiliary != n:
        raise AimsIOError(f"reports {aims.n_auxiliary} auxiliary functions, basis_info.out gives {n}", path=run_dir / "aims.out")
    order = order_for_run(run_dir, aims.version_number, counts)
    coefficients = order.to_canonical(_vector(run_dir / "ri_restart_coeffs.out", n))
    projections = order.to_canonical(_vector(run_dir / "ri_projections.out", n))
    run = RIRun(run_dir, aims, geometry, counts, order, coefficients, projections, k_points=k_points)
    if overlap:
        from .overlap import read_overlap

        run.overlap = read_overlap(run_dir / "ri_ovlp.out", sizes, order, threshold)
    run.fit_quality = fit_quality(run_dir)
    return run


def check_k_points(run_dir: Path, aims: AimsOutput, periodic: bool) -> dict[str, str]:
    """The k-point keywords of the run's control.in, checked against the structure and aims.out."""
    control = run_dir / "control.in"
    keywords = read_keywords(control) if control.is_file() else {}
    k_points = {k: v for k, v in keywords.items() if k in ("k_grid", "k_grid_density")}
    if not periodic:
        if k_points:
            raise AimsIOError(f"sets {', '.join(k_points)} but geometry.in is a molecule (no lattice_vector)", path=control)
        return k_points
    if "k_grid" in k_points and aims.n_k_points_requested is not None:
        try:
            grid = [int(w) for w in k_points["k_grid"].split()]
        except ValueError:
            raise AimsIOError(f"cannot read k_grid {short_repr(k_points['k_grid'])}", path=control) from None
        if len(grid) != 3 or int(np.prod(grid)) != aims.n_k_points_requested:
            raise AimsIOError(
                f"reports {aims.n_k_points_requested} k-points, control.in has k_grid {k_points['k_grid']}",
                path=run_dir / "aims.out",
            )
    return k_points


def _vector(path: Path, n: int) -> np.ndarray:
    values = read_floats(path)
    if len(values) != n:
        raise AimsIOError(f"has {len(values)} values, basis_info.out gives {n} auxiliary functions", path=path)
    return values


def fit_quality(run_dir: Path) -> dict[str, float]:
    """Fit quality on FHI-aims's grid, when the grid files are there.

    n_electrons_fit = sum_k w_k rho_RI(r_k); fit_squared_error = sum_k w_k (rho_RI - rho_SCF)^2;
    fit_nmae_percent = 100 sum_k w_k |rho_RI - rho_SCF| / sum_k w_k rho_SCF.
    """
    if not all((run_dir / f).is_file() for f in (*GRID_FILES.values(), "partition_tab.out")):
        return {}
    _, w, fields = read_fields(run_dir, GRID_FILES)
    errors = field_errors(w, fields["ri"], fields["scf"])
    return {
        "n_electrons_fit": float(w @ fields["ri"]),
        "fit_squared_error": errors["squared_error"],
        "fit_nmae_percent": errors["nmae_percent"],
    }
