"""Shared test helpers: where the real FHI-aims data is, and the stand-in for aims.x."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
SHARED = REPO_ROOT.parent / "shared"
FIXTURES = SHARED / "fixtures" / "fhi-aims"
CH4 = FIXTURES / "qm7-0-CH4"
H4_AIMS_OUT = FIXTURES / "aims-out-h4" / "aims.out"
STANDIN = Path(__file__).resolve().parent / "standin" / "aims_standin.py"
SQUARED_ERROR_FHI_AIMS = 0.2185265651976613  # FHI-aims grid integral of (rho_ML - rho_RI)^2 (fixture README)


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared test data not found: {path}")
    return path


@pytest.fixture
def ch4() -> Path:
    return need(CH4)


def standin_command() -> str:
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(STANDIN))}"


@pytest.fixture
def standin_env(monkeypatch, ch4):
    monkeypatch.setenv("AIMS_STANDIN_DATA", str(ch4))
    for knob in ("AIMS_STANDIN_SLEEP", "AIMS_STANDIN_VERSION", "AIMS_STANDIN_SHUFFLE", "AIMS_STANDIN_LEGACY_FILES"):
        monkeypatch.delenv(knob, raising=False)
    return ch4


def settings_for(tmp: Path, **hpc) -> dict:
    from aims_io.settings import load_settings

    overrides = [f"dft.species_defaults={need(FIXTURES / 'species_defaults' / 'tight')}", f"hpc.aims_command={standin_command()}"]
    overrides += [f"hpc.{k}={v}" for k, v in hpc.items()]
    return load_settings([], overrides)


def make_ri_run(run_dir: Path, data: Path, env: dict | None = None) -> Path:
    """A finished RI-fit run directory written by the stand-in from the recorded CH4 run."""
    from aims_io.control import write_control
    from aims_io.geometry import read_geometry, write_geometry

    run_dir.mkdir(parents=True, exist_ok=True)
    geometry = read_geometry(data / "geometry.in")
    write_geometry(geometry, run_dir / "geometry.in")
    settings = settings_for(run_dir)
    write_control(run_dir / "control.in", "ri", settings["dft"], geometry)
    (run_dir / "D_spin_01_kpt_000001.csc").write_text("placeholder\n")
    full_env = {**__import__("os").environ, "AIMS_STANDIN_DATA": str(data), **(env or {})}
    with open(run_dir / "aims.out", "w") as out:
        subprocess.run([sys.executable, str(STANDIN)], cwd=run_dir, stdout=out, env=full_env, check=True)
    return run_dir


@pytest.fixture(scope="session")
def ch4_ri_tree(tmp_path_factory) -> Path:
    """<tmp>/ri/000000: one finished RI-fit run of CH4 (recorded outputs)."""
    data = need(CH4)
    root = tmp_path_factory.mktemp("ch4") / "ri"
    make_ri_run(root / "000000", data)
    return root


@pytest.fixture(scope="session")
def ch4_dataset(ch4_ri_tree, tmp_path_factory) -> Path:
    from aims_io.importer import import_tree

    out = tmp_path_factory.mktemp("ds") / "ch4.h5"
    report = import_tree(ch4_ri_tree, out)
    assert report.failed == [] and report.imported == ["000000"]
    return out


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


@pytest.fixture
def fake_sbatch(tmp_path, monkeypatch):
    """An `sbatch` on PATH that records its arguments and prints a job id (no cluster needed)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "sbatch-calls.jsonl"
    sbatch = bin_dir / "sbatch"
    sbatch.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\nprint('4242;cluster')\n"
    )
    sbatch.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("SLURM_CONF", raising=False)
    return log
