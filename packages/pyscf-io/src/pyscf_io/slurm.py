"""Running a work directory as a SLURM job array, and asking SLURM how it goes.

``submit`` splits the pending structures into chunks of ``slurm.structures_per_task``,
writes the chunk list and an sbatch script whose array task k runs

    python -m pyscf_io run-task WORKDIR --chunks FILE --task-id k

with the Python of this environment (shell-quoted arguments; no code in strings), and a
merge job that runs after the whole array (``--dependency=afterany``). ``queue`` asks
``squeue`` once; nothing here waits in a loop. Both scripts are written through
:class:`rho_data.jobscript.JobScript`, which refuses a control character (a newline would start
a new shell line, even inside a ``#SBATCH`` line or a quoted word) in any value, naming the
setting it came from; directive values are also shell-quoted, commands are quoted word by word.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from rho_data.jobscript import JobScript, refuse_control_characters, sbatch, shell_command

from .errors import PyscfIoError
from .workdir import WorkDir, write_json_atomic

WORKDIR_SETTING = "the work directory path (--workdir, or the output path + '.work')"


def _command(*args: str, setting: str) -> str:
    return shell_command([sys.executable, "-m", "pyscf_io", *args], setting=setting)


def _header(script: JobScript, name: str, slurm: dict, log: Path, cpus: int) -> JobScript:
    script.directive("--job-name", name, setting="the job name")
    script.directive("--output", shlex.quote(refuse_control_characters(str(log), WORKDIR_SETTING)), setting=WORKDIR_SETTING)
    script.directive("--cpus-per-task", cpus, setting="slurm.cpus_per_task")
    script.directive("--ntasks", 1)
    script.directive("--time", shlex.quote(refuse_control_characters(slurm["time"], "slurm.time")), setting="slurm.time")
    for key in ("partition", "account", "mem"):
        if slurm[key]:
            value = shlex.quote(refuse_control_characters(slurm[key], f"slurm.{key}"))
            script.directive(f"--{key}", value, setting=f"slurm.{key}")
    for k, option in enumerate(slurm["extra_sbatch"]):
        script.directive(option, setting=f"slurm.extra_sbatch[{k}]")
    return script


def _setup(script: JobScript, slurm: dict) -> None:
    script.command("set -euo pipefail")
    for k, line in enumerate(slurm["setup"]):
        script.command(line, setting=f"slurm.setup[{k}]")


def build_scripts(workdir: Path, settings: dict, n_chunks: int, number: int) -> tuple[JobScript, JobScript, Path]:
    """The array and merge scripts of submission ``number`` (every value checked), and the chunk file's path."""
    slurm = settings["slurm"]
    slurm_dir = workdir / "slurm"
    chunk_file = slurm_dir / f"chunks-{number}.json"
    array = _header(JobScript(), "pyscf-io", slurm, slurm_dir / "logs" / f"task-{number}-%A_%a.out", slurm["cpus_per_task"])
    throttle = f"%{slurm['max_concurrent']}" if slurm["max_concurrent"] else ""
    array.directive("--array", f"0-{n_chunks - 1}{throttle}", setting="slurm.max_concurrent")
    _setup(array, slurm)
    array.command('export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"')
    task = _command("run-task", str(workdir), "--chunks", str(chunk_file), "--task-id", setting=WORKDIR_SETTING)
    array.command(task + ' "$SLURM_ARRAY_TASK_ID"', setting=WORKDIR_SETTING)
    merge = _header(JobScript(), "pyscf-io-merge", slurm, slurm_dir / "logs" / f"merge-{number}-%j.out", 1)
    _setup(merge, slurm)
    merge.command(_command("merge", str(workdir), setting=WORKDIR_SETTING), setting=WORKDIR_SETTING)
    return array, merge, chunk_file


def check_job_settings(workdir: Path, settings: dict) -> None:
    """Refuse (one line naming the setting) a work directory or setting that cannot go into a job script.

    Called before the work directory is created, so that nothing is left behind.
    """
    array, merge, _ = build_scripts(Path(os.path.abspath(workdir)), settings, 1, 1)
    array.text()
    merge.text()


def write_scripts(wd: WorkDir, settings: dict, chunks: list[list[int]], number: int) -> tuple[Path, Path]:
    """The array script and the merge script of submission ``number``."""
    array, merge, chunk_file = build_scripts(wd.path, settings, len(chunks), number)
    array.text(), merge.text()  # refuse a bad value before writing anything
    wd.slurm_dir.mkdir(exist_ok=True)
    (wd.slurm_dir / "logs").mkdir(exist_ok=True)
    write_json_atomic(chunk_file, chunks)
    array_path = array.write(wd.slurm_dir / f"array-{number}.sbatch")
    merge_path = merge.write(wd.slurm_dir / f"merge-{number}.sbatch")
    return array_path, merge_path


def jobs(wd: WorkDir) -> list[dict]:
    path = wd.slurm_dir / "jobs.json"
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PyscfIoError(f"{path}: unreadable list of submitted jobs ({str(err).splitlines()[0][:120]})") from None
    if not isinstance(data, list) or not all(isinstance(j, dict) and {"array_job", "merge_job"} <= set(j) for j in data):
        raise PyscfIoError(f"{path}: not a list of submitted jobs")
    return data


def submit(wd: WorkDir, settings: dict, retry_failed: bool = False) -> dict | None:
    """Submit the pending structures; returns the submission record (None when nothing is pending)."""
    pending = wd.pending(retry_failed)
    if not pending:
        return None
    size = settings["slurm"]["structures_per_task"]
    chunks = [pending[k : k + size] for k in range(0, len(pending), size)]
    number = len(jobs(wd)) + 1
    array_script, merge_script = write_scripts(wd, settings, chunks, number)
    array_id = sbatch([str(array_script)], error=PyscfIoError)
    merge_id = sbatch([f"--dependency=afterany:{array_id}", str(merge_script)], error=PyscfIoError)
    record = {
        "submission": number,
        "array_job": array_id,
        "merge_job": merge_id,
        "tasks": len(chunks),
        "structures": len(pending),
    }
    write_json_atomic(wd.slurm_dir / "jobs.json", jobs(wd) + [record])
    return record


def queue(job_ids: list[str]) -> dict[str, list[str]] | None:
    """``{job id: [states of its queued tasks]}`` from one ``squeue`` call; None without SLURM."""
    if not job_ids or shutil.which("squeue") is None:
        return None
    done = subprocess.run(
        ["squeue", "-h", "-r", "-j", ",".join(job_ids), "-o", "%F|%T"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:  # finished jobs past MinJobAge make squeue refuse the id list
        return {}
    states: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        job, _, state = line.partition("|")
        states.setdefault(job.strip(), []).append(state.strip())
    return states
