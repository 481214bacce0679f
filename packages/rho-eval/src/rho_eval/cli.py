"""The ``rho-eval`` command: ``evaluate`` (the default: ``rho-eval PRED ...`` is ``rho-eval evaluate PRED ...``) and ``options``."""

from __future__ import annotations

from pathlib import Path

import typer
from rho_data.cli_support import config_option, make_cli, output_option, set_option

from . import __version__
from .config import load_settings, options_text, parse_backend_options
from .errors import RhoEvalError

app, console, err_console = make_cli(
    help="Evaluate predicted densities in real space against the RI and SCF densities. "
    "'rho-eval PREDICTIONS -r DATASET -o DIR' is short for 'rho-eval evaluate PREDICTIONS -r DATASET -o DIR'.",
    version=f"rho-eval {__version__}",
    errors=(RhoEvalError,),
    default_command="evaluate",
)


@app.command()
def evaluate(
    predictions: Path | None = typer.Argument(None, help="Predictions file (rho-data); optional with --fit-only."),
    reference: Path = typer.Option(..., "--reference", "-r", help="The dataset the predictions were made for."),
    output: Path = output_option("Report directory (metrics.csv, summary.json, plots/, cubes/)."),
    config: list[Path] | None = config_option("rho-eval"),
    sets: list[str] | None = set_option(),
    select: str | None = typer.Option(None, "--select", help="Rows to evaluate, e.g. '0:100,120' (Python slices)."),
    fit_only: bool | None = typer.Option(None, "--fit-only/--no-fit-only", help="Evaluate the RI fit against SCF (basis error)."),
    target: str | None = typer.Option(None, "--target", help="The dataset target (field) to compare, e.g. homo (default: the predictions' target)."),
    workers: int | None = typer.Option(None, "--workers", "-j", help="Worker processes."),
    chunk_size: int | None = typer.Option(None, "--chunk-size", help="Structures per worker task."),
    backend_option: list[str] = typer.Option([], "--backend-option", "-b", help="Field-builder option key=value (repeatable)."),
    plots: bool | None = typer.Option(None, "--plots/--no-plots", help="Write PNG plots."),
    slice_structure: int | None = typer.Option(None, "--slice-structure", help="Dataset index of the slice plot (default: worst)."),
    cubes: str | None = typer.Option(None, "--cubes", help="Write cube files for these dataset indices ('0,5') or 'worst'."),
    cube_spacing: float | None = typer.Option(None, "--cube-spacing", help="Cube grid spacing, bohr."),
    restart: bool = typer.Option(False, "--restart", help="Discard results already in the output directory."),
) -> None:
    """Evaluate PREDICTIONS against the dataset given with --reference and write a report to -o.

    Settings: defaults (rho-eval options), then the -c files in order, then each --set, then the named options."""
    from .run import evaluate_files

    overrides = {
        "select": select,
        "fit_only": fit_only,
        "target": target,
        "workers": workers,
        "chunk_size": chunk_size,
        "plots": plots,
        "slice_structure": slice_structure,
        "cubes": cubes,
        "cube_spacing_bohr": cube_spacing,
    }
    if backend_option:
        overrides["backend"] = parse_backend_options(backend_option)
    settings = load_settings(list(config or []), overrides, list(sets or []))
    evaluate_files(predictions, reference, output, settings, restart=restart)


@app.command()
def options() -> None:
    """Print the default settings (YAML, with a comment per setting)."""
    typer.echo(options_text(), nl=False)
