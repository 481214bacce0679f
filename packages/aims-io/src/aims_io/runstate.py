"""The state of each run: finished, running, failed or not started, without waiting.

- finished: aims.out ends with ``Leaving FHI-aims.`` ... ``Have a nice day.``;
- running: its SLURM array task is still queued or running (one ``squeue`` call per
  status), or its local process is alive;
- failed: it was started and is neither; the reason (the last lines of aims.out) is recorded
  in ``aims-io-failed.json`` by the commands that run FHI-aims (``status`` is a query: it
  only reads);
- not started: never submitted.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from .aimsout import tail
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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_state(run_dir: Path, active_slurm: set[str] | None = None, record: bool = False) -> RunState:
    """The state of one run; with ``record`` (commands that run FHI-aims, never queries such as
    ``status``) a failure seen for the first time is written to ``aims-io-failed.json``."""
    if aims_finished(run_dir):
        return RunState(run_dir, FINISHED)
    job = read_json(run_dir / JOB_FILE)
    if not job:
        return RunState(run_dir, NOT_STARTED)
    if job.get("backend") == "slurm":
        if active_slurm is None:
            from .slurm import active_tasks

            active_slurm = active_tasks()
        if job.get("job_id") in active_slurm:
            return RunState(run_dir, RUNNING, f"SLURM job {job.get('job_id')}")
    elif (
        job.get("backend") == "local"
        and job.get("host") == socket.gethostname()
        and _pid_alive(int(job.get("pid", -1)))
        and not job.get("ended")
    ):
        return RunState(run_dir, RUNNING, f"local process {job.get('pid')}")
    failed = read_json(run_dir / FAILED_FILE)
    reason = failed.get("reason") or f"did not finish: {tail(run_dir / 'aims.out')}"
    if record and not failed:
        write_json(run_dir / FAILED_FILE, {"reason": reason, "seen": time.strftime("%Y-%m-%dT%H:%M:%S"), "job": job})
    return RunState(run_dir, FAILED, reason)


def stage_states(dirs: list[Path], *, record: bool = False) -> list[RunState]:
    """States of many runs with one squeue call when any ran on SLURM (writes nothing unless ``record``)."""
    active = None
    if any(read_json(d / JOB_FILE).get("backend") == "slurm" for d in dirs if not aims_finished(d)):
        from .slurm import active_tasks

        active = active_tasks()
    return [run_state(d, active, record=record) for d in dirs]
