"""`rho-train submit`: the generated sbatch script, and a real 2-process run through SLURM."""

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rho_model.slurm import JobSpec, job_script

REPO_ROOT = Path(__file__).resolve().parents[3]
SHARED = REPO_ROOT.parent / "shared"


def test_job_script_quotes_arguments(tmp_path):
    odd = tmp_path / "data dir" / "it's.h5"
    spec = JobSpec(odd, tmp_path / "run", overrides=["training.freeze=['head.l0_*']"], nodes=2, procs_per_node=3)
    text = job_script(spec)
    assert "#SBATCH --nodes=2" in text and "#SBATCH --cpus-per-task=3" in text
    subprocess.run(["bash", "-n"], input=text, text=True, check=True)  # valid shell
    line = next(ln for ln in text.splitlines() if ln.startswith("srun "))
    words = shlex.split(line)
    assert words[words.index("--nproc_per_node") + 1] == "3"
    train = words[words.index("-m") :]
    assert train[:4] == ["-m", "rho_model.cli", "train", str(odd.resolve())]
    assert train[train.index("--set") + 1] == "training.freeze=['head.l0_*']"


def _slurm_env() -> dict:
    if os.geteuid() != 0:
        pytest.skip("starting the local SLURM cluster needs root")
    up = SHARED / "slurm" / "up.sh"
    if not up.exists():
        pytest.skip(f"{up} not found")
    try:
        result = subprocess.run(["bash", str(up)], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        pytest.skip("SLURM did not start within 300 s")
    if result.returncode != 0:
        pytest.skip(f"SLURM could not be started: {result.stderr.strip().splitlines()[-1:]}")
    return {**os.environ, "SLURM_CONF": "/tmp/local-slurm/etc/slurm.conf"}


@pytest.mark.slow
def test_two_process_training_through_sbatch(water_dataset, tmp_path):
    from helpers import SMALL_DESCRIPTOR

    env = _slurm_env()
    opts = tmp_path / "opts.yaml"
    opts.write_text(
        yaml.safe_dump(
            {
                "descriptor": dict(SMALL_DESCRIPTOR, cache_dir=str(tmp_path / "cache")),
                "model": {"type": "deep", "layers": [{"linear": 6}, {"activation": "silu"}]},
                "fit": {"method": "gradient"},
                "training": {"epochs": 2, "batch_size": 4, "checkpoint_every": 1},
                "data": {"fractions": [0.75, 0.25, 0.0]},
            }
        )
    )
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "rho_model.cli",
        "submit",
        str(water_dataset),
        "-o",
        str(run),
        "-c",
        str(opts),
        "--procs-per-node",
        "2",
        "--time",
        "00:10:00",
        "--port",
        "29517",
        "--wait",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    logs = "".join(p.read_text() for p in run.glob("slurm-*.out"))
    assert result.returncode == 0, result.stdout + result.stderr + logs
    assert (run / "model.pt").exists() and (run / "checkpoints/epoch_000002.pt").exists()
    log = (run / "log.txt").read_text()
    assert "data parallel: 2 processes (gloo)" in log and "epoch 2 train_loss" in log
    assert "torchrun" in (run / "train.sbatch").read_text()
