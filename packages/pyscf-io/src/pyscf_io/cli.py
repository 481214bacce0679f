"""The ``pyscf-io`` command: options, run, submit, status, merge, run-task."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import typer
from rich.console import Console

from rho_data.cli_support import print_error, version_callback

from . import __version__
from .config import DEFAULT_YAML, load_settings
from .errors import PyscfIoError
from .geometry import read_structures
from .workdir import WorkDir

app = typer.Typer(
    help="Reference electron densities with PySCF (density-fitted SCF + RI fit), written as rho-data datasets.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)
_show_version = version_callback(f"pyscf-io {__version__}", console)


def _fail(message: str) -> None:
    print_error(err_console, message)
    raise typer.Exit(1)


def _print_failures(lines: list[str]) -> None:
    for line in lines:
        print_error(err_console, line)


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True, help="Show the version."),
) -> None:
    """pyscf-io."""


# ---- shared options -----------------------------------------------------------------------------
GEOMETRY = typer.Argument(..., help="Geometry files (any format ASE reads: xyz, extxyz, ...).")
OUTPUT = typer.Option(..., "-o", "--output", help="The rho-data dataset to write.")
CONFIG = typer.Option(None, "--config", "-c", help="Settings YAML (see 'pyscf-io options').")
INDEX = typer.Option(None, "--index", help="ASE index selection per file, e.g. ':10' or '::2'.")
WORKDIR = typer.Option(None, "--workdir", help="Work directory (default: OUTPUT.work).")


def _overrides(**cli) -> dict:
    names = {"metric": "fit_metric", "conv_tol": "scf_conv_tol", "max_cycle": "scf_max_cycle"}
    return {names.get(k, k): v for k, v in cli.items()}


def _prepare(
    geometry: list[Path], output: Path, config: Path | None, index: str | None, workdir: Path | None, overrides: dict
) -> tuple[WorkDir, dict]:
    settings = load_settings(config, overrides)
    structures, problems = [], []
    for path in geometry:
        found, trouble = read_structures(path, index)
        structures += found
        problems += trouble
    if not structures:
        raise PyscfIoError("no structure could be read: " + "; ".join(f"{p.source}: {p.message}" for p in problems))
    wd = WorkDir.prepare(workdir or output.with_name(output.name + ".work"), settings, structures, problems, output)
    return wd, settings


def _finish(wd: WorkDir, output: Path | None, overwrite: bool) -> None:
    from .merge import merge_workdir
    from .report import counts, failure_lines, summary_table

    c = counts(wd)
    if c["done"]:
        n = merge_workdir(wd, output, overwrite)
        console.print(f"wrote {n} structures to {output or wd.manifest()['output']}")
    console.print(summary_table(wd))
    _print_failures(failure_lines(wd))
    if c["failed"] or wd.problems() or not c["done"]:
        raise typer.Exit(1)


@app.command()
def options() -> None:
    """Print the default settings (YAML, with a comment per key)."""
    print(DEFAULT_YAML, end="")


@app.command()
def run(
    geometry: list[Path] = GEOMETRY,
    output: Path = OUTPUT,
    config: Path | None = CONFIG,
    index: str | None = INDEX,
    workdir: Path | None = WORKDIR,
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
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Compute failed structures again."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an output not written by this run."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Compute every structure locally and write the dataset (resumable: a rerun skips finished ones)."""
    from .local import run_local

    try:
        wd, settings = _prepare(
            geometry,
            output,
            config,
            index,
            workdir,
            _overrides(
                workers=workers,
                threads=threads,
                xc=xc,
                basis=basis,
                aux_basis=aux_basis,
                etb_beta=etb_beta,
                metric=metric,
                charge=charge,
                spin=spin,
                grid_level=grid_level,
                conv_tol=conv_tol,
                max_cycle=max_cycle,
            ),
        )
        pending = wd.pending(retry_failed)
        skipped = wd.manifest()["n_structures"] - len(pending)
        if skipped:
            console.print(f"{skipped} structures already finished in {wd.path}; computing {len(pending)}")
        run_local(wd, pending, settings["workers"], settings["threads"], show_progress=not quiet, console=console)
        _finish(wd, output, overwrite)
    except PyscfIoError as err:
        _fail(str(err))


@app.command()
def submit(
    geometry: list[Path] = GEOMETRY,
    output: Path = OUTPUT,
    config: Path | None = CONFIG,
    index: str | None = INDEX,
    workdir: Path | None = WORKDIR,
    partition: str | None = typer.Option(None, help="SLURM partition."),
    account: str | None = typer.Option(None, help="SLURM account."),
    time_limit: str | None = typer.Option(None, "--time", help="Time limit of each array task."),
    cpus: int | None = typer.Option(None, "--cpus", help="CPUs (threads) per array task."),
    structures_per_task: int | None = typer.Option(None, help="Structures per array task."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Compute failed structures again."),
) -> None:
    """Submit the pending structures as a SLURM job array plus a merge job; follow with 'pyscf-io status'."""
    from .slurm import submit as do_submit

    try:
        wd, settings = _prepare(
            geometry,
            output,
            config,
            index,
            workdir,
            {
                "slurm.partition": partition,
                "slurm.account": account,
                "slurm.time": time_limit,
                "slurm.cpus_per_task": cpus,
                "slurm.structures_per_task": structures_per_task,
            },
        )
        record = do_submit(wd, settings, retry_failed)
        if record is None:
            console.print(f"every structure in {wd.path} has finished; merging")
            _finish(wd, output, False)
            return
        console.print(
            f"submitted array job {record['array_job']} ({record['tasks']} tasks, {record['structures']} structures) "
            f"and merge job {record['merge_job']}; follow with: pyscf-io status {wd.path}"
        )
    except PyscfIoError as err:
        _fail(str(err))


@app.command()
def status(
    workdir: Path = typer.Argument(..., help="Work directory of a run."),  # noqa: B008 - typer's idiom
    watch: float | None = typer.Option(None, "--watch", help="Report again every WATCH seconds until nothing is pending."),
) -> None:
    """Progress of a run: finished and failed structures, and the SLURM queue (one squeue call per report)."""
    from .report import counts, failure_lines, summary_table
    from .slurm import jobs, queue

    try:
        wd = WorkDir(workdir)
        while True:
            console.print(summary_table(wd, title=f"pyscf-io status of {wd.path}"))
            submitted = jobs(wd)
            if submitted:
                states = queue([j["array_job"] for j in submitted] + [j["merge_job"] for j in submitted])
                if states is None:
                    console.print("squeue is not available here")
                else:
                    for j in submitted:
                        array, merge = states.get(j["array_job"], []), states.get(j["merge_job"], [])
                        summary = ", ".join(f"{s}: {array.count(s)}" for s in sorted(set(array))) or "not in queue"
                        console.print(
                            f"submission {j['submission']}: array job {j['array_job']} ({summary}); "
                            f"merge job {j['merge_job']} ({merge[0] if merge else 'not in queue'})"
                        )
            _print_failures(failure_lines(wd))
            if watch is None or counts(wd)["pending"] == 0:
                break
            time.sleep(watch)
    except PyscfIoError as err:
        _fail(str(err))


@app.command()
def merge(
    workdir: Path = typer.Argument(..., help="Work directory of a run."),  # noqa: B008 - typer's idiom
    output: Path | None = typer.Option(None, "-o", "--output", help="Dataset to write (default: the run's output)."),  # noqa: B008 - typer's idiom
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an output not written by this run."),
) -> None:
    """Merge the finished structures of a work directory into one dataset (input order)."""
    from .merge import merge_workdir

    try:
        n = merge_workdir(WorkDir(workdir), output, overwrite)
        console.print(f"wrote {n} structures to {output or WorkDir(workdir).manifest()['output']}")
    except PyscfIoError as err:
        _fail(str(err))


@app.command("run-task")
def run_task(
    workdir: Path = typer.Argument(..., help="Work directory of a run."),  # noqa: B008 - typer's idiom
    chunks: Path = typer.Option(..., help="Chunk list written by 'submit'."),  # noqa: B008 - typer's idiom
    task_id: int = typer.Option(..., help="Which chunk (the SLURM array task id)."),
) -> None:
    """Compute one chunk of structures (what a SLURM array task runs)."""
    from . import task

    try:
        wd = WorkDir(workdir)
        indices = json.loads(chunks.read_text())[task_id]
        states = wd.states()
        settings = wd.settings()
        task.set_threads(int(os.environ.get("SLURM_CPUS_PER_TASK", settings["slurm"]["cpus_per_task"])))
        job = os.environ.get("SLURM_ARRAY_JOB_ID", "nojob")
        part = task.new_part_name(f"slurm-{job}_{task_id}")
        for i in indices:
            if states.get(i, {}).get("status") == "done":
                console.print(f"structure {i}: already done")
                continue
            state = task.run_structure(str(wd.path), i, part)
            detail = f"fit {state['fit_nmae_percent']:.3f} %NMAE" if state["status"] == "done" else state["reason"]
            console.print(
                f"structure {i} ({state['label']}): {state['status']} in {state['time_s']:.1f} s; {detail}",
                highlight=False,
                soft_wrap=True,
            )
    except (PyscfIoError, OSError, IndexError, json.JSONDecodeError) as err:
        _fail(f"{workdir}: task {task_id}: {err}")
