"""``pyscf-io run-task``: what one SLURM array task runs, one chunk of a submission's structures."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from rho_data.yaml_input import short_repr

from .errors import PyscfIoError
from .workdir import WorkDir


def run_chunk(workdir: Path, chunks: Path, task_id: int, say: Callable[[str], None]) -> None:
    """Compute the structures of chunk ``task_id`` that are not done, with the task's CPUs as threads."""
    from . import task

    wd = WorkDir(workdir)
    indices = read_chunk(chunks, task_id, wd.manifest()["n_structures"])
    states = wd.states()
    settings = wd.settings()
    task.set_threads(slurm_cpus(settings["slurm"]["cpus_per_task"]))
    job = os.environ.get("SLURM_ARRAY_JOB_ID", "nojob")
    part = task.new_part_name(f"slurm-{job}_{task_id}")
    for i in indices:
        if states.get(i, {}).get("status") == "done":
            say(f"structure {i}: already done")
            continue
        state = task.run_structure(str(wd.path), i, part)
        detail = f"fit {state['fit_nmae_percent']:.3f} %NMAE" if state["status"] == "done" else state["reason"]
        say(f"structure {i} ({state['label']}): {state['status']} in {state['time_s']:.1f} s; {detail}")


def read_chunk(chunks: Path, task_id: int, n_structures: int) -> list[int]:
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


def slurm_cpus(default: int) -> int:
    """``SLURM_CPUS_PER_TASK`` when SLURM sets it, else ``default``."""
    value = os.environ.get("SLURM_CPUS_PER_TASK")
    if value is None:
        return default
    if not value.isdigit() or int(value) < 1:
        raise PyscfIoError(f"SLURM_CPUS_PER_TASK must be a positive integer, got {short_repr(value)}")
    return int(value)
