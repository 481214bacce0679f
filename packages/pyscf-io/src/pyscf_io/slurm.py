"""Running a work directory as a SLURM job array, and asking SLURM how it goes.

``submit`` splits the pending structures into chunks of ``slurm.structures_per_task``,
writes the chunk list and an sbatch script whose array task k runs

    python -m pyscf_io run-task WORKDIR --chunks FILE --task-id k

with the Python of this environment (shell-quoted arguments; no code in strings), and a
merge job that runs after the whole array (``--dependency=afterany``). ``queue`` asks
``squeue`` once; nothing here waits in a loop.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from .errors import PyscfIoError
from .workdir import WorkDir, write_json_atomic


def _command(*args: str) -> str:
    return " ".join(shlex.quote(a) for a in (sys.executable, "-m", "pyscf_io", *args))


def _header(name: str, slurm: dict, log: Path, cpus: int) -> list[str]:
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={shlex.quote(name)}",
        f"#SBATCH --output={shlex.quote(str(log))}",
        f"#SBATCH --cpus-per-task={cpus}",
        "#SBATCH --ntasks=1",
        f"#SBATCH --time={slurm['time']}",
    ]
    for key in ("partition", "account", "mem"):
        if slurm[key]:
            lines.append(f"#SBATCH --{key}={slurm[key]}")
    lines += [f"#SBATCH {opt}" for opt in slurm["extra_sbatch"]]
    return lines


def write_scripts(wd: WorkDir, settings: dict, chunks: list[list[int]], number: int) -> tuple[Path, Path]:
    """The array script and the merge script of submission ``number``."""
    slurm = settings["slurm"]
    wd.slurm_dir.mkdir(exist_ok=True)
    (wd.slurm_dir / "logs").mkdir(exist_ok=True)
    chunk_file = wd.slurm_dir / f"chunks-{number}.json"
    write_json_atomic(chunk_file, chunks)
    array = _header("pyscf-io", slurm, wd.slurm_dir / "logs" / f"task-{number}-%A_%a.out", slurm["cpus_per_task"])
    throttle = f"%{slurm['max_concurrent']}" if slurm["max_concurrent"] else ""
    array.append(f"#SBATCH --array=0-{len(chunks) - 1}{throttle}")
    array += [
        "set -euo pipefail",
        *slurm["setup"],
        'export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"',
        _command("run-task", str(wd.path), "--chunks", str(chunk_file), "--task-id") + ' "$SLURM_ARRAY_TASK_ID"',
    ]
    merge = _header("pyscf-io-merge", slurm, wd.slurm_dir / "logs" / f"merge-{number}-%j.out", 1)
    merge += ["set -euo pipefail", *slurm["setup"], _command("merge", str(wd.path))]
    array_path = wd.slurm_dir / f"array-{number}.sbatch"
    merge_path = wd.slurm_dir / f"merge-{number}.sbatch"
    array_path.write_text("\n".join(array) + "\n")
    merge_path.write_text("\n".join(merge) + "\n")
    return array_path, merge_path


def _sbatch(*args: str) -> str:
    if shutil.which("sbatch") is None:
        raise PyscfIoError("sbatch is not on PATH: SLURM is not available on this machine")
    done = subprocess.run(["sbatch", "--parsable", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PyscfIoError(f"sbatch failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip().split(";")[0]


def jobs(wd: WorkDir) -> list[dict]:
    path = wd.slurm_dir / "jobs.json"
    return json.loads(path.read_text()) if path.exists() else []


def submit(wd: WorkDir, settings: dict, retry_failed: bool = False) -> dict | None:
    """Submit the pending structures; returns the submission record (None when nothing is pending)."""
    pending = wd.pending(retry_failed)
    if not pending:
        return None
    size = settings["slurm"]["structures_per_task"]
    chunks = [pending[k : k + size] for k in range(0, len(pending), size)]
    number = len(jobs(wd)) + 1
    array_script, merge_script = write_scripts(wd, settings, chunks, number)
    array_id = _sbatch(str(array_script))
    merge_id = _sbatch(f"--dependency=afterany:{array_id}", str(merge_script))
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
