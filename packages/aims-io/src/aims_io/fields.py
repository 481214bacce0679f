"""The rho-eval field builder of aims-io: FHI-aims rebuilds fields from coefficients.

Registered as ``aims-io`` in the entry-point group ``rho_data.field_builders``. For each
request and each named coefficient vector it writes a rebuild run directory
(``<work>/rebuild/<name>/<index>``), runs them all through the configured backend (local, or
one SLURM array with ``sbatch --wait``), then reads ``partition_tab.out`` (points, weights) and
``rho_rebuilt_ri.out`` (any coefficient vector, of any target). The SCF density comes from
``rho_scf.out`` of the structure's RI-fit run (recorded in the dataset's provenance) when that
file exists, for the electron density only: no SCF-level field is given for other targets. Grids that do not match point
for point are matched by coordinates, or refused.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from rho_data import Grid, RhoFile
from rho_data.field_builders import SCF_FIELD, FieldRequest
from rho_data.orbital_fields import parse_field

from .errors import AimsIOError
from .export import export_rebuild, ri_run_dir
from .grids import align, read_grid_file
from .layout import check_name
from .prepare import run_dirs_now
from .runstate import FINISHED, run_state
from .settings import SETTINGS_FILE as SETTINGS_NAME
from .settings import load_settings


class AimsFieldBuilder:
    def __init__(self, work: str | Path, settings: str | Path | None = None, overrides: Sequence[str] = (), scf: bool = True):
        self.work = Path(work)
        paths = [settings] if settings else ([self.work / SETTINGS_NAME] if (self.work / SETTINGS_NAME).is_file() else [])
        self.settings = load_settings(paths, overrides)
        self.scf = scf

    def build(self, dataset: RhoFile, requests: Sequence[FieldRequest]) -> Iterator[tuple[FieldRequest, Grid]]:
        dirs: dict[tuple[int, str], Path] = {}
        todo: list[Path] = []
        for k, request in enumerate(requests):
            if not request.coefficients:
                raise AimsIOError("a field request names no coefficients", path=dataset.path, structure=request.index)
            for name, vector in request.coefficients.items():
                check_name(name, "coefficient name")
                run_dir, must_run = export_rebuild(dataset, request.index, vector, self.work, name, self.settings)
                dirs[(k, name)] = run_dir
                if must_run:
                    todo.append(run_dir)
        if todo:
            run_dirs_now(todo, self.work, self.settings, "rebuild", wait=True)
        for k, request in enumerate(requests):
            yield request, self._grid(dataset, request, {name: dirs[(k, name)] for name in request.coefficients})

    def _grid(self, dataset: RhoFile, request: FieldRequest, dirs: dict[str, Path]) -> Grid:
        points = weights = None
        values = {}
        for name, run_dir in dirs.items():
            state = run_state(run_dir)
            if state.state != FINISHED:
                raise AimsIOError(f"rebuild of '{name}' {state.state}: {state.reason}", path=run_dir, structure=request.index)
            p, w = read_grid_file(run_dir / "partition_tab.out")
            if points is None:
                points, weights = p, w
            else:
                weights_here = align(points, p, w, run_dir / "partition_tab.out")
                if abs(weights_here - weights).max() > 1e-10 * max(1.0, abs(weights).max()):
                    raise AimsIOError(
                        "integration weights differ from the other rebuilds of this structure",
                        path=run_dir / "partition_tab.out",
                        structure=request.index,
                    )
            rp, rv = read_grid_file(run_dir / "rho_rebuilt_ri.out")
            values[name] = align(p, rp, rv, run_dir / "rho_rebuilt_ri.out")
            if p is not points:
                values[name] = align(points, p, values[name], run_dir / "rho_rebuilt_ri.out")
        target = dataset.target if request.target is None else request.target
        # rho_scf.out of the RI-fit run is the total SCF density: the SCF-level field of no other target
        if self.scf and parse_field(target).kind == "density":
            try:
                scf_file = ri_run_dir(dataset, request.index) / "rho_scf.out"
            except AimsIOError:
                scf_file = None
            if scf_file is not None and scf_file.is_file():
                sp, sv = read_grid_file(scf_file)
                values[SCF_FIELD] = align(points, sp, sv, scf_file)
        return Grid(points, weights, values)


def make_field_builder(**options) -> AimsFieldBuilder:
    """Options: ``work`` (required: directory for rebuild runs), ``settings`` (a YAML file;
    default ``<work>/aims-io.yaml`` when present), ``overrides`` (``section.key=value``
    strings) and ``scf`` (add the SCF density, default true)."""
    known = {"work", "settings", "overrides", "scf"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise AimsIOError(f"aims-io field builder: unknown options {unknown} (known: {sorted(known)})")
    if "work" not in options:
        raise AimsIOError("aims-io field builder: option 'work' (a directory for the rebuild runs) is required")
    return AimsFieldBuilder(**options)
