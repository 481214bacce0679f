"""The command line: options, bad input, resume after a kill, output safety."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import yaml
from conftest import MOLECULES, jiggled_waters, write_xyz
from typer.testing import CliRunner

from pyscf_io import __version__
from pyscf_io.cli import app
from pyscf_io.config import DEFAULTS
from rho_data import open_dataset

runner = CliRunner()
FAST_ARGS = ["--basis", "sto-3g", "--aux-basis", "def2-universal-jkfit", "--grid-level", "1", "-q"]


def test_version_and_options():
    assert __version__ in runner.invoke(app, ["--version"]).output
    result = runner.invoke(app, ["options"])
    assert result.exit_code == 0
    assert yaml.safe_load(result.output) == DEFAULTS


def test_run_writes_dataset_in_input_order(tmp_path, organics_xyz):
    out = tmp_path / "data.h5"
    result = runner.invoke(app, ["run", str(organics_xyz), "-o", str(out), "--index", "1:4", *FAST_ARGS])
    assert result.exit_code == 0, result.output
    with open_dataset(out) as ds:
        assert ds.labels() == ["methane", "ammonia", "formaldehyde"]
        assert ds.provenance.producer == "pyscf-io" and ds.provenance.ao_basis == "sto-3g"
        assert list(ds.metadata_column("input_index")) == [0, 1, 2]
        assert (ds.metadata_column("scf_converged") == 1).all()
    assert yaml.safe_load((tmp_path / "data.h5.settings.yaml").read_text())["basis"] == "sto-3g"
    again = runner.invoke(app, ["run", str(organics_xyz), "-o", str(out), "--index", "1:4", *FAST_ARGS])
    assert again.exit_code == 0 and "3 structures already finished" in again.output
    other = runner.invoke(app, ["run", str(organics_xyz), "-o", str(out), "--index", "1:4", *FAST_ARGS, "--xc", "LDA"])
    assert other.exit_code == 1 and "other settings (xc)" in other.output


def test_bad_input_is_named_and_the_rest_finishes(tmp_path):
    good = write_xyz(
        tmp_path / "good.xyz",
        [
            ("water", MOLECULES["water"]),
            ("og", [("Og", 0.0, 0.0, 0.0)]),
            ("oh", [("O", 0.0, 0.0, 0.0), ("H", 0.0, 0.0, 0.97)]),
            ("stacked", [("O", 0.0, 0.0, 0.0), ("O", 0.0, 0.0, 0.0)]),
            ("methane", MOLECULES["methane"]),
        ],
    )
    empty = tmp_path / "empty.xyz"
    empty.write_text("")
    broken = tmp_path / "broken.xyz"
    broken.write_text("3\n\nO 0 0 0\nH 0 0 1\n")
    out = tmp_path / "out.h5"
    result = runner.invoke(app, ["run", str(good), str(empty), str(broken), "-o", str(out), *FAST_ARGS])
    text = " ".join(result.output.split())
    assert result.exit_code == 1
    assert "empty.xyz: the geometry file is empty" in text
    assert "broken.xyz: structure 0: cannot be read" in text
    assert "has no functions for element Og" in text
    assert "9 electrons cannot have spin" in text
    assert "atoms 0 and 1 are 0.000 A apart" in text
    assert "Traceback" not in result.output
    with open_dataset(out) as ds:
        assert ds.labels() == ["water", "methane"]


def test_bad_settings_file_is_one_line_error(tmp_path, organics_xyz):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("functional: PBE\n")
    result = runner.invoke(app, ["run", str(organics_xyz), "-o", str(tmp_path / "x.h5"), "-c", str(cfg)])
    assert result.exit_code == 1 and "unknown setting 'functional'" in result.output
    assert "Traceback" not in result.output


def test_refuses_to_replace_foreign_output(tmp_path, organics_xyz):
    out = tmp_path / "x.h5"
    out.write_text("not mine")
    result = runner.invoke(app, ["run", str(organics_xyz), "-o", str(out), "--index", "0", *FAST_ARGS])
    assert result.exit_code == 1 and "was not written by this run" in result.output
    assert out.read_text() == "not mine"


def test_resume_after_kill(tmp_path):
    geometry = write_xyz(tmp_path / "waters.xyz", jiggled_waters(10))
    out = tmp_path / "w.h5"
    cmd = [sys.executable, "-m", "pyscf_io", "run", str(geometry), "-o", str(out), "--workers", "2", *FAST_ARGS]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = tmp_path / "w.h5.work" / "state"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(state.glob("*.json"))) < 3:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = len(list(state.glob("*.json")))
    assert 3 <= finished < 10, "the run finished before it could be killed"
    assert not out.exists()
    result = runner.invoke(app, ["run", str(geometry), "-o", str(out), *FAST_ARGS])
    assert result.exit_code == 0, result.output
    assert f"{finished} structures already finished" in " ".join(result.output.split())
    with open_dataset(out) as ds:
        assert ds.labels() == [f"water-{k}" for k in range(10)]
        assert list(ds.metadata_column("input_index")) == list(range(10))
        assert np.isfinite(ds.metadata_column("fit_nmae_percent")).all()


def test_repeated_config_and_set_reach_the_settings(tmp_path, organics_xyz):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("basis: sto-3g\n")
    second.write_text("grid_lvl: 1\n")
    args = ["run", str(organics_xyz), "-o", str(tmp_path / "x.h5"), "-c", str(first)]
    result = runner.invoke(app, [*args, "--config", str(second)])
    assert result.exit_code == 1 and f"{second}: unknown setting 'grid_lvl'" in " ".join(result.stderr.split())
    result = runner.invoke(app, [*args, "--set", "grid_level=12"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.strip() == "error: --set 'grid_level=12': setting 'grid_level' must be >= 0 and <= 9, got 12"
    result = runner.invoke(app, ["submit", str(organics_xyz), "-o", str(tmp_path / "x.h5"), "--set", "slurm.mem=[4]"])
    assert result.exit_code == 1 and "setting 'slurm.mem' must be str or null, got [4]" in result.stderr
    assert not (tmp_path / "x.h5.work").exists()  # bad settings: no work directory
