"""SLURM job arrays against a real single-node cluster (../shared/slurm/up.sh), with the stand-in.

The cluster is started (idempotently) by this test; it is left running for other users.
"""

import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import CH4, SHARED, standin_command
from test_local_runs import write_structures
from typer.testing import CliRunner

from aims_io.cli import app
from aims_io.layout import JOB_FILE, read_json
from aims_io.settings import dump

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def slurm_cluster():
    up = SHARED / "slurm" / "up.sh"
    if not up.is_file():
        pytest.skip(f"{up} not found")
    if os.geteuid() != 0:
        pytest.skip("starting the test SLURM cluster needs root")
    proc = subprocess.run(["bash", str(up)], check=False, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"up.sh failed: {proc.stderr[-2000:]}")
    conf = os.environ.get("SLURM_BASE", "/tmp/local-slurm") + "/etc/slurm.conf"
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = conf
    assert shutil.which("sbatch")
    yield conf
    if old is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = old


def states(cli, work, stage):
    r = cli.invoke(app, ["status", stage, "-w", str(work), "--json"])
    assert r.exit_code == 0, r.output
    return [line for line in r.output.splitlines() if line.startswith("{")]


def wait_until_done(cli, work, stage, timeout=120):
    """Test helper only: poll `aims-io status` (the library itself never waits)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        lines = states(cli, work, stage)
        if not any('"running"' in x for x in lines):
            return lines
        time.sleep(1.0)
    pytest.fail(f"SLURM runs of {stage} did not finish in {timeout} s")


def test_slurm_array_status_resume(slurm_cluster, tmp_path, standin_env, monkeypatch):
    monkeypatch.setenv("AIMS_STANDIN_SLEEP", "2")
    work = tmp_path / "work with space"  # paths are quoted in the job script
    work.mkdir()
    structures = tmp_path / "s.xyz"
    write_structures(structures, CH4)
    cfg = tmp_path / "user.yaml"
    dump(
        {
            "dft": {"species_defaults": str(CH4.parent / "species_defaults" / "tight")},
            "hpc": {
                "backend": "slurm",
                "aims_command": standin_command(),
                "partition": "debug",
                "time": "00:05:00",
                "setup_lines": ["export AIMS_IO_TEST_SETUP=1"],
            },
        },
        cfg,
    )
    cli = CliRunner()
    assert cli.invoke(app, ["prepare", "scf", str(structures), "-w", str(work), "-c", str(cfg)]).exit_code == 0
    r = cli.invoke(app, ["run", "scf", "-w", str(work)])
    assert r.exit_code == 0, r.output
    assert "submitted SLURM array" in r.output
    job = read_json(work / "scf" / "000000" / JOB_FILE)
    assert job["backend"] == "slurm" and job["job_id"].endswith("_1")
    script = Path(job["script"]).read_text()
    assert "export AIMS_IO_TEST_SETUP=1" in script
    list_file = Path(job["script"]).with_suffix(".list")
    assert shlex.quote(str(list_file.resolve())) in script  # the path with a space is shell-quoted
    # right after submission: nothing is finished yet (each run sleeps 2 s), nothing is failed
    first = states(cli, work, "scf")
    assert not any('"finished"' in x or '"failed"' in x for x in first), first
    # running again while they run submits nothing
    r = cli.invoke(app, ["run", "scf", "-w", str(work)])
    assert "ran 0 runs" in r.output or "submitted" not in r.output
    final = wait_until_done(cli, work, "scf")
    assert sum('"finished"' in x for x in final) == 2 and sum('"failed"' in x for x in final) == 1
    failed = next(x for x in final if '"failed"' in x)
    assert "000001" in failed and "not the recorded one" in failed
    # resume: only the failed run is submitted again (and fails again: its geometry is not recorded)
    monkeypatch.setenv("AIMS_STANDIN_SLEEP", "0")
    mtime = (work / "scf" / "000000" / "aims.out").stat().st_mtime_ns
    r = cli.invoke(app, ["run", "scf", "-w", str(work), "--wait"])
    assert "with 1 runs" in r.output, r.output
    assert (work / "scf" / "000000" / "aims.out").stat().st_mtime_ns == mtime
    # RI fits on SLURM reuse the SCF restart files; --wait blocks in sbatch, then import
    assert cli.invoke(app, ["prepare", "ri", "-w", str(work)]).exit_code == 0
    r = cli.invoke(app, ["run", "ri", "-w", str(work), "--wait"])
    assert r.exit_code == 0, r.output
    assert sum('"finished"' in x for x in states(cli, work, "ri")) == 2
    r = cli.invoke(app, ["import", str(work / "ri"), str(tmp_path / "ds.h5")])
    assert r.exit_code == 0, r.output
