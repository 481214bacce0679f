"""Merging files written by parallel jobs (one file per job) into one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from os import PathLike
from pathlib import Path

from .atomic import atomic_output, check_output_location, exclusive_lock
from .errors import RhoDataError
from .files import RhoFile, open_file
from .provenance import Provenance
from .writer import RhoWriter


def _defining(f: RhoFile) -> dict[str, str]:
    p = f.provenance
    return {
        "producer": p.producer,
        "functional": p.functional,
        "ao_basis": p.ao_basis,
        "aux_basis": p.aux_basis,
        "fit_metric": p.fit_metric,
        "target": f.target,
    }


def merge_files(
    output: str | PathLike,
    inputs: Sequence[str | PathLike],
    *,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Copy every structure of ``inputs`` (in order) into a new file ``output``.

    The inputs must be of one kind with the same auxiliary basis, the same defining settings
    (producer, functional, AO and auxiliary basis, fit metric, target), the same metadata,
    extras, fields and further targets, and (predictions, grids) the same dataset. A lock on ``output`` is taken
    before anything is opened (a second merge into the same output is refused at once); the
    output is written to a temporary file unique to this process and published only when
    complete, so a failed or killed merge leaves the old output as it was. Without
    ``overwrite`` an output that another process created meanwhile is refused.
    Returns the number of structures written.
    """
    if not inputs:
        raise RhoDataError("merge needs at least one input file")
    output = Path(output)
    what = "merged file"
    check_output_location(output, overwrite=overwrite, what=what)  # before the lock: names a missing directory
    with exclusive_lock(output, what=what):  # before anything is opened or written
        opened = []
        try:
            for p in inputs:
                opened.append(open_file(p))
            first = opened[0]
            for f in opened[1:]:
                _check_compatible(first, f)
            extra = dict(first.provenance.extra)
            extra["merged_from"] = [f.file_id for f in opened]
            p = first.provenance
            provenance = Provenance(
                p.producer, p.producer_version, p.functional, p.ao_basis, p.aux_basis, p.fit_metric, extra=extra
            )
            count = 0
            with atomic_output(output, overwrite=overwrite, what=what) as tmp:
                writer = RhoWriter.create(
                    tmp,
                    first.kind,
                    basis=first.basis if first.basis.elements else None,
                    provenance=provenance,
                    target=first.target,
                    dataset_id=first.dataset_id if first.kind != "dataset" else None,
                    projections=first.has_projections,
                    overlap=first.has_overlap,
                    metadata=first.metadata_names,
                    fields=first.field_names,
                    extras=first.extra_names,
                    targets=first.extra_targets,
                )
                with writer:
                    for f in opened:
                        for structure in f:
                            writer.append(structure)
                            count += 1
                            if progress is not None:
                                progress(1)
            return count
        finally:
            for f in opened:
                f.close()


def _check_compatible(first: RhoFile, other: RhoFile) -> None:
    def fail(what: str) -> RhoDataError:
        return RhoDataError(f"cannot be merged with {first.path}: {what}", path=other.path)

    if other.kind != first.kind:
        raise fail(f"it is a '{other.kind}' file, the first is a '{first.kind}' file")
    if not other.basis.same_as(first.basis):
        raise fail("the auxiliary bases differ")
    a, b = _defining(first), _defining(other)
    differ = [k for k in a if a[k] != b[k]]
    if differ:
        raise fail("settings differ: " + ", ".join(f"{k} '{a[k]}' vs '{b[k]}'" for k in differ))
    for attribute in ("metadata_names", "field_names", "extra_names", "extra_targets", "has_projections", "has_overlap"):
        if getattr(first, attribute) != getattr(other, attribute):
            raise fail(f"{attribute.replace('_', ' ')} differ")
    if first.kind != "dataset" and first.dataset_id != other.dataset_id:
        raise fail(f"it belongs to dataset {other.dataset_id}, the first to {first.dataset_id}")
