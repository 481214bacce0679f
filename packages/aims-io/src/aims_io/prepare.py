"""Preparing run directories for the SCF, RI-fit and rebuild stages, and running a stage."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rho_data.atomic import atomic_output
from rho_data.orbital_fields import parse_field

from .control import read_keywords, write_control
from .errors import AimsIOError
from .field_runs import field_run_name
from .geometry import Geometry, geometry_text, read_geometry, write_geometry
from .kso import WEIGHTS_FILE, write_orbital_weights
from .layout import RUN_INFO, check_name, read_json, run_dirs, stage_dir, write_json
from .periodic import is_periodic, k_point_lines
from .runner import pending, run_local
from .runstate import RunState, aims_finished

RESTART_GLOB = "D_spin_*"


def structure_label(index: int) -> str:
    return f"{index:06d}"


def check_structures(structures: Sequence[Geometry], dft: dict, source: str | Path) -> None:
    """Every structure writable for FHI-aims (cell, pbc, atoms, k-points), all molecules or all
    periodic; one-line errors naming ``source`` and the structure index, before anything is written."""
    kinds = set()
    for i, geometry in enumerate(structures):
        geometry_text(geometry, where=source, structure=i)
        periodic = is_periodic(geometry.pbc)
        k_point_lines(dft, periodic, where=source, structure=i)
        kinds.add(periodic)
        if len(kinds) > 1:
            raise AimsIOError(
                "holds molecules and periodic structures: one run holds one kind (split the file)", path=source, structure=i
            )


def prepare_scf(
    work: Path,
    structures: Sequence[Geometry],
    settings: dict,
    names: Sequence[str] | None = None,
    source: str | Path = "structures",
) -> list[Path]:
    """One SCF run directory per structure (existing finished runs are left alone)."""
    check_structures(structures, settings["dft"], source)
    out = []
    for i, geometry in enumerate(structures):
        label = structure_label(i)
        run_dir = stage_dir(work, "scf") / label
        if aims_finished(run_dir):
            out.append(run_dir)
            continue
        run_dir.mkdir(parents=True, exist_ok=True)
        write_geometry(geometry, run_dir / "geometry.in")
        write_control(run_dir / "control.in", "scf", settings["dft"], geometry)
        write_json(run_dir / RUN_INFO, {"stage": "scf", "label": label, "index": i, "name": names[i] if names else ""})
        out.append(run_dir)
    return out


def prepare_ri(work: Path, settings: dict) -> tuple[list[Path], list[Path]]:
    """RI-fit run directories for every finished SCF run, linking its restart files: one per field
    of ``dft.fields`` (``ri/<label>`` for the first, ``ri/<label>.field-<k>`` for field k).

    Returns (prepared, skipped: SCF runs not finished).
    """
    prepared, skipped = [], []
    scf_dirs = run_dirs(stage_dir(work, "scf"))
    if not scf_dirs:
        raise AimsIOError("no SCF run directories (run `aims-io prepare scf` first)", path=stage_dir(work, "scf"))
    fields = settings["dft"]["fields"]
    for scf_dir in scf_dirs:
        if not aims_finished(scf_dir):
            skipped.append(scf_dir)
            continue
        restart = sorted(scf_dir.glob(RESTART_GLOB))
        if not restart:
            raise AimsIOError(f"finished but wrote no restart files ({RESTART_GLOB}); was elsi_restart set?", path=scf_dir)
        for k, field in enumerate(fields):
            run_dir = stage_dir(work, "ri") / check_name(field_run_name(scf_dir.name, k), "run directory name")
            prepared.append(_prepare_ri_dir(run_dir, scf_dir, restart, field, settings))
    return prepared, skipped


def _prepare_ri_dir(run_dir: Path, scf_dir: Path, restart: list[Path], field: str, settings: dict) -> Path:
    """One RI-fit run directory of ``field``; a field other than the density gets its orbital weights."""
    info = read_json(scf_dir / RUN_INFO)
    kso = parse_field(field).kind != "density"
    run_dir.mkdir(parents=True, exist_ok=True)
    geometry = read_geometry(scf_dir / "geometry.in")
    write_geometry(geometry, run_dir / "geometry.in")
    _same_k_points(scf_dir / "control.in", dict(k_point_lines(settings["dft"], is_periodic(geometry.pbc), where=run_dir)))
    write_control(run_dir / "control.in", "ri", settings["dft"], geometry, kso_weights=kso)
    record = {**info, "stage": "ri", "scf_dir": str(scf_dir.resolve()), "field": field, "fields": settings["dft"]["fields"]}
    if kso:
        try:
            record["field_integral"] = write_orbital_weights(
                scf_dir, run_dir, field, degeneracy_ev=float(settings["dft"]["degeneracy_ev"])
            )
        except AimsIOError as err:
            raise AimsIOError(f"field '{field}': {err}", path=run_dir) from None
    else:
        (run_dir / WEIGHTS_FILE).unlink(missing_ok=True)
    for f in restart:
        link = run_dir / f.name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(f.resolve())
    write_json(run_dir / RUN_INFO, record)
    return run_dir


def _same_k_points(scf_control: Path, ri: dict[str, str]) -> None:
    """The RI fit reads the SCF's density matrices per k-point: its k-points must be the SCF's."""
    scf = {k: v for k, v in read_keywords(scf_control).items() if k in ("k_grid", "k_grid_density")}
    if scf != ri:
        raise AimsIOError(f"the SCF ran with k-points {scf or 'none'}, the settings now give {ri or 'none'}", path=scf_control)


def coefficients_digest(values: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(values, dtype=np.float64).tobytes()).hexdigest()


def write_coefficients(path: Path, values: np.ndarray) -> None:
    """One value per line, full double precision (what FHI-aims reads with ri_density_restart)."""
    with atomic_output(path, overwrite=True, what="coefficient file") as tmp:
        np.savetxt(tmp, np.asarray(values, dtype=np.float64), fmt="%.17E")


def prepare_rebuild(run_dir: Path, geometry: Geometry, aims_coefficients: np.ndarray, settings: dict, info: dict) -> bool:
    """A rebuild run directory for coefficients already in FHI-aims order.

    Returns False (and leaves it alone) when it has already finished with these exact
    coefficients, True when it must run.
    """
    digest = coefficients_digest(aims_coefficients)
    old = read_json(run_dir / RUN_INFO)
    if aims_finished(run_dir) and old.get("coefficients_sha1") == digest:
        return False
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("aims.out", "rho_rebuilt_ri.out", "partition_tab.out"):
        (run_dir / stale).unlink(missing_ok=True)
    write_geometry(geometry, run_dir / "geometry.in")
    write_control(run_dir / "control.in", "rebuild", settings["dft"], geometry)
    write_coefficients(run_dir / "ri_restart_coeffs.out", aims_coefficients)
    write_json(run_dir / RUN_INFO, {**info, "stage": "rebuild", "coefficients_sha1": digest})
    return True


def run_dirs_now(
    dirs: list[Path],
    work: Path,
    settings: dict,
    name: str,
    *,
    wait: bool = False,
    on_done: Callable[[RunState], None] | None = None,
) -> tuple[list[Path], str | None]:
    """Run the not-finished, not-running ones of ``dirs`` with the configured backend.

    Local runs block until done. SLURM submits one array (and blocks only with ``wait``).
    Returns (directories started, SLURM job id or None).
    """
    todo, _ = pending(dirs)
    if not todo:
        return [], None
    if settings["hpc"]["backend"] == "slurm":
        from .slurm import submit

        return todo, submit(todo, settings, Path(work) / "jobs", check_name(name.replace("/", "-"), "job name"), wait=wait)
    run_local(todo, settings, on_done)
    return todo, None
