"""SLURM batch scripts for data-parallel training: ``srun torchrun ... -m rho_model.cli train ...``.

One torchrun per node (``srun --ntasks-per-node 1``) starts ``procs_per_node`` training
processes; they meet through torchrun's c10d rendezvous on the first node of the job. The
script only calls our own command with shell-quoted arguments (no Python code inside); it is
written through :class:`rho_data.jobscript.JobScript`, which refuses a control character (a
newline would start a new line of shell) in any value, naming the setting it came from.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from rho_data.jobscript import JobScript, refuse_control_characters, sbatch
from rho_data.yaml_input import short_repr

from .errors import RhoModelError


@dataclass
class JobSpec:
    """Resources of the job and the ``rho-train train`` arguments it runs."""

    dataset: Path
    out: Path
    config_files: list[Path] = field(default_factory=list)  # -c/--config settings files, in order
    overrides: list[str] = field(default_factory=list)
    restart: bool = False
    init: Path | None = None
    device: str | None = None
    nodes: int = 1
    procs_per_node: int = 1
    cpus_per_proc: int = 1
    time: str = "01:00:00"
    partition: str | None = None
    gpus_per_node: int = 0
    job_name: str = "rho-train"
    port: int = 29500
    sbatch_args: list[str] = field(default_factory=list)
    overwrite: bool = False
    net: Path | None = None


def torchrun_command() -> str:
    """torchrun of this Python environment (falls back to ``torchrun`` on PATH)."""
    local = Path(sys.executable).parent / "torchrun"
    return str(local) if local.exists() else "torchrun"


def train_arguments(spec: JobSpec) -> list[tuple[str, str]]:
    """``-m rho_model.cli train ...`` with absolute paths (the job may start elsewhere), each word with
    the setting it came from (named in the error when it holds a control character)."""
    args = [
        ("-m", "command"),
        ("rho_model.cli", "command"),
        ("train", "command"),
        (str(spec.dataset.resolve()), "the dataset path"),
        ("-o", "command"),
        (str(spec.out.resolve()), "the run folder (-o)"),
    ]
    for i, path in enumerate(spec.config_files):
        args += [("-c", "command"), (str(Path(path).resolve()), f"--config[{i}]")]
    for i, text in enumerate(spec.overrides):
        args += [("--set", "command"), (text, f"--set[{i}]")]
    if spec.restart:
        args.append(("--restart", "command"))
    if spec.overwrite:
        args.append(("--overwrite", "command"))
    if spec.init is not None:
        args += [("--init", "command"), (str(spec.init.resolve()), "--init")]
    if spec.net is not None:
        args += [("--net", "command"), (str(spec.net.resolve()), "--net")]
    if spec.device is not None:
        args += [("--device", "command"), (spec.device, "--device")]
    return args


def _quoted(value: object, setting: str) -> str:
    return shlex.quote(refuse_control_characters(value, setting))


def job(spec: JobSpec) -> JobScript:
    """The sbatch script: every value checked for control characters (the setting named) and shell-quoted."""
    for name in ("nodes", "procs_per_node", "cpus_per_proc"):
        value = getattr(spec, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise RhoModelError(f"submit: --{name.replace('_', '-')} must be an integer >= 1, got {short_repr(value)}")
    if isinstance(spec.gpus_per_node, bool) or not isinstance(spec.gpus_per_node, int) or spec.gpus_per_node < 0:
        raise RhoModelError(f"submit: --gpus-per-node must be an integer >= 0, got {short_repr(spec.gpus_per_node)}")
    if isinstance(spec.port, bool) or not isinstance(spec.port, int) or not 1 <= spec.port <= 65535:
        raise RhoModelError(f"submit: --port must be an integer in 1..65535, got {short_repr(spec.port)}")
    out = spec.out.resolve()
    script = JobScript()
    script.directive("--job-name", _quoted(spec.job_name, "the job name"), setting="the job name")
    script.directive("--nodes", spec.nodes, setting="--nodes")
    script.directive("--ntasks-per-node", 1)
    script.directive("--cpus-per-task", spec.procs_per_node * spec.cpus_per_proc, setting="--cpus-per-proc")
    script.directive("--time", _quoted(spec.time, "--time"), setting="--time")
    script.directive("--output", _quoted(str(out / "slurm-%j.out"), "the run folder (-o)"), setting="the run folder (-o)")
    script.directive("--chdir", _quoted(str(out), "the run folder (-o)"), setting="the run folder (-o)")
    if spec.partition:
        script.directive("--partition", _quoted(spec.partition, "--partition"), setting="--partition")
    if spec.gpus_per_node:
        script.directive("--gpus-per-node", spec.gpus_per_node, setting="--gpus-per-node")
    for i, arg in enumerate(spec.sbatch_args):
        script.directive(_quoted(arg, f"--sbatch-arg[{i}]"), setting=f"--sbatch-arg[{i}]")
    launch = (
        f'srun --ntasks-per-node=1 {_quoted(torchrun_command(), "torchrun")} --nnodes "$SLURM_NNODES" '
        f'--nproc_per_node {spec.procs_per_node} --rdzv_id "$SLURM_JOB_ID" --rdzv_backend c10d '
        f'--rdzv_endpoint "$head_node:{spec.port}" '
    )
    script.command("set -euo pipefail")
    script.command(f"export OMP_NUM_THREADS={spec.cpus_per_proc}")
    script.command('head_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)')
    script.command(launch + " ".join(_quoted(word, setting) for word, setting in train_arguments(spec)), setting="the srun line")
    return script


def job_script(spec: JobSpec) -> str:
    """The sbatch script text."""
    return job(spec).text()


def write_job(spec: JobSpec) -> Path:
    """Write ``OUT/train.sbatch`` (checked before the run folder is created; atomic, mode 750)."""
    script = job(spec)
    script.text()  # refuse control characters before anything is created
    refuse_control_characters(str(spec.out), "the run folder (-o)")
    spec.out.mkdir(parents=True, exist_ok=True)
    return script.write(spec.out / "train.sbatch")


def submit(script: Path, *, wait: bool = False) -> str:
    """``sbatch --parsable [--wait] script``; returns the job id. With ``wait`` sbatch blocks until
    the job ends and a failed job is an error."""
    if shutil.which("sbatch") is None:
        raise RhoModelError(f"{script}: sbatch not found on PATH; submit it on a SLURM login node with 'sbatch {script}'")
    try:
        return sbatch((["--wait"] if wait else []) + [str(script)], error=RhoModelError)
    except RhoModelError as err:
        raise RhoModelError(f"{script}: the job {'failed' if wait else 'was not submitted'}: {err}") from None
