"""SLURM job arrays: one array task per run directory.

The run directories go into a list file (one absolute path per line); array task k runs in
the k-th directory. All options go to ``sbatch`` as separate arguments (no shell), and the job
script quotes every path and word of the aims command with ``shlex.quote``. Only the
``hpc.setup_lines`` (module loads, exports) are written as given: they are shell by nature.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
from pathlib import Path

from . import __version__
from .errors import AimsIOError
from .layout import JOB_FILE, write_json
from .runner import aims_argv, prepare_slurm


def _sbatch_options(settings: dict, n: int, log_dir: Path, name: str) -> list[str]:
    hpc = settings["hpc"]
    array = f"1-{n}" + (f"%{int(hpc['array_parallel'])}" if hpc["array_parallel"] else "")
    options = [
        f"--job-name={name}",
        f"--array={array}",
        f"--output={log_dir / 'slurm-%A_%a.out'}",
        f"--nodes={int(hpc['nodes'])}",
        f"--ntasks={int(hpc['ntasks'])}",
        f"--time={hpc['time']}",
    ]
    if hpc["partition"]:
        options.append(f"--partition={hpc['partition']}")
    if hpc["account"]:
        options.append(f"--account={hpc['account']}")
    for key, value in (hpc["sbatch_options"] or {}).items():
        options.append(f"--{key}" if value is None or value is True else f"--{key}={value}")
    return options


def job_script(list_file: Path, settings: dict, options: list[str]) -> str:
    argv = aims_argv(settings)
    lines = [
        "#!/bin/bash",
        f"# written by aims-io {__version__}; submitted as: sbatch {shlex.join(options)} <this script>",
        "# array task k runs FHI-aims in the k-th directory of the run list",
        *settings["hpc"]["setup_lines"],
        "ulimit -s unlimited 2>/dev/null || true",
        f'run_dir=$(sed -n "${{SLURM_ARRAY_TASK_ID}}p" {shlex.quote(str(list_file))})',
        'cd "$run_dir" || { echo "aims-io: cannot enter run directory $run_dir" >&2; exit 1; }',
        f"{shlex.join(argv)} > aims.out 2> aims.err",
        "",
    ]
    return "\n".join(lines)


def submit(dirs: list[Path], settings: dict, jobs_dir: Path, name: str, wait: bool = False) -> str:
    """Submit one array over ``dirs``; returns the job id. With ``wait``, sbatch blocks until done."""
    if not dirs:
        raise AimsIOError("nothing to submit")
    if shutil.which("sbatch") is None:
        raise AimsIOError("sbatch not found: is SLURM installed and on PATH?")
    jobs_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{time.time_ns() % 1_000_000:06d}"
    list_file = jobs_dir / f"{name}-{stamp}.list"
    script = jobs_dir / f"{name}-{stamp}.sh"
    list_file.write_text("".join(f"{d.resolve()}\n" for d in dirs))
    options = _sbatch_options(settings, len(dirs), jobs_dir.resolve(), name)
    script.write_text(job_script(list_file.resolve(), settings, options))
    prepare_slurm(dirs)
    command = ["sbatch", "--parsable", *(["--wait"] if wait else []), *options, str(script)]
    # job markers first, so that status sees the runs as submitted even while sbatch --wait blocks
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    job_id = ""
    if proc.stdout is not None:
        job_id = proc.stdout.readline().strip().split(";")[0]
    if job_id:
        for k, d in enumerate(dirs, 1):
            write_json(
                d / JOB_FILE, {"backend": "slurm", "job_id": f"{job_id}_{k}", "script": str(script), "submitted": time.time()}
            )
    out, err = proc.communicate()
    if not job_id:
        raise AimsIOError(f"sbatch failed: {err.strip() or out.strip()}", path=script)
    if proc.returncode != 0 and not wait:
        raise AimsIOError(f"sbatch failed: {err.strip()}", path=script)
    return job_id


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
        if state.strip() not in (
            "COMPLETED",
            "FAILED",
            "CANCELLED",
            "TIMEOUT",
            "OUT_OF_MEMORY",
            "NODE_FAIL",
            "BOOT_FAIL",
            "DEADLINE",
            "PREEMPTED",
        ):
            active.add(job.strip())
    return active
