"""SLURM job arrays: one array task per run directory.

The run directories go into a list file (one absolute path per line); array task k runs in
the k-th directory. All options go to ``sbatch`` as separate arguments (no shell), and the job
script is written by :class:`rho_data.jobscript.JobScript`: the aims command and every path
are quoted word by word, and no value (option, path, setup line) may hold a control character
such as a newline, which would start a line of shell in the script; the error names the
setting. Only the ``hpc.setup_lines`` (module loads, exports) are written as given, one line
each: they are shell by nature.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
from pathlib import Path

from rho_data.jobscript import JobScript, refuse_control_characters, shell_command

from . import __version__
from .errors import AimsIOError
from .layout import write_text
from .runner import aims_argv, prepare_slurm
from .runstate import mark_job


def _sbatch_options(settings: dict, n: int, log_dir: Path, name: str) -> list[str]:
    """The sbatch arguments, each checked for control characters (the error names its setting)."""
    hpc = settings["hpc"]
    array = f"1-{n}" + (f"%{int(hpc['array_parallel'])}" if hpc["array_parallel"] else "")
    options = [
        (f"--job-name={name}", "the job name"),
        (f"--array={array}", "hpc.array_parallel"),
        (f"--output={log_dir / 'slurm-%A_%a.out'}", "the jobs directory"),
        (f"--nodes={int(hpc['nodes'])}", "hpc.nodes"),
        (f"--ntasks={int(hpc['ntasks'])}", "hpc.ntasks"),
        (f"--time={hpc['time']}", "hpc.time"),
    ]
    if hpc["partition"]:
        options.append((f"--partition={hpc['partition']}", "hpc.partition"))
    if hpc["account"]:
        options.append((f"--account={hpc['account']}", "hpc.account"))
    for key, value in (hpc["sbatch_options"] or {}).items():
        option = f"--{key}" if value is None or value is True else f"--{key}={value}"
        options.append((option, f"hpc.sbatch_options.{key}"))
    return [refuse_control_characters(option, f"setting '{setting}'") for option, setting in options]


def job_script(list_file: Path, settings: dict, options: list[str]) -> JobScript:
    """The job script: setup lines, then FHI-aims in the run directory of this array task."""
    script = JobScript()
    script.comment(f"written by aims-io {__version__}; submitted as: sbatch {shlex.join(options)} <this script>")
    script.comment("array task k runs FHI-aims in the k-th directory of the run list")
    for k, line in enumerate(settings["hpc"]["setup_lines"] or []):
        script.command(line, setting=f"setting 'hpc.setup_lines[{k}]'")
    script.command("ulimit -s unlimited 2>/dev/null || true")
    list_word = shell_command([list_file], "the run list's path")
    script.command(f'run_dir=$(sed -n "${{SLURM_ARRAY_TASK_ID}}p" {list_word})')
    script.command('cd "$run_dir" || { echo "aims-io: cannot enter run directory $run_dir" >&2; exit 1; }')
    aims = shell_command(aims_argv(settings), "setting 'hpc.aims_command'")
    script.command(f"{aims} > aims.out 2> aims.err")
    return script


def submit(dirs: list[Path], settings: dict, jobs_dir: Path, name: str, wait: bool = False) -> str:
    """Submit one array over ``dirs``; returns the job id. With ``wait``, sbatch blocks until done.

    Everything is checked before anything is written: a run directory or setting that cannot
    go into a job script is refused with one line and leaves the runs as they were.
    """
    if not dirs:
        raise AimsIOError("nothing to submit")
    run_list = "".join(f"{refuse_control_characters(d.resolve(), 'the run directory path')}\n" for d in dirs)
    stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{time.time_ns() % 1_000_000:06d}"
    list_file = jobs_dir.resolve() / f"{name}-{stamp}.list"
    script_path = jobs_dir.resolve() / f"{name}-{stamp}.sh"
    options = _sbatch_options(settings, len(dirs), jobs_dir.resolve(), name)
    script = job_script(list_file, settings, options)
    script.text()  # checks every line now, before any file is written
    refuse_control_characters(script_path, "the job script's path")
    if shutil.which("sbatch") is None:
        raise AimsIOError("sbatch not found: is SLURM installed and on PATH?")
    jobs_dir.mkdir(parents=True, exist_ok=True)
    write_text(list_file, run_list, what="run list")
    script.write(script_path)
    prepare_slurm(dirs)
    command = ["sbatch", "--parsable", *(["--wait"] if wait else []), *options, str(script_path)]
    # job markers first, so that status sees the runs as submitted even while sbatch --wait blocks
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    job_id = ""
    if proc.stdout is not None:
        job_id = proc.stdout.readline().strip().split(";")[0]
    if job_id:
        for k, d in enumerate(dirs, 1):
            mark_job(d, {"backend": "slurm", "job_id": f"{job_id}_{k}", "script": str(script_path), "submitted": time.time()})
    out, err = proc.communicate()
    if not job_id:
        raise AimsIOError(f"sbatch failed: {_last_line(err) or _last_line(out)}", path=script_path)
    if proc.returncode != 0 and not wait:
        raise AimsIOError(f"sbatch failed: {_last_line(err)}", path=script_path)
    return job_id


def _last_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[-1] if lines else ""
