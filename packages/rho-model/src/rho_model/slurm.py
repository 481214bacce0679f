"""SLURM batch scripts for data-parallel training: ``srun torchrun ... -m rho_model.cli train ...``.

One torchrun per node (``srun --ntasks-per-node 1``) starts ``procs_per_node`` training
processes; they meet through torchrun's c10d rendezvous on the first node of the job. The
script only calls our own command with shell-quoted arguments (no Python code inside).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .errors import RhoModelError


@dataclass
class JobSpec:
    """Resources of the job and the ``rho-train train`` arguments it runs."""

    dataset: Path
    out: Path
    options_file: Path | None = None
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


def torchrun_command() -> str:
    """torchrun of this Python environment (falls back to ``torchrun`` on PATH)."""
    local = Path(sys.executable).parent / "torchrun"
    return str(local) if local.exists() else "torchrun"


def train_arguments(spec: JobSpec) -> list[str]:
    """``-m rho_model.cli train ...`` with absolute paths (the job may start elsewhere)."""
    args = ["-m", "rho_model.cli", "train", str(spec.dataset.resolve()), "-o", str(spec.out.resolve())]
    if spec.options_file is not None:
        args += ["--options", str(spec.options_file.resolve())]
    for text in spec.overrides:
        args += ["--set", text]
    if spec.restart:
        args.append("--restart")
    if spec.init is not None:
        args += ["--init", str(spec.init.resolve())]
    if spec.device is not None:
        args += ["--device", spec.device]
    return args


def job_script(spec: JobSpec) -> str:
    """The sbatch script text."""
    if spec.nodes < 1 or spec.procs_per_node < 1 or spec.cpus_per_proc < 1:
        raise RhoModelError(
            f"submit: nodes, procs per node and cpus per process must be >= 1, got "
            f"{spec.nodes}, {spec.procs_per_node}, {spec.cpus_per_proc}"
        )
    q = shlex.quote
    out = spec.out.resolve()
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={q(spec.job_name)}",
        f"#SBATCH --nodes={spec.nodes}",
        "#SBATCH --ntasks-per-node=1",
        f"#SBATCH --cpus-per-task={spec.procs_per_node * spec.cpus_per_proc}",
        f"#SBATCH --time={q(spec.time)}",
        f"#SBATCH --output={q(str(out / 'slurm-%j.out'))}",
        f"#SBATCH --chdir={q(str(out))}",
    ]
    if spec.partition:
        lines.append(f"#SBATCH --partition={q(spec.partition)}")
    if spec.gpus_per_node:
        lines.append(f"#SBATCH --gpus-per-node={spec.gpus_per_node}")
    lines += [f"#SBATCH {q(a)}" for a in spec.sbatch_args]
    launch = (
        f'srun --ntasks-per-node=1 {q(torchrun_command())} --nnodes "$SLURM_NNODES" '
        f'--nproc_per_node {spec.procs_per_node} --rdzv_id "$SLURM_JOB_ID" --rdzv_backend c10d '
        f'--rdzv_endpoint "$head_node:{spec.port}" '
    )
    lines += [
        "set -euo pipefail",
        f"export OMP_NUM_THREADS={spec.cpus_per_proc}",
        'head_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
        launch + " ".join(q(a) for a in train_arguments(spec)),
        "",
    ]
    return "\n".join(lines)


def write_job(spec: JobSpec) -> Path:
    spec.out.mkdir(parents=True, exist_ok=True)
    path = spec.out / "train.sbatch"
    path.write_text(job_script(spec))
    return path


def submit(script: Path, *, wait: bool = False) -> str:
    """``sbatch --parsable [--wait] script``; returns the job id. With ``wait`` sbatch blocks until
    the job ends and a failed job is an error."""
    sbatch = shutil.which("sbatch")
    if sbatch is None:
        raise RhoModelError(f"{script}: sbatch not found on PATH; submit it on a SLURM login node with 'sbatch {script}'")
    cmd = [sbatch, "--parsable"] + (["--wait"] if wait else []) + [str(script)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    job = result.stdout.strip().split(";")[0]
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        raise RhoModelError(f"{script}: job {job or '(not submitted)'} failed: {detail}")
    return job
