"""The ``rho-data`` command: info, validate, split, merge, export, import, upgrade."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from . import __version__
from .atomic import check_output_location
from .cli_support import RhoTyper, print_error, progress_bar
from .elements import symbol
from .errors import RhoDataError
from .files import open_file
from .schema import SCHEMA_VERSION
from .yaml_input import short_repr

console = Console()
errors = Console(stderr=True)
app = RhoTyper(
    help="The rho-data HDF5 dataset format: inspect, check, split, merge, export and upgrade files.",
    errors=(RhoDataError,),
    error_console=errors,
    version=f"rho-data {__version__} (schema {SCHEMA_VERSION[0]}.{SCHEMA_VERSION[1]})",
    console=console,
)


@app.command()
def info(path: Path = typer.Argument(..., help="A rho-data file.")) -> None:
    """Summary table: kind, structures, elements, basis sizes, producer, version, size."""
    with open_file(path) as f:
        table = Table(title=str(path), show_header=False)
        table.add_row("kind", f.kind)
        table.add_row("schema version", f"{f.version[0]}.{f.version[1]}")
        table.add_row("structures", str(len(f)))
        table.add_row("dataset id", f.dataset_id)
        table.add_row("target", f.target)
        per_structure = f.store.read_segment_rows("numbers")  # one read of the whole column
        atoms = [len(numbers) for numbers in per_structure]
        elements, element_counts = np.unique(np.concatenate(per_structure) if per_structure else [], return_counts=True)
        counts = {int(z): int(c) for z, c in zip(elements, element_counts)}
        table.add_row("elements (atoms)", ", ".join(f"{symbol(z)} ({c})" for z, c in sorted(counts.items())) or "-")
        if atoms:
            table.add_row("atoms per structure", f"{min(atoms)} - {max(atoms)} (mean {np.mean(atoms):.1f})")
        for sym in f.basis.symbols:
            element = f.basis[sym]
            kind = "Gaussian" if element.gaussians is not None else "numeric"
            table.add_row(
                f"basis {sym}",
                f"{element.n_functions} functions, lmax {element.lmax}, {kind} radial, n_radial {list(element.n_radial)}",
            )
        p = f.provenance
        table.add_row("producer", f"{p.producer} {p.producer_version}".strip() or "-")
        for name in ("functional", "ao_basis", "aux_basis", "fit_metric", "created"):
            if getattr(p, name):
                table.add_row(name.replace("_", " "), getattr(p, name))
        if f.metadata_names and len(f):
            recorded = [n for n in f.metadata_names if np.isfinite(f.metadata_column(n)).any()]
            table.add_row("metadata", ", ".join(recorded) or "-")
        if f.extra_names:
            table.add_row("extras", ", ".join(f.extra_names))
        if f.field_names:
            table.add_row("grid fields", ", ".join(f.field_names))
        size = path.stat().st_size
        table.add_row(
            "size on disk", f"{size / 1e6:.2f} MB" + (f" ({size / len(f) / 1e3:.1f} kB per structure)" if len(f) else "")
        )
    console.print(table)


@app.command()
def validate(path: Path = typer.Argument(..., help="A rho-data file.")) -> None:
    """Check every invariant; print each failure (file, structure, field) and exit 1 if any."""
    from .validate import validate_file

    try:
        with open_file(path) as f:
            total: int | None = len(f)
    except RhoDataError:
        total = None  # validate_file reports why the file does not open
    with progress_bar(errors) as progress:  # on a terminal only, gone when done: the result is a line of its own
        task = progress.add_task("validating", total=total)
        problems = validate_file(path, progress=lambda k: progress.advance(task, k))
    for problem in problems:
        print_error(errors, problem.format(path), label="invalid")
    if problems:
        raise typer.Exit(1)
    console.print(f"{path}: valid")


@app.command()
def split(
    path: Path = typer.Argument(..., help="The dataset to split."),
    sizes: list[float] | None = typer.Option(
        None,
        "--size",
        "-s",
        help="Fractions (< 1) or counts, one per part, e.g. -s 0.8 -s 0.1 -s 0.1 (the default).",
    ),
    names: list[str] | None = typer.Option(None, "--name", "-n", help="Part names, one per size (default train, val, test)."),
    seed: int | None = typer.Option(None, help="Seed of the shuffle (default 0)."),
    ordered: bool = typer.Option(
        False, "--ordered", help="No shuffle: the parts follow the file order (the first N structures, then the next M, ...)."
    ),
    ranges: list[str] | None = typer.Option(
        None,
        "--range",
        "-r",
        help="An explicit part NAME=START:STOP, a half-open slice in file order (negative counts from the end), "
        "e.g. -r train=0:80 -r val=-20: ; instead of --size/--name.",
    ),
    output: Path = typer.Option(Path("splits"), "--output", "-o", help="Directory for the index files <name>.idx."),
    overwrite: bool = typer.Option(False, help="Replace index files that exist."),
) -> None:
    """Train/val/test index files: shuffled (seed), in file order (--ordered) or explicit ranges (--range)."""
    from .split import PartRange, check_part_names, range_indices, split_indices, write_index_file

    if ranges:
        if sizes or names or seed is not None or ordered:
            raise RhoDataError(
                "--range gives each part's name and structures: do not combine it with --size, --name, --seed or --ordered"
            )
        parsed = [PartRange.parse(text) for text in ranges]
        names = [r.name for r in parsed]
    else:
        if ordered and seed is not None:
            raise RhoDataError("--ordered does not shuffle: --seed has no meaning with it")
        sizes = sizes or [0.8, 0.1, 0.1]
        names = names or ["train", "val", "test"]
        if len(names) != len(sizes):
            raise RhoDataError(f"{len(sizes)} sizes but {len(names)} names")
    check_part_names(names)
    with open_file(path, "dataset") as f:
        n, dataset_id = len(f), f.dataset_id
    if ranges:
        parts = range_indices(n, parsed)
        how = [f"range {r.text()}" for r in parsed]
    else:
        parts = split_indices(n, sizes, seed or 0, ordered=ordered)
        how = [f"sizes {list(sizes)}, " + ("in file order" if ordered else f"seed {seed or 0}")] * len(names)
    if not output.is_dir():
        try:
            output.mkdir(parents=True)
        except OSError as err:
            raise RhoDataError(f"cannot create the directory for the index files: {err.strerror}", path=output) from None
    targets = [output / f"{name}.idx" for name in names]
    for target in targets:  # every part is checked before any is written
        check_output_location(target, overwrite=overwrite, what="index file")
    for name, target, indices, made in zip(names, targets, parts, how):
        write_index_file(
            target,
            indices,
            dataset_id=dataset_id,
            comment=f"split of {path.name} ({n} structures): part '{name}', {made}",
            overwrite=overwrite,
        )
        console.print(f"{target}: {len(indices)} structures")


@app.command()
def merge(
    output: Path = typer.Argument(..., help="The merged file to write."),
    inputs: list[Path] = typer.Argument(..., help="Files to merge, in order."),
    overwrite: bool = typer.Option(False, help="Replace OUTPUT if it exists."),
) -> None:
    """Merge files of one kind (e.g. one per parallel job) into one new file."""
    from .merge import merge_files

    with progress_bar(errors) as progress:
        task = progress.add_task("merging", total=None)
        count = merge_files(output, inputs, overwrite=overwrite, progress=lambda k: progress.advance(task, k))
    console.print(f"{output}: {count} structures from {len(inputs)} files")


@app.command()
def export(
    path: Path = typer.Argument(..., help="A dataset or predictions file."),
    output: Path = typer.Option(
        ..., "--output", "-o", help="The .mts file for the coefficients (--format metatrain: the directory to write)."
    ),
    projections: Path | None = typer.Option(None, help="Also write the projections to this .mts file."),
    overlap: Path | None = typer.Option(None, help="Also write the overlap atom-pair blocks to this .mts file."),
    index_files: list[Path] | None = typer.Option(
        None,
        "--indices",
        help="Only the structures of this index file (from 'split'). --format metatrain: one per part, "
        "repeated (train.idx, val.idx, test.idx; the file names name the parts).",
    ),
    export_format: str = typer.Option(
        "mts", "--format", help="mts: TensorMap files; metatrain: a directory that 'mtt train options.yaml' reads as it is."
    ),
    overwrite: bool = typer.Option(False, help="Replace .mts files that exist."),
) -> None:
    """Export coefficients (and projections, overlaps) as metatensor TensorMaps (.mts), or a metatrain training directory."""
    from . import mts
    from .split import read_index_file

    index_files = list(index_files or [])
    if export_format == "metatrain":
        _export_metatrain(path, output, index_files, projections, overlap, overwrite)
        return
    if export_format != "mts":
        raise RhoDataError(f"--format must be mts or metatrain, got {short_repr(export_format)}")
    if len(index_files) > 1:
        raise RhoDataError("--format mts takes one --indices file")
    indices = index_files[0] if index_files else None
    targets = [p for p in (output, projections, overlap) if p is not None]
    if len({p.resolve() for p in targets}) != len(targets):
        raise RhoDataError("give a different file for each of --output, --projections and --overlap")
    for target in targets:  # before any work
        check_output_location(target, overwrite=overwrite, what="export")
    with open_file(path) as f:
        if f.kind == "grids":
            raise RhoDataError("grid files have no coefficients to export", path=path)
        if projections is not None and not f.has_projections:
            raise RhoDataError("stores no projections", path=path)
        if overlap is not None and not f.has_overlap:
            raise RhoDataError("stores no overlap", path=path)
        selection = range(len(f)) if indices is None else read_index_file(indices, dataset_id=f.dataset_id, n_structures=len(f))
        structures = [f[int(i)] for i in selection]
        systems = [int(i) for i in selection]
        numbers = [s.numbers for s in structures]
        mts.save(
            output,
            mts.coefficients_to_tensormap(numbers, [s.coefficients for s in structures], f.basis, systems),
            overwrite=overwrite,
        )
        console.print(f"{output}: coefficients of {len(structures)} structures")
        if projections is not None:
            tensor = mts.coefficients_to_tensormap(numbers, [s.projections for s in structures], f.basis, systems)
            mts.save(projections, tensor, overwrite=overwrite)
            console.print(f"{projections}: projections")
        if overlap is not None:
            mts.save(overlap, mts.overlap_to_tensormap(numbers, [s.overlap for s in structures], systems), overwrite=overwrite)
            console.print(f"{overlap}: overlap blocks")


def _export_metatrain(path: Path, output: Path, index_files: list[Path], projections, overlap, overwrite: bool) -> None:
    from .metatrain import export_metatrain

    if projections is not None or overlap is not None:
        raise RhoDataError("--format metatrain exports the coefficients only (no --projections, --overlap)")
    counts = export_metatrain(path, output, index_files, overwrite=overwrite)
    parts = ", ".join(f"{part} {count}" for part, count in counts.items())
    console.print(f"{output}: metatrain dataset ({parts} structures); run 'mtt train options.yaml' there")


import_app = RhoTyper(
    help="Turn another program's predictions into a rho-data predictions file.",
    no_args_is_help=True,
    add_completion=False,
    errors=(RhoDataError,),
    error_console=errors,
)
app.add_typer(import_app, name="import")


@import_app.command("metatrain")
def import_metatrain_command(
    prediction: Path = typer.Argument(
        ..., help="What 'mtt eval' wrote: NAME.zip (-o NAME.zip) or NAME_mtt::electron_density.mts."
    ),
    reference: Path = typer.Option(..., "--reference", "-r", help="The dataset that was exported."),
    output: Path = typer.Option(..., "--output", "-o", help="The predictions file to write."),
    indices: Path | None = typer.Option(
        None, help="The index file of the evaluated part (default: the <part>.idx beside --systems)."
    ),
    systems: Path | None = typer.Option(
        None, help="The exported <part>.zip that was evaluated: its geometry is checked (default: the prediction zip)."
    ),
    overwrite: bool = typer.Option(False, help="Replace OUTPUT if it exists."),
) -> None:
    """mtt eval's predictions of an exported part -> a predictions file, checked against the dataset."""
    from .metatrain import import_metatrain

    count = import_metatrain(prediction, reference, output, indices=indices, systems=systems, overwrite=overwrite)
    console.print(f"{output}: predictions of {count} structures from {prediction}")


@app.command()
def upgrade(
    path: Path = typer.Argument(..., help="A rho-data file of an older schema version."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the upgraded file here instead of in place."),
    overwrite: bool = typer.Option(False, help="Replace OUTPUT if it exists."),
) -> None:
    """Upgrade a file to the current schema version, one step at a time."""
    from .upgrade import upgrade_file

    steps = upgrade_file(path, output, overwrite=overwrite)
    if len(steps) == 1:
        console.print(f"{path}: already at schema version {steps[0][0]}.{steps[0][1]}")
    else:
        console.print(f"{output or path}: upgraded " + " -> ".join(f"{a}.{b}" for a, b in steps))


if __name__ == "__main__":
    app()
