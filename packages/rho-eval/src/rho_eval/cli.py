"""The ``rho-eval`` command."""

from __future__ import annotations

from pathlib import Path

import typer
from rho_data.cli_support import RhoTyper, version_callback
from rich.console import Console

from . import __version__
from .config import load_settings, parse_backend_options
from .errors import RhoEvalError

err_console = Console(stderr=True)
app = RhoTyper(
    add_completion=False,
    help="Evaluate predicted densities in real space against the RI and SCF densities.",
    errors=(RhoEvalError,),
    error_console=err_console,
)
_show_version = version_callback(f"rho-eval {__version__}", Console())


@app.command()
def main(
    predictions: Path | None = typer.Argument(None, help="Predictions file (rho-data); optional with --fit-only."),
    reference: Path = typer.Option(..., "--reference", "-r", help="The dataset the predictions were made for."),
    output: Path = typer.Option(..., "--output", "-o", help="Report directory (metrics.csv, summary.json, plots/, cubes/)."),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML settings (command-line options override them)."),
    select: str | None = typer.Option(None, "--select", help="Rows to evaluate, e.g. '0:100,120' (Python slices)."),
    fit_only: bool | None = typer.Option(None, "--fit-only/--no-fit-only", help="Evaluate the RI fit against SCF (basis error)."),
    workers: int | None = typer.Option(None, "--workers", "-j", help="Worker processes."),
    chunk_size: int | None = typer.Option(None, "--chunk-size", help="Structures per worker task."),
    backend_option: list[str] = typer.Option([], "--backend-option", "-b", help="Field-builder option key=value (repeatable)."),
    plots: bool | None = typer.Option(None, "--plots/--no-plots", help="Write PNG plots."),
    slice_structure: int | None = typer.Option(None, "--slice-structure", help="Dataset index of the slice plot (default: worst)."),
    cubes: str | None = typer.Option(None, "--cubes", help="Write cube files for these dataset indices ('0,5') or 'worst'."),
    cube_spacing: float | None = typer.Option(None, "--cube-spacing", help="Cube grid spacing, bohr."),
    restart: bool = typer.Option(False, "--restart", help="Discard results already in the output directory."),
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Evaluate PREDICTIONS against the dataset given with --reference and write a report to -o."""
    from .run import evaluate_files

    overrides = {
        "select": select,
        "fit_only": fit_only,
        "workers": workers,
        "chunk_size": chunk_size,
        "plots": plots,
        "slice_structure": slice_structure,
        "cubes": cubes,
        "cube_spacing_bohr": cube_spacing,
    }
    if backend_option:
        overrides["backend"] = parse_backend_options(backend_option)
    settings = load_settings(config, overrides)
    evaluate_files(predictions, reference, output, settings, restart=restart)
