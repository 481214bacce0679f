"""``rho-data export --format mts``: coefficients, projections and overlaps of a file as metatensor .mts files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .atomic import check_output_location
from .errors import RhoDataError
from .files import open_file


def export_mts(
    path: Path,
    output: Path,
    *,
    indices: Path | None = None,
    projections: Path | None = None,
    overlap: Path | None = None,
    overwrite: bool = False,
    target: str | None = None,
    report: Callable[[str], None] = lambda line: None,
) -> None:
    """Write the coefficients of ``path`` (of its ``target``, None: the main one; the structures of
    the index file ``indices``, else all)
    to ``output``, and the projections and overlap atom-pair blocks to their own files; every
    target is checked before any work, and ``report`` gets one line per file written."""
    from . import mts
    from .split import read_index_file

    outputs = [p for p in (output, projections, overlap) if p is not None]
    if len({p.resolve() for p in outputs}) != len(outputs):
        raise RhoDataError("give a different file for each of --output, --projections and --overlap")
    for written in outputs:  # before any work
        check_output_location(written, overwrite=overwrite, what="export")
    with open_file(path) as f:
        if f.kind == "grids":
            raise RhoDataError("grid files have no coefficients to export", path=path)
        if projections is not None and not f.has_projections:
            raise RhoDataError("stores no projections", path=path)
        if overlap is not None and not f.has_overlap:
            raise RhoDataError("stores no overlap", path=path)
        target = f.resolve_target(target) if f.kind == "dataset" else None
        selection = range(len(f)) if indices is None else read_index_file(indices, dataset_id=f.dataset_id, n_structures=len(f))
        structures = [f[int(i)] for i in selection]
        systems = [int(i) for i in selection]
        numbers = [s.numbers for s in structures]
        coefficients = [f.coefficients(i, target) for i in systems]
        mts.save(output, mts.coefficients_to_tensormap(numbers, coefficients, f.basis, systems), overwrite=overwrite)
        report(f"{output}: coefficients of {len(structures)} structures" + (f" (target {target})" if target else ""))
        if projections is not None:
            tensor = mts.coefficients_to_tensormap(numbers, [f.projections(i, target) for i in systems], f.basis, systems)
            mts.save(projections, tensor, overwrite=overwrite)
            report(f"{projections}: projections")
        if overlap is not None:
            mts.save(overlap, mts.overlap_to_tensormap(numbers, [s.overlap for s in structures], systems), overwrite=overwrite)
            report(f"{overlap}: overlap blocks")
