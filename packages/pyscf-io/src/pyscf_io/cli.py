"""The ``pyscf-io`` command: options, run, submit, status, merge, run-task."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console

from rho_data.atomic import check_output_location
from rho_data.cli_support import RhoTyper, print_error
from rho_data.yaml_input import short_repr

from . import __version__
from .config import DEFAULT_YAML, load_settings
from .errors import PyscfIoError
from .geometry import check_index, read_structures
from .workdir import WorkDir

console = Console()
err_console = Console(stderr=True)
app = RhoTyper(
    help="Reference electron densities with PySCF (density-fitted SCF + RI fit), written as rho-data datasets.",
    errors=(PyscfIoError,),
    error_console=err_console,
    version=f"pyscf-io {__version__}",
    console=console,
)


def _print_failures(lines: list[str]) -> None:
    for line in lines:
        print_error(err_console, line)


# ---- shared options -----------------------------------------------------------------------------
GEOMETRY = typer.Argument(..., help="Geometry files (any format ASE reads: xyz, extxyz, ...).")
OUTPUT = typer.Option(..., "-o", "--output", help="The rho-data dataset to write.")
CONFIG = typer.Option(None, "--config", "-c", help="Settings YAML (see 'pyscf-io options').")
INDEX = typer.Option(None, "--index", help="ASE index selection per file, e.g. ':10' or '::2'.")
WORKDIR = typer.Option(None, "--workdir", help="Work directory (default: OUTPUT.work).")


def _overrides(**cli) -> dict:
    names = {"metric": "fit_metric", "conv_tol": "scf_conv_tol", "max_cycle": "scf_max_cycle"}
    return {names.get(k, k): v for k, v in cli.items()}


def _warn(line: str) -> None:
    print_error(err_console, line, label="warning")


def _workdir_path(output: Path, workdir: Path | None) -> Path:
    return workdir or output.with_name(output.name + ".work")


def _prepare(
    geometry: list[Path],
    output: Path,
    config: Path | None,
    index: str | None,
    workdir: Path | None,
    overrides: dict,
    before_creating: Callable[[dict], None] | None = None,
) -> tuple[WorkDir, dict]:
    """Settings, input structures and the work directory (created or reopened); bad input is one line.

    The output's directory is checked first (it must exist and be writable) so that no work
    directory is created for an output that cannot be written.
    """
    check_index(index)
    settings = load_settings(config, overrides)
    check_output_location(output, overwrite=True, what="dataset")
    if before_creating is not None:
        before_creating(settings)
    structures, problems = [], []
    for path in geometry:
        found, trouble = read_structures(path, index)
        structures += found
        problems += trouble
    if not structures:
        raise PyscfIoError("no structure could be read: " + "; ".join(f"{p.source}: {p.message}" for p in problems))
    wd = WorkDir.prepare(_workdir_path(output, workdir), settings, structures, problems, output)
    wd.remove_stale_temporaries()
    lost = wd.recover_lost()
    if lost:
        _warn(lost)
    return wd, settings


def _finish(wd: WorkDir, output: Path | None, overwrite: bool) -> None:
    from .merge import merge_workdir
    from .report import counts, failure_lines, summary_table

    c = counts(wd)
    if c["done"]:
        n = merge_workdir(wd, output, overwrite, warn=_warn)
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
    scf_density_fit: bool | None = typer.Option(
        None, "--scf-density-fit/--exact-scf", help="Density-fitted SCF (default) or exact four-centre integrals."
    ),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Compute failed structures again."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an output not written by this run."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Compute every structure locally and write the dataset (resumable: a rerun skips finished ones)."""
    from .disk import require_space_for_run
    from .local import run_local
    from .merge import check_output

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
            scf_density_fit=scf_density_fit,
        ),
    )
    check_output(output, wd.manifest()["run_id"], overwrite)  # before the expensive work
    pending = wd.pending(retry_failed)
    skipped = wd.manifest()["n_structures"] - len(pending)
    if skipped:
        console.print(f"{skipped} structures already finished in {wd.path}; computing {len(pending)}")
    require_space_for_run(wd.path, output, wd.context(), wd.structures(), pending)
    run_local(wd, pending, settings["workers"], settings["threads"], show_progress=not quiet, console=console)
    _finish(wd, output, overwrite)


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
    from .slurm import check_job_settings
    from .slurm import submit as do_submit

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
        before_creating=lambda settings: check_job_settings(_workdir_path(output, workdir), settings),
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


@app.command()
def status(
    workdir: Path = typer.Argument(..., help="Work directory of a run."),  # noqa: B008 - typer's idiom
    watch: float | None = typer.Option(None, "--watch", help="Report again every WATCH seconds until nothing is pending."),
) -> None:
    """Progress of a run: finished and failed structures, and the SLURM queue (one squeue call per report)."""
    from .report import counts, failure_lines, summary_table
    from .slurm import jobs, queue

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


@app.command()
def merge(
    workdir: Path = typer.Argument(..., help="Work directory of a run."),  # noqa: B008 - typer's idiom
    output: Path | None = typer.Option(None, "-o", "--output", help="Dataset to write (default: the run's output)."),  # noqa: B008 - typer's idiom
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an output not written by this run."),
) -> None:
    """Merge the finished structures of a work directory into one dataset (input order)."""
    from .merge import merge_workdir
    from .report import counts

    wd = WorkDir(workdir)
    n = merge_workdir(wd, output, overwrite, warn=_warn)
    console.print(f"wrote {n} structures to {output or wd.manifest()['output']}")
    if counts(wd)["pending"]:
        raise PyscfIoError(f"{wd.path}: {counts(wd)['pending']} structures are pending; run or submit again to compute them")


@app.command("run-task")
def run_task(
    workdir: Path = typer.Argument(..., help="Work directory of a run."),  # noqa: B008 - typer's idiom
    chunks: Path = typer.Option(..., help="Chunk list written by 'submit'."),  # noqa: B008 - typer's idiom
    task_id: int = typer.Option(..., help="Which chunk (the SLURM array task id)."),
) -> None:
    """Compute one chunk of structures (what a SLURM array task runs)."""
    from . import task

    wd = WorkDir(workdir)
    indices = _read_chunk(chunks, task_id, wd.manifest()["n_structures"])
    states = wd.states()
    settings = wd.settings()
    task.set_threads(_cpus(settings["slurm"]["cpus_per_task"]))
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


def _read_chunk(chunks: Path, task_id: int, n_structures: int) -> list[int]:
    """The structure indices of chunk ``task_id`` of a chunk file written by ``submit``."""
    try:
        data = json.loads(chunks.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PyscfIoError(f"{chunks}: unreadable chunk list ({str(err).splitlines()[0][:120]})") from None
    if not isinstance(data, list) or not 0 <= task_id < len(data):
        raise PyscfIoError(f"{chunks}: has no chunk {task_id}")
    chunk = data[task_id]
    if not isinstance(chunk, list) or not all(isinstance(i, int) and 0 <= i < n_structures for i in chunk):
        raise PyscfIoError(f"{chunks}: chunk {task_id} is not a list of structure numbers below {n_structures}")
    return chunk


def _cpus(default: int) -> int:
    value = os.environ.get("SLURM_CPUS_PER_TASK")
    if value is None:
        return default
    if not value.isdigit() or int(value) < 1:
        raise PyscfIoError(f"SLURM_CPUS_PER_TASK must be a positive integer, got {short_repr(value)}")
    return int(value)


@app.command()
def guess(
    predictions: Path = typer.Argument(..., help="rho-data predictions file of DATA's structures."),  # noqa: B008 - typer's idiom
    reference: Path = typer.Option(..., "--reference", help="The pyscf-io dataset the predictions belong to."),  # noqa: B008
    report_dir: Path = typer.Option(..., "-o", "--output", help="Report directory (resumable)."),  # noqa: B008
    indices: Path | None = typer.Option(None, "--indices", help="Index file (rho-data split) of the structures to run."),  # noqa: B008
    guesses: str = typer.Option("ml,ri,minao,atom,huckel,vsap", "--guesses", help="Comma-separated initial guesses."),
    guess_grid_level: int = typer.Option(1, "--guess-grid-level", min=0, max=9, help="DFT grid level of the guess's V_xc."),
    workers: int = typer.Option(1, "--workers", "-j", min=1, max=4096, help="Worker processes (one thread each)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the report of another run in REPORT_DIR."),
) -> None:
    """SCF cycles and wall time from the predicted density as initial guess, against the RI density and PySCF's guesses."""
    from .guess_run import ReportDir, parse_guesses, plan, run_jobs, summary_lines, summary_table, write_report

    names = parse_guesses(guesses)
    settings, jobs, record = plan(predictions, reference, indices, names)
    record["guess_grid_level"] = guess_grid_level
    report = ReportDir(report_dir)
    report.prepare(record, overwrite)
    results, pending = [], []
    for job in jobs:
        found = report.finished(job.dataset_index)
        (results.append(found) if found is not None else pending.append(job))
    if results:
        console.print(f"{len(results)} structures already finished in {report.path}; computing {len(pending)}")

    def done(result: dict) -> None:
        report.save(result)
        results.append(result)
        for line in result["warnings"]:
            _warn(line)
        for row in result["rows"]:
            if not row["converged"]:
                where = f"{reference}: structure {row['dataset_index']} ({row['label']})"
                _warn(f"{where}: the SCF from the {row['guess']} guess did not converge")
        console.print(
            f"structure {result['dataset_index']}: "
            + ", ".join(f"{r['guess']} {r['cycles']}" for r in result["rows"])
            + " cycles",
            highlight=False,
        )

    run_jobs(reference, predictions, pending, settings, names, guess_grid_level, workers, done)
    summary = write_report(report, results, record, guess_grid_level)
    console.print(summary_table(summary))
    for line in summary_lines(summary):
        console.print(line, highlight=False)
    for other in ("ml", "ri"):
        diff = summary.get(f"max_abs_e_{other}_minus_minao_ha")
        if diff is not None and diff > settings["scf_conv_tol"]:
            _warn(f"max |E_{other} - E_minao| = {diff:.2e} Ha exceeds the SCF tolerance {settings['scf_conv_tol']:g}")
    console.print(f"wrote {report.path / 'guess.csv'}, {report.path / 'guess.json'}")
