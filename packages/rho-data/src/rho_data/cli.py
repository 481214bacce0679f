"""The ``rho-data`` command: info, validate, split, merge, export, import, upgrade."""

from __future__ import annotations

from pathlib import Path

import typer

from . import __version__
from .atomic import check_output_location
from .cli_support import RhoTyper, make_cli, output_option, overwrite_option, print_error, progress_bar
from .errors import RhoDataError
from .files import open_file
from .schema import SCHEMA_VERSION
from .yaml_input import short_repr

app, console, errors = make_cli(
    help="The rho-data HDF5 dataset format: inspect, check, split, merge, export and upgrade files.",
    version=f"rho-data {__version__} (schema {SCHEMA_VERSION[0]}.{SCHEMA_VERSION[1]})",
)
#: ``--no-overwrite`` (the default) was the other half of the old ``--overwrite/--no-overwrite``.
OLD_SPELLINGS = {"--no-overwrite": None}


@app.command()
def info(path: Path = typer.Argument(..., help="A rho-data file.")) -> None:
    """Summary table: kind, structures, elements, basis sizes, producer, version, size."""
    from .file_summary import summary_table

    console.print(summary_table(path))


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


@app.command(aliases=OLD_SPELLINGS)
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
    output: Path = output_option("Directory for the index files <name>.idx.", Path("splits")),
    overwrite: bool = overwrite_option("Replace index files that exist."),
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


@app.command(aliases=OLD_SPELLINGS)
def merge(
    output: Path = typer.Argument(..., help="The merged file to write."),
    inputs: list[Path] = typer.Argument(..., help="Files to merge, in order."),
    overwrite: bool = overwrite_option("Replace OUTPUT if it exists."),
) -> None:
    """Merge files of one kind (e.g. one per parallel job) into one new file."""
    from .merge import merge_files

    with progress_bar(errors) as progress:
        task = progress.add_task("merging", total=None)
        count = merge_files(output, inputs, overwrite=overwrite, progress=lambda k: progress.advance(task, k))
    console.print(f"{output}: {count} structures from {len(inputs)} files")


@app.command(aliases=OLD_SPELLINGS)
def export(
    path: Path = typer.Argument(..., help="A dataset or predictions file."),
    output: Path = output_option("The .mts file for the coefficients (--format metatrain: the directory to write)."),
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
    overwrite: bool = overwrite_option("Replace .mts files that exist."),
    target: str | None = typer.Option(None, "--target", help="--format mts: the dataset target (field) to export, e.g. homo."),
) -> None:
    """Export coefficients (and projections, overlaps) as metatensor TensorMaps (.mts), or a metatrain training directory."""
    index_files = list(index_files or [])
    if export_format == "metatrain":
        if target is not None:
            raise RhoDataError("--target goes with --format mts (metatrain exports the main target)")
        _export_metatrain(path, output, index_files, projections, overlap, overwrite)
        return
    if export_format != "mts":
        raise RhoDataError(f"--format must be mts or metatrain, got {short_repr(export_format)}")
    if len(index_files) > 1:
        raise RhoDataError("--format mts takes one --indices file")
    from .export_mts import export_mts

    indices = index_files[0] if index_files else None
    options = {"indices": indices, "projections": projections, "overlap": overlap, "target": target}
    export_mts(path, output, **options, overwrite=overwrite, report=console.print)


def _export_metatrain(path: Path, output: Path, index_files: list[Path], projections, overlap, overwrite: bool) -> None:
    from .metatrain import export_metatrain

    if projections is not None or overlap is not None:
        raise RhoDataError("--format metatrain exports the coefficients only (no --projections, --overlap)")
    counts = export_metatrain(path, output, index_files, overwrite=overwrite)
    parts = ", ".join(f"{part} {count}" for part, count in counts.items())
    console.print(f"{output}: metatrain dataset ({parts} structures); run 'mtt train options.yaml' there")


import_app = RhoTyper(
    help="Turn another program's predictions into a rho-data predictions file.", no_args_is_help=True, error_console=errors
)
app.add_typer(import_app, name="import")


@import_app.command("metatrain", aliases=OLD_SPELLINGS)
def import_metatrain_command(
    prediction: Path = typer.Argument(
        ..., help="What 'mtt eval' wrote: NAME.zip (-o NAME.zip) or NAME_mtt::electron_density.mts."
    ),
    reference: Path = typer.Option(..., "--reference", "-r", help="The dataset that was exported."),
    output: Path = output_option("The predictions file to write."),
    indices: Path | None = typer.Option(
        None, help="The index file of the evaluated part (default: the <part>.idx beside --systems)."
    ),
    systems: Path | None = typer.Option(
        None, help="The exported <part>.zip that was evaluated: its geometry is checked (default: the prediction zip)."
    ),
    overwrite: bool = overwrite_option("Replace OUTPUT if it exists."),
) -> None:
    """mtt eval's predictions of an exported part -> a predictions file, checked against the dataset."""
    from .metatrain import import_metatrain

    count = import_metatrain(prediction, reference, output, indices=indices, systems=systems, overwrite=overwrite)
    console.print(f"{output}: predictions of {count} structures from {prediction}")


@app.command(aliases=OLD_SPELLINGS)
def upgrade(
    path: Path = typer.Argument(..., help="A rho-data file of an older schema version."),
    output: Path | None = output_option("Write the upgraded file here instead of in place.", None),
    overwrite: bool = overwrite_option("Replace OUTPUT if it exists."),
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
