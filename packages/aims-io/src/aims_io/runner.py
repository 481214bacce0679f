"""Running FHI-aims in run directories: locally or as one SLURM job array.

Both backends run the configured ``hpc.aims_command`` inside each run directory with
stdout to ``aims.out`` and stderr to ``aims.err``. Finished runs and runs still running are
skipped, so running a stage again resumes it; a failed run is run again (its old aims.out is
kept as ``aims.out.previous``). One failed run never stops the others.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from rho_data.yaml_input import short_repr

from .aimsout import tail
from .errors import AimsIOError
from .runstate import FINISHED, RUNNING, RunState, aims_finished, mark_job, record_failure, record_failures, reset, stage_states


def aims_argv(settings: dict) -> list[str]:
    """The aims command split like a shell would (no expansion, no shell)."""
    try:
        argv = shlex.split(str(settings["hpc"]["aims_command"]))
    except ValueError as err:
        raise AimsIOError(f"setting 'hpc.aims_command' cannot be split into words: {err}") from None
    if not argv:
        raise AimsIOError("setting 'hpc.aims_command' is empty")
    return argv


def pending(dirs: list[Path]) -> tuple[list[Path], list[RunState]]:
    """Run directories to (re)run: not started or failed. Also returns every state."""
    states = stage_states(dirs)
    record_failures(states)
    return [s.run_dir for s in states if s.state not in (FINISHED, RUNNING)], states


def run_one_local(run_dir: Path, argv: list[str]) -> RunState:
    """Run FHI-aims in ``run_dir`` and wait; record a failure with its reason."""
    reset(run_dir)
    job = {"backend": "local", "pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
    mark_job(run_dir, job)
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    try:
        with open(run_dir / "aims.out", "wb") as out, open(run_dir / "aims.err", "wb") as err:
            code = subprocess.run(argv, cwd=run_dir, stdout=out, stderr=err, env=env, check=False).returncode
    except OSError as exc:
        code, reason = -1, f"cannot start {short_repr(argv[0])}: {exc.strerror}"
    else:
        reason = ""
    job["ended"] = time.time()
    job["returncode"] = code
    mark_job(run_dir, job)
    if aims_finished(run_dir):
        return RunState(run_dir, FINISHED)
    return record_failure(run_dir, reason or f"exit code {code}; last lines: {tail(run_dir / 'aims.out')}", job)


def run_local(dirs: list[Path], settings: dict, on_done: Callable[[RunState], None] | None = None) -> list[RunState]:
    """Run the given directories, ``hpc.max_parallel`` at a time."""
    argv = aims_argv(settings)
    results = []
    with ThreadPoolExecutor(max_workers=int(settings["hpc"]["max_parallel"])) as pool:
        futures = [pool.submit(run_one_local, d, argv) for d in dirs]
        for future in as_completed(futures):
            state = future.result()
            results.append(state)
            if on_done:
                on_done(state)
    return sorted(results, key=lambda s: str(s.run_dir))


def prepare_slurm(dirs: list[Path]) -> None:
    for d in dirs:
        reset(d)
