"""SLURM: the generated scripts, and a real single-node cluster started by the test run
(../shared/slurm/up.sh relative to the repository root; skipped where it cannot start)."""

import os
import shlex
import shutil
import subprocess
import sys
import time

import pytest
from conftest import MOLECULES, REPO_ROOT, write_xyz
from typer.testing import CliRunner

from pyscf_io.cli import app
from pyscf_io.config import load_settings
from pyscf_io.geometry import read_structures
from pyscf_io.slurm import write_scripts
from pyscf_io.workdir import WorkDir
from rho_data import open_dataset

runner = CliRunner()
FAST = {"basis": "sto-3g", "aux_basis": "def2-universal-jkfit", "grid_level": 1}


def test_scripts_quote_arguments_and_use_this_python(tmp_path, organics_xyz):
    settings = load_settings(
        overrides={
            **FAST,
            "slurm.partition": "short",
            "slurm.account": "chem",
            "slurm.setup": ["module load x"],
            "slurm.max_concurrent": 2,
        }
    )
    structures, _ = read_structures(organics_xyz)
    wd = WorkDir.prepare(tmp_path / "a dir; rm -rf x", settings, structures, [], tmp_path / "o.h5")
    array, merge = write_scripts(wd, settings, [[0, 1], [2, 3], [4]], 1)
    text = array.read_text()
    assert "#SBATCH --array=0-2%2" in text and "#SBATCH --partition=short" in text and "#SBATCH --account=chem" in text
    assert "module load x" in text
    command = text.strip().splitlines()[-1]
    words = shlex.split(command.replace('"$SLURM_ARRAY_TASK_ID"', "7"))
    assert words[:4] == [sys.executable, "-m", "pyscf_io", "run-task"]
    assert words[4] == str(wd.path) and words[-2:] == ["--task-id", "7"]
    assert shlex.split(merge.read_text().strip().splitlines()[-1])[-2:] == ["merge", str(wd.path)]


@pytest.fixture(scope="module")
def slurm_cluster():
    up = REPO_ROOT.parent / "shared" / "slurm" / "up.sh"
    if not up.exists():
        pytest.skip(f"no SLURM starter at {up}")
    if os.geteuid() != 0:
        pytest.skip("starting the local SLURM cluster needs root")
    if shutil.which("sbatch") is None and shutil.which("apt-get") is None:
        pytest.skip("SLURM is not installed and apt-get is not available to install it")
    done = subprocess.run(["bash", str(up)], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"up.sh failed:\n{done.stderr[-3000:]}"
    base = os.environ.get("SLURM_BASE", "/tmp/local-slurm")
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = f"{base}/etc/slurm.conf"
    yield
    if old is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = old


@pytest.mark.slow
def test_job_array_on_a_real_cluster(tmp_path, slurm_cluster):
    frames = [(name, MOLECULES[name]) for name in ("water", "methane", "ammonia")]
    frames.insert(1, ("oh", [("O", 0.0, 0.0, 0.0), ("H", 0.0, 0.0, 0.97)]))  # fails: odd electrons, spin 0
    geometry = write_xyz(tmp_path / "mols.xyz", frames)
    out = tmp_path / "out dir" / "data.h5"
    out.parent.mkdir()
    workdir = tmp_path / "work dir"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("basis: sto-3g\naux_basis: def2-universal-jkfit\ngrid_level: 1\n")
    args = [
        "submit",
        str(geometry),
        "-o",
        str(out),
        "--workdir",
        str(workdir),
        "--structures-per-task",
        "2",
        "--time",
        "00:05:00",
        "--config",
        str(cfg),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "submitted array job" in result.output
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not out.exists():
        time.sleep(1.0)
    assert out.exists(), (workdir / "slurm" / "logs").exists() and [p.read_text() for p in (workdir / "slurm" / "logs").iterdir()]
    with open_dataset(out) as ds:
        assert ds.labels() == ["water", "methane", "ammonia"]
    status = runner.invoke(app, ["status", str(workdir)])
    text = " ".join(status.output.split())
    assert "done │ 3" in text and "failed │ 1" in text and "9 electrons cannot have spin" in text
    assert "submission 1: array job" in text
    # everything finished: a second submit submits nothing and merges
    again = runner.invoke(app, args)
    assert again.exit_code == 1 and "every structure" in again.output  # exit 1: one structure failed
