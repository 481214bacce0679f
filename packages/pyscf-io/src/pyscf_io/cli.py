"""The ``pyscf-io`` command: options, run, submit, status, merge, run-task, guess.

The commands are thin: what they do is in :mod:`.runs` (a run's settings, work directory and
merge), :mod:`.status_report`, :mod:`.array_task` and :mod:`.guess_command`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from rho_data.cli_support import config_option, make_cli, output_option, overwrite_option, print_error, set_option

from . import __version__
from .config import DEFAULT_YAML
from .errors import PyscfIoError
from .runs import RunInputs, finish_run, open_run
from .workdir import WorkDir

app, console, err_console = make_cli(
    help="Reference electron densities with PySCF (density-fitted SCF + RI fit), written as rho-data datasets.",
    version=f"pyscf-io {__version__}",
    errors=(PyscfIoError,),
)


def _say(what: Any) -> None:
    """A line (as it is: no highlighting, no wrapping) or a table on standard output."""
    if isinstance(what, str):
        console.print(what, highlight=False, soft_wrap=True)
    else:
        console.print(what)


def _warn(line: str) -> None:
    print_error(err_console, line, label="warning")


def _fail(line: str) -> None:
    print_error(err_console, line)


# ---- shared options -----------------------------------------------------------------------------
GEOMETRY = typer.Argument(..., help="Geometry files (any format ASE reads: xyz, extxyz, ...).")
OUTPUT = output_option("The rho-data dataset to write.")
CONFIG = config_option("pyscf-io")
SET = set_option()
INDEX = typer.Option(None, "--index", help="ASE index selection per file, e.g. ':10' or '::2'.")
WORKDIR = typer.Option(None, "--workdir", help="Work directory (default: OUTPUT.work).")
RETRY = typer.Option(False, "--retry-failed", help="Compute failed structures again.")
OVERWRITE = overwrite_option("Replace an output not written by this run.")
WORK = typer.Argument(..., help="Work directory of a run.")
FIELD = typer.Option(
    None,
    "--field",
    help="A field to fit from the SCF (repeatable; the first is the main target): density, spin_density, homo, homo-K, "
    "lumo, lumo+K, ildos:EMIN:EMAX[:SIGMA], ldos:E:SIGMA (eV from the HOMO). Default: the setting 'fields' ([density]).",
)

#: Named options of ``run`` -> their setting (the others have the setting's name).
_SETTING_OF = {"metric": "fit_metric", "conv_tol": "scf_conv_tol", "max_cycle": "scf_max_cycle"}


def _finish(wd: WorkDir, output: Path | None, overwrite: bool) -> None:
    if not finish_run(wd, output, overwrite, say=_say, warn=_warn, fail=_fail):
        raise typer.Exit(1)


@app.command()
def options() -> None:
    """Print the default settings (YAML, with a comment per key)."""
    print(DEFAULT_YAML, end="")


@app.command()
def run(
    geometry: list[Path] = GEOMETRY,
    output: Path = OUTPUT,
    config: list[Path] | None = CONFIG,
    sets: list[str] | None = SET,
    index: str | None = INDEX,
    workdir: Path | None = WORKDIR,
    field: list[str] | None = FIELD,
    workers: int | None = typer.Option(None, "--workers", "-j", help="Local worker processes."),
    threads: int | None = typer.Option(None, "--threads", help="Threads per worker."),
    xc: str | None = typer.Option(None, help="Functional."),
    basis: str | None = typer.Option(None, help="AO basis."),
    aux_basis: str | None = typer.Option(None, help="Auxiliary basis: 'etb' or a basis name."),
    etb_beta: float | None = typer.Option(None, help="Even-tempered exponent ratio."),
    metric: str | None = typer.Option(None, help="Fit metric: coulomb or overlap."),
    charge: int | None = typer.Option(None, help="Total charge."),
    spin: int | None = typer.Option(None, help="2S."),
    grid_level: int | None = typer.Option(None, help="DFT grid level."),
    conv_tol: float | None = typer.Option(None, help="SCF convergence (hartree)."),
    max_cycle: int | None = typer.Option(None, help="SCF cycle limit."),
    scf_density_fit: bool | None = typer.Option(
        None, "--scf-density-fit/--exact-scf", help="Density-fitted SCF (default) or exact four-centre integrals."
    ),
    retry_failed: bool = RETRY,
    overwrite: bool = OVERWRITE,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Compute every structure locally and write the dataset (resumable: a rerun skips finished ones).

    Settings: defaults, then the -c files in order, then each --set, then the named options."""
    from .disk import require_space_for_run
    from .local import run_local
    from .merge import check_output

    named = dict(workers=workers, threads=threads, xc=xc, basis=basis, aux_basis=aux_basis, etb_beta=etb_beta)
    named |= dict(metric=metric, charge=charge, spin=spin, grid_level=grid_level, conv_tol=conv_tol, max_cycle=max_cycle)
    named["scf_density_fit"] = scf_density_fit
    named["fields"] = list(field) if field else None
    inputs = RunInputs(geometry, output, list(config or []), list(sets or []), index, workdir)
    wd, settings = open_run(inputs, {_SETTING_OF.get(k, k): v for k, v in named.items()}, warn=_warn)
    check_output(output, wd.manifest()["run_id"], overwrite)  # before the expensive work
    pending = wd.pending(retry_failed)
    skipped = wd.manifest()["n_structures"] - len(pending)
    if skipped:
        _say(f"{skipped} structures already finished in {wd.path}; computing {len(pending)}")
    require_space_for_run(wd.path, output, wd.context(), wd.structures(), pending)
    run_local(wd, pending, settings["workers"], settings["threads"], show_progress=not quiet, console=console)
    _finish(wd, output, overwrite)


@app.command()
def submit(
    geometry: list[Path] = GEOMETRY,
    output: Path = OUTPUT,
    config: list[Path] | None = CONFIG,
    sets: list[str] | None = SET,
    index: str | None = INDEX,
    workdir: Path | None = WORKDIR,
    field: list[str] | None = FIELD,
    partition: str | None = typer.Option(None, help="SLURM partition."),
    account: str | None = typer.Option(None, help="SLURM account."),
    time_limit: str | None = typer.Option(None, "--time", help="Time limit of each array task."),
    cpus: int | None = typer.Option(None, "--cpus", help="CPUs (threads) per array task."),
    structures_per_task: int | None = typer.Option(None, help="Structures per array task."),
    retry_failed: bool = RETRY,
) -> None:
    """Submit the pending structures as a SLURM job array plus a merge job; follow with 'pyscf-io status'.

    Settings: defaults, then the -c files in order, then each --set, then the named options."""
    from .slurm import check_job_settings
    from .slurm import submit as do_submit

    named = {"partition": partition, "account": account, "time": time_limit, "cpus_per_task": cpus}
    named["structures_per_task"] = structures_per_task
    inputs = RunInputs(geometry, output, list(config or []), list(sets or []), index, workdir)
    fields = {"fields": list(field)} if field else {}
    check = lambda settings: check_job_settings(inputs.workdir_path, settings)  # noqa: E731 - before the work directory
    options = {f"slurm.{k}": v for k, v in named.items()} | fields
    wd, settings = open_run(inputs, options, warn=_warn, before_creating=check)
    record = do_submit(wd, settings, retry_failed)
    if record is None:
        _say(f"every structure in {wd.path} has finished; merging")
        _finish(wd, output, False)
        return
    _say(
        f"submitted array job {record['array_job']} ({record['tasks']} tasks, {record['structures']} structures) "
        f"and merge job {record['merge_job']}; follow with: pyscf-io status {wd.path}"
    )


@app.command()
def status(
    workdir: Path = WORK,
    watch: float | None = typer.Option(None, "--watch", help="Report again every WATCH seconds until nothing is pending."),
) -> None:
    """Progress of a run: finished and failed structures, and the SLURM queue (one squeue call per report)."""
    from .status_report import show_status

    show_status(workdir, watch, say=_say, fail=_fail)


@app.command()
def merge(
    workdir: Path = WORK,
    output: Path | None = output_option("Dataset to write (default: the run's output).", None),
    overwrite: bool = OVERWRITE,
) -> None:
    """Merge the finished structures of a work directory into one dataset (input order)."""
    from .merge import merge_workdir
    from .report import counts

    wd = WorkDir(workdir)
    n = merge_workdir(wd, output, overwrite, warn=_warn)
    _say(f"wrote {n} structures to {output or wd.manifest()['output']}")
    if counts(wd)["pending"]:
        raise PyscfIoError(f"{wd.path}: {counts(wd)['pending']} structures are pending; run or submit again to compute them")


@app.command("run-task")
def run_task(
    workdir: Path = WORK,
    chunks: Path = typer.Option(..., help="Chunk list written by 'submit'."),  # noqa: B008 - typer's idiom
    task_id: int = typer.Option(..., help="Which chunk (the SLURM array task id)."),
) -> None:
    """Compute one chunk of structures (what a SLURM array task runs)."""
    from .array_task import run_chunk

    run_chunk(workdir, chunks, task_id, _say)


@app.command()
def guess(
    predictions: Path = typer.Argument(..., help="rho-data predictions file of DATA's structures."),  # noqa: B008 - typer's idiom
    reference: Path = typer.Option(..., "--reference", help="The pyscf-io dataset the predictions belong to."),  # noqa: B008
    report_dir: Path = output_option("Report directory (resumable)."),
    indices: Path | None = typer.Option(None, "--indices", help="Index file (rho-data split) of the structures to run."),  # noqa: B008
    guesses: str | None = typer.Option(
        None,
        "--guesses",
        help="Comma-separated initial guesses (default: ml,ri,minao,atom,huckel,vsap; for cells ml,ri,minao,atom,1e).",
        show_default=False,
    ),
    guess_grid_level: int = typer.Option(1, "--guess-grid-level", min=0, max=9, help="DFT grid level of the guess's V_xc."),
    workers: int = typer.Option(1, "--workers", "-j", min=1, max=4096, help="Worker processes (one thread each)."),
    overwrite: bool = overwrite_option("Replace the report of another run in REPORT_DIR."),
) -> None:
    """SCF cycles and wall time from the predicted density as initial guess, against the RI density and PySCF's guesses."""
    from .guess_command import run_guess_report

    run_guess_report(
        predictions,
        reference,
        report_dir,
        indices=indices,
        guesses=guesses,
        guess_grid_level=guess_grid_level,
        workers=workers,
        overwrite=overwrite,
        say=_say,
        warn=_warn,
    )
