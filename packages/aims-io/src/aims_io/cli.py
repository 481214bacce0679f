"""The ``aims-io`` command: options, prepare, run, status, import, export, compare, parse."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer

from rho_data.cli_support import config_option, make_cli, output_option, overwrite_option, print_error, progress_bar, set_option

from . import __version__
from .errors import AimsIOError

#: Every command goes through one error path: bad input -> one red line, exit code 1, no traceback.
app, console, errors = make_cli(
    help="FHI-aims for rho: prepare and run SCF / RI-fit / rebuild runs, check them, import them into rho-data.",
    version=f"aims-io {__version__}",
    errors=(AimsIOError,),
)
#: Old spellings of renamed options (kept working, hidden from --help): ``--set`` was also ``-s``.
OLD_SET = {"-s": "--set"}


def _settings(work: Path, config: list[Path] | None, overrides: list[str] | None) -> dict:
    """The work directory's ``aims-io.yaml`` (when there is one), then ``-c`` files, then ``--set``."""
    from .settings import SETTINGS_FILE, load_settings

    paths: list[Path] = [work / SETTINGS_FILE] if (work / SETTINGS_FILE).is_file() else []
    return load_settings(paths + list(config or []), list(overrides or []))


WORK = typer.Option(Path("."), "--work", "-w", help="Work directory (holds scf/, ri/, rebuild/, jobs/, aims-io.yaml).")
CONFIG = config_option("aims-io")
SET = set_option()


@app.command()
def options() -> None:
    """Print the default settings (YAML, with comments)."""
    from .settings import defaults_text

    typer.echo(defaults_text(), nl=False)


@app.command(aliases=OLD_SET)
def prepare(
    stage: str = typer.Argument(..., help="scf, ri or guess."),
    structures: Path | None = typer.Argument(
        None,
        help=(
            "scf: structures file readable by ASE (xyz, extxyz, ...): all molecules, or all periodic cells "
            "(pbc T T T, k-points from dft.k_grid / dft.k_grid_density); guess: rho-data predictions file."
        ),
    ),
    reference: Path | None = typer.Option(
        None, "--reference", "-r", help="guess: the dataset the predictions belong to (made by aims-io import)."
    ),
    name: str = typer.Option("predicted", "--name", help="guess: name of the coefficient set (directory guess/<name>)."),
    work: Path = WORK,
    config: list[Path] | None = CONFIG,
    overrides: list[str] | None = SET,
) -> None:
    """Write run directories: `scf STRUCTURES` (one per structure), `ri` (one per finished SCF run) or
    `guess PREDICTIONS --reference DATASET` (an SCF from the predicted coefficients and one from FHI-aims's
    default guess per structure, with the reference's SCF settings)."""
    from .stages import prepare_stage

    prepare_stage(
        stage,
        work,
        _settings(work, config, overrides),
        structures=structures,
        reference=reference,
        name=name,
        say=lambda line: console.print(line, highlight=False, soft_wrap=True),
        warn=lambda line: errors.print(f"[yellow]{line}[/yellow]"),
    )


@app.command(aliases=OLD_SET)
def run(
    stage: str = typer.Argument(..., help="scf, ri, rebuild/<name> or guess/<name>."),
    work: Path = WORK,
    config: list[Path] | None = CONFIG,
    overrides: list[str] | None = SET,
    wait: bool = typer.Option(False, help="SLURM: block until the array has finished (sbatch --wait)."),
) -> None:
    """Run the stage's runs that have not finished (resumes; failed runs are run again)."""
    from .layout import run_dirs, stage_dir
    from .prepare import run_dirs_now

    settings = _settings(work, config, overrides)
    dirs = run_dirs(stage_dir(work, stage))
    if not dirs:
        raise AimsIOError(f"no run directories for stage '{stage}' (run `aims-io prepare` first)", path=stage_dir(work, stage))
    with progress_bar(errors, eta=False) as progress:
        task = progress.add_task(f"FHI-aims {stage}", total=len(dirs))
        failed = []

        def done(state) -> None:
            progress.advance(task)
            if state.state != "finished":
                failed.append(state)

        started, job = run_dirs_now(dirs, work, settings, stage, wait=wait, on_done=done)
        progress.update(task, completed=len(dirs) if job is None else len(dirs) - len(started))
    if job is not None:
        console.print(f"submitted SLURM array {job} with {len(started)} runs; check with `aims-io status {stage} -w {work}`")
    else:
        console.print(f"ran {len(started)} runs ({len(dirs) - len(started)} already finished or running)")
    for state in failed:
        print_error(errors, f"{state.run_dir}: {state.reason}", label="failed")
    if failed:
        raise typer.Exit(1)


@app.command()
def status(
    stage: str = typer.Argument(..., help="scf, ri, rebuild/<name> or guess/<name>."),
    work: Path = WORK,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per run instead of a table."),
) -> None:
    """Finished / running / failed / not started per run (one look, no waiting)."""
    from .layout import run_dirs, stage_dir
    from .runstate import stage_states

    if not stage_dir(work, stage).is_dir():
        raise AimsIOError(f"no run directories for stage '{stage}' (run `aims-io prepare` first)", path=stage_dir(work, stage))
    states = stage_states(run_dirs(stage_dir(work, stage)))  # a query: reads only, writes nothing
    if as_json:
        for s in states:
            console.print(
                json.dumps({"run_dir": str(s.run_dir), "state": s.state, "reason": s.reason}), highlight=False, soft_wrap=True
            )
        return
    from .tables import status_table

    console.print(status_table(stage, states))


@app.command("import")
def import_(
    root: Path = typer.Argument(..., help="Root of a tree of finished RI-fit runs (e.g. <work>/ri)."),
    out: Path = typer.Argument(..., help="rho-data dataset to create (or, with --append, to add to)."),
    threshold: float = typer.Option(0.0, help="Drop off-diagonal overlap atom-pair blocks with max |S| <= this."),
    append: bool = typer.Option(False, "--append", help="Add to an existing dataset the runs it lacks (resume)."),
    overwrite: bool = overwrite_option("Replace an existing dataset (once the new one is complete)."),
    require_converged: bool = typer.Option(
        False, "--require-converged", help="Refuse runs whose SCF did not converge (default: import them with a warning)."
    ),
) -> None:
    """Import RI-fit runs into one rho-data dataset; failed runs are reported, the rest imported."""
    from .importer import find_runs, import_tree

    if append and overwrite:
        raise AimsIOError("--append and --overwrite exclude each other")
    if not math.isfinite(threshold) or threshold < 0:
        raise AimsIOError(f"--threshold must be a finite number >= 0, got {threshold}")
    total = len(find_runs(root))
    with progress_bar(errors, eta=False) as progress:
        task = progress.add_task("importing", total=total)
        report = import_tree(
            root,
            out,
            threshold=threshold,
            append=append,
            overwrite=overwrite,
            require_converged=require_converged,
            on_progress=lambda run_dir, err: progress.advance(task),
        )
    for _run_dir, message in report.warnings:
        print_error(errors, message, label="warning")
    console.print(
        f"{out}: imported {len(report.imported)}, already present {len(report.skipped)}, failed {len(report.failed)}",
        highlight=False,
        soft_wrap=True,
    )
    for _run_dir, message in report.failed:
        print_error(errors, message)
    if report.failed:
        raise typer.Exit(1)


@app.command(aliases=OLD_SET)
def export(
    predictions: Path = typer.Argument(..., help="rho-data predictions file."),
    dataset: Path = typer.Argument(..., help="The dataset the predictions belong to (made by aims-io import)."),
    name: str = typer.Option("predicted", help="Name of this coefficient set (directory rebuild/<name>)."),
    work: Path = WORK,
    config: list[Path] | None = CONFIG,
    overrides: list[str] | None = SET,
) -> None:
    """Write FHI-aims rebuild run directories for predicted coefficients; run them with `aims-io run rebuild/<name>`."""
    from .export import export_predictions

    settings = _settings(work, config, overrides)
    dirs = export_predictions(predictions, dataset, work, name, settings)
    console.print(f"wrote {len(dirs)} rebuild runs under {work / 'rebuild' / name}")


@app.command(aliases={"--out": "--output"})
def compare(
    stage: str = typer.Argument(..., help="guess/<name>: the ML-guess and default-guess SCF runs to compare."),
    work: Path = WORK,
    output: Path | None = output_option("JSON report (default: <work>/guess/<name>/comparison.json).", None),
    overwrite: bool = overwrite_option("Replace an existing report."),
    energy_tolerance: float = typer.Option(1e-4, help="Warn when converged total energies differ by more (eV)."),
) -> None:
    """SCF cycles, convergence, energy and wall time of ML-guess against default-guess runs: table, summary, JSON."""
    from .guess import COMPARISON_FILE, compare_guess, write_comparison
    from .layout import stage_dir

    if not stage.startswith("guess/"):
        raise AimsIOError(f"compare: expected guess/<name>, got '{stage}'")
    if not math.isfinite(energy_tolerance) or energy_tolerance < 0:
        raise AimsIOError(f"--energy-tolerance must be a finite number >= 0, got {energy_tolerance}")
    path = stage_dir(work, stage)
    if not path.is_dir():
        raise AimsIOError("no guess runs (run `aims-io prepare guess` first)", path=path)
    target = output if output is not None else path / COMPARISON_FILE
    from rho_data.atomic import check_output_location

    check_output_location(target, overwrite=overwrite, what="comparison")
    report = compare_guess(path, energy_tolerance_ev=energy_tolerance)
    write_comparison(report, target, overwrite=overwrite)
    from .tables import comparison_summary, comparison_table

    console.print(comparison_table(stage, report))
    console.print(comparison_summary(report, target), highlight=False, soft_wrap=True)
    for message in report["warnings"]:
        print_error(errors, message, label="warning")


@app.command()
def parse(path: Path = typer.Argument(..., help="An aims.out file.")) -> None:
    """Print what aims-io reads from an aims.out, as JSON."""
    from .aimsout import parse_aims_out

    console.print(json.dumps(parse_aims_out(path).to_dict(), indent=1), highlight=False, soft_wrap=True)


if __name__ == "__main__":  # pragma: no cover
    app()
