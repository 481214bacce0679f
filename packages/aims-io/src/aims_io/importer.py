"""A tree of finished RI-fit runs -> one rho-data dataset.

Every directory under the root that holds a ``geometry.in`` is a run. A run that cannot be
imported (unfinished, truncated or missing files, sizes that disagree, NaN, an unsupported
FHI-aims version, another basis or version than the dataset's) is reported with its run
directory and file, and the others are still imported. A new dataset is written to a unique
temporary file and appears under its name only when complete; an existing one is refused unless
``append`` (add the runs it does not hold yet: resume) or ``overwrite`` (build a new dataset,
which replaces the old one only when complete).

A run whose SCF did not converge is imported with ``scf_converged = 0`` and a warning naming
it, or refused with ``require_converged``.

The facts of each run (version, basis counts, convergence, metadata, provenance) are read by
:mod:`aims_io.run_facts`. The runs of further fields (``<label>.field-<k>``) are not structures
of their own: they give the further targets of the structure of ``<label>``
(:mod:`aims_io.field_runs`); a missing or failed field run fails its structure.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rho_data import (
    AuxiliaryBasis,
    RhoDataError,
    RhoWriter,
    Structure,
    create_dataset,
)
from rho_data.atomic import atomic_output, check_output_location
from rho_data.orbital_fields import target_name

from .aimsout import parse_aims_out
from .errors import AimsIOError
from .field_runs import field_targets, is_field_run, run_fields, target_metadata
from .geometry import read_geometry
from .rifiles import read_ri_run
from .run_facts import METADATA, PERIODIC_METADATA, dataset_provenance, not_converged, run_metadata, scan_run

Progress = Callable[[str, str | None], None]


@dataclass
class ImportReport:
    imported: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already in the dataset
    failed: list[tuple[str, str]] = field(default_factory=list)  # (run dir, message)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (run dir, message): imported all the same


def find_runs(root: Path) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        raise AimsIOError("not a directory", path=root)
    return sorted({p.parent for p in root.rglob("geometry.in")}, key=lambda p: str(p.relative_to(root)))


def _label(root: Path, run_dir: Path) -> str:
    rel = str(run_dir.relative_to(root))
    return "." if rel == "." else rel


class _NothingImported(Exception):
    """Every run failed: the new dataset is discarded (an existing one is kept as it was)."""


def _open_output(out: Path, *, append: bool, overwrite: bool) -> RhoWriter | None:
    """Check the output before any work: the writer of an existing dataset to append to, or None.

    Refuses a directory, a missing or read-only directory, and an existing dataset without
    ``append`` or ``overwrite``.
    """
    if out.exists() and not out.is_dir() and not (append or overwrite):
        raise AimsIOError("already exists (pass --append to add the runs it lacks, or --overwrite to replace it)", path=out)
    if append and out.is_file():
        if not os.access(out, os.R_OK | os.W_OK):
            raise AimsIOError("cannot append: the dataset is not writable", path=out)
        writer = RhoWriter(out)
        if writer.provenance.producer != "aims-io":
            writer.close()
            raise AimsIOError(f"was written by '{writer.provenance.producer}', not aims-io", path=out)
        return writer
    check_output_location(out, overwrite=True, what="dataset")
    return None


def _fail(report: ImportReport, run_dir: Path, message: str, on_progress: Progress | None) -> None:
    report.failed.append((str(run_dir), message))
    if on_progress:
        on_progress(str(run_dir), message)


def import_tree(
    root: str | Path,
    out: str | Path,
    *,
    threshold: float = 0.0,
    on_progress: Progress | None = None,
    append: bool = False,
    overwrite: bool = False,
    require_converged: bool = False,
) -> ImportReport:
    """Import every run under ``root`` into the dataset ``out``.

    A new ``out`` (or, with ``overwrite``, the replacement of an existing one) is written to a
    unique temporary file and renamed when complete; with ``append`` the runs an existing
    dataset lacks are added to it, one committed structure at a time. Runs whose SCF did not
    converge are imported with a warning, or refused with ``require_converged``.
    """
    root, out = Path(root), Path(out)
    report = ImportReport()
    runs = [r for r in find_runs(root) if not is_field_run(r)]
    if not runs:
        raise AimsIOError("holds no run directories (no geometry.in below it)", path=root)
    writer = _open_output(out, append=append, overwrite=overwrite)
    try:
        done = set(writer.labels()) if writer else set()
        scanned = _scan_all(root, runs, done, report, on_progress, require_converged)
        _check_versions_and_basis(scanned, writer, report, on_progress)
        with contextlib.suppress(_NothingImported), contextlib.ExitStack() as stack:
            if writer is None and scanned:
                first = next(iter(scanned))
                version, _ = scanned[first]
                basis = AuxiliaryBasis.from_counts(_basis_counts(scanned))
                periodic = read_geometry(first / "geometry.in").pbc.any()
                provenance = dataset_provenance(
                    root, first, version, parse_aims_out(first / "aims.out").commit, threshold, periodic=bool(periodic)
                )
                target = stack.enter_context(atomic_output(out, overwrite=overwrite, what="dataset"))
                fields = run_fields(first)
                writer = create_dataset(
                    target,
                    basis,
                    provenance,
                    metadata=METADATA + (PERIODIC_METADATA if periodic else []) + target_metadata(fields),
                    target=target_name(fields[0]),
                    targets=[target_name(f) for f in fields[1:]],
                )
                stack.callback(writer.close)  # closed before the complete file is renamed to `out`
                _append_runs(root, runs, done, scanned, writer, report, on_progress, threshold, out)
                if not report.imported:
                    raise _NothingImported  # an empty dataset never replaces one, nor appears
            else:
                _append_runs(root, runs, done, scanned, writer, report, on_progress, threshold, out)
    finally:
        if writer is not None:
            writer.close()
    return report


def _scan_all(
    root: Path, runs: list[Path], done: set[str], report: ImportReport, on_progress: Progress | None, require_converged: bool
) -> dict[Path, tuple[str, dict]]:
    """Pass 1: version, basis counts and SCF convergence of each run (cheap)."""
    scanned: dict[Path, tuple[str, dict]] = {}
    for run_dir in runs:
        if _label(root, run_dir) in done:
            continue
        try:
            scan = scan_run(run_dir)
            problem = not_converged(run_dir)
        except (AimsIOError, RhoDataError) as err:
            _fail(report, run_dir, str(err), on_progress)
            continue
        if problem is not None and require_converged:
            _fail(report, run_dir, f"{problem}; refused (--require-converged)", on_progress)
            continue
        if problem is not None:
            report.warnings.append((str(run_dir), f"{problem}; imported with scf_converged = 0"))
        scanned[run_dir] = scan
    return scanned


def _basis_counts(scanned: dict[Path, tuple[str, dict]]) -> dict[str, tuple[int, ...]]:
    counts: dict[str, tuple[int, ...]] = {}
    for _, per_element in scanned.values():
        for sym, c in per_element.items():
            counts.setdefault(sym, c)
    return counts


def _check_versions_and_basis(
    scanned: dict[Path, tuple[str, dict]], writer: RhoWriter | None, report: ImportReport, on_progress: Progress | None
) -> None:
    """Drop (as failed) runs of another FHI-aims version or basis than the dataset's (or the first run's)."""
    version = writer.provenance.producer_version if writer else None
    basis_counts: dict[str, tuple[int, ...]] = {s: writer.basis[s].n_radial for s in writer.basis.symbols} if writer else {}
    for run_dir, (run_version, per_element) in list(scanned.items()):
        problem, file = None, "aims.out"
        if version is None:
            version = run_version
        elif run_version != version:
            problem = f"FHI-aims version {run_version} differs from the dataset's {version}"
        for sym, counts in per_element.items():
            if problem is None and sym in basis_counts and basis_counts[sym] != counts:
                problem, file = (
                    f"basis of {sym} {list(counts)} differs from the dataset's {list(basis_counts[sym])}",
                    "basis_info.out",
                )
        lacking = sorted(set(per_element) - set(writer.basis.symbols)) if writer else []
        if problem is None and lacking:
            problem, file = f"has elements {lacking} the dataset's basis lacks", "basis_info.out"
        if problem is not None:
            report.failed.append((str(run_dir), str(AimsIOError(problem, path=run_dir / file))))
            if on_progress:
                on_progress(str(run_dir), problem)
            del scanned[run_dir]
            continue
        for sym, counts in per_element.items():
            basis_counts.setdefault(sym, counts)


def _append_runs(
    root: Path,
    runs: list[Path],
    done: set[str],
    scanned: dict[Path, tuple[str, dict]],
    writer: RhoWriter | None,
    report: ImportReport,
    on_progress: Progress | None,
    threshold: float,
    out: Path,
) -> None:
    """Pass 2: read and append, one run at a time (memory: one run)."""
    for run_dir in runs:
        label = _label(root, run_dir)
        if label in done:
            report.skipped.append(label)
            if on_progress:
                on_progress(str(run_dir), None)
            continue
        if run_dir not in scanned or writer is None:
            continue
        try:
            fields = run_fields(run_dir)
            if [target_name(f) for f in fields] != writer.targets:
                raise AimsIOError(f"fields {fields} differ from the dataset's targets {writer.targets}", path=run_dir)
            targets, field_meta = field_targets(run_dir, fields)
            run = read_ri_run(run_dir, threshold=threshold)
            periodic = bool(writer.provenance.extra.get("periodic", False))
            if run.periodic != periodic:
                kinds = ("a molecule", "a periodic structure")
                raise AimsIOError(
                    f"is {kinds[run.periodic]}, the dataset holds {'periodic structures' if periodic else 'molecules'}",
                    path=run_dir / "geometry.in",
                )
            structure = Structure(
                numbers=run.geometry.numbers,
                positions=run.geometry.positions,
                cell=run.geometry.cell,
                pbc=run.geometry.pbc,
                label=label,
                coefficients=run.coefficients,
                projections=run.projections,
                overlap=run.overlap,
                metadata={**run_metadata(run), **field_meta},
                targets=targets,
            )
            writer.append(structure)
            report.imported.append(label)
            if on_progress:
                on_progress(str(run_dir), None)
        except (AimsIOError, RhoDataError) as err:
            message = str(err).replace(str(writer.path), str(out))  # name the dataset, not its temporary file
            _fail(report, run_dir, message, on_progress)
