"""The state of each run directory, and every file that records it.

A run is
- finished: aims.out ends with ``Leaving FHI-aims.`` ... ``Have a nice day.``;
- running: its SLURM array task is still queued or running (one ``squeue`` call per
  query), or its local process is alive;
- failed: it was started and is neither; the reason (the last lines of aims.out) is recorded
  in ``aims-io-failed.json`` by the commands that run FHI-aims (:func:`record_failures`);
- not started: never submitted.

The job marker ``.aims-io-job.json`` says how a run was started (local process or SLURM task);
only this module writes it and the failure file. :func:`run_state` and :func:`stage_states`
are queries: they read and write nothing (``aims-io status`` uses them).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from rho_data.atomic import pid_alive

from .aimsout import tail
from .errors import AimsIOError
from .layout import FAILED_FILE, JOB_FILE, read_json, write_json

FINISHED, RUNNING, FAILED, NOT_STARTED = "finished", "running", "failed", "not started"


@dataclass
class RunState:
    run_dir: Path
    state: str
    reason: str = ""


def aims_finished(run_dir: Path) -> bool:
    """Cheap check on the end of aims.out (the last 8 kB)."""
    path = run_dir / "aims.out"
    if not path.is_file():
        return False
    with open(path, "rb") as f:
        f.seek(0, 2)
        f.seek(max(0, f.tell() - 8192))
        lines = [x.strip() for x in f.read().decode(errors="replace").splitlines()]
    if "Leaving FHI-aims." not in lines:
        return False
    return "Have a nice day." in lines[lines.index("Leaving FHI-aims.") :]


def was_started(run_dir: Path) -> bool:
    """Whether the run was ever started or submitted (it has a job marker)."""
    return (run_dir / JOB_FILE).is_file()


def run_state(run_dir: Path, active_slurm: set[str] | None = None) -> RunState:
    """The state of one run (reads only; ``active_slurm``: the ids of :func:`active_tasks`, asked when needed)."""
    if aims_finished(run_dir):
        return RunState(run_dir, FINISHED)
    job = read_json(run_dir / JOB_FILE)
    if not job:
        return RunState(run_dir, NOT_STARTED)
    if job.get("backend") == "slurm":
        if active_slurm is None:
            active_slurm = active_tasks()
        if job.get("job_id") in active_slurm:
            return RunState(run_dir, RUNNING, f"SLURM job {job.get('job_id')}")
    elif (
        job.get("backend") == "local"
        and job.get("host") == socket.gethostname()
        and pid_alive(int(job.get("pid", -1)))
        and not job.get("ended")
    ):
        return RunState(run_dir, RUNNING, f"local process {job.get('pid')}")
    failed = read_json(run_dir / FAILED_FILE)
    reason = failed.get("reason") or f"did not finish: {tail(run_dir / 'aims.out')}"
    return RunState(run_dir, FAILED, reason)


def stage_states(dirs: list[Path]) -> list[RunState]:
    """States of many runs with one squeue call when any ran on SLURM (reads only)."""
    active = None
    if any(read_json(d / JOB_FILE).get("backend") == "slurm" for d in dirs if not aims_finished(d)):
        active = active_tasks()
    return [run_state(d, active) for d in dirs]


# ---- the SLURM query --------------------------------------------------------------------------
_ENDED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE", "PREEMPTED")


def active_tasks() -> set[str]:
    """Ids ``<job>_<task>`` of array tasks SLURM still has pending or running (one squeue call)."""
    if shutil.which("squeue") is None:
        return set()
    proc = subprocess.run(["squeue", "-h", "-r", "-o", "%i|%T"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AimsIOError(f"squeue failed: {proc.stderr.strip()}")
    active = set()
    for line in proc.stdout.splitlines():
        job, _, state = line.partition("|")
        if state.strip() not in _ENDED:
            active.add(job.strip())
    return active


# ---- what the commands that run FHI-aims record -------------------------------------------------
def record_failure(run_dir: Path, reason: str, job: dict) -> RunState:
    """Write ``aims-io-failed.json`` (the reason, when it was seen, the job marker) and return the failed state."""
    write_json(run_dir / FAILED_FILE, {"reason": reason, "seen": time.strftime("%Y-%m-%dT%H:%M:%S"), "job": job})
    return RunState(run_dir, FAILED, reason)


def record_failures(states: list[RunState]) -> None:
    """Record each failure of ``states`` seen for the first time (commands that run FHI-aims, never queries)."""
    for s in states:
        if s.state == FAILED and not (s.run_dir / FAILED_FILE).is_file():
            record_failure(s.run_dir, s.reason, read_json(s.run_dir / JOB_FILE))


def reset(run_dir: Path) -> None:
    """Forget a run before it runs again: aims.out becomes aims.out.previous; job marker and failure go."""
    out = run_dir / "aims.out"
    if out.exists():
        out.replace(run_dir / "aims.out.previous")
    for name in (FAILED_FILE, JOB_FILE):
        (run_dir / name).unlink(missing_ok=True)


def mark_job(run_dir: Path, job: dict) -> None:
    """Write the job marker: ``{"backend": "local", "pid", "host", ...}`` or ``{"backend": "slurm", "job_id", ...}``."""
    write_json(run_dir / JOB_FILE, job)
