"""A full disk: ``pyscf-io run`` says so in one line (no traceback, no segfault), keeps every finished
structure, leaves no temporary file in the way, and a rerun with room completes every structure.

The disk is a 2 MiB tmpfs (the tests run as root; skipped where mounting is not permitted).
The free-space check before the work is approximate, so the write paths must hold on their own:
the tests that exercise them switch the check off in the child process, as if another process
filled the disk between the check and the write.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import jiggled_waters, write_xyz

from rho_data import open_dataset

FAST_ARGS = ["--basis", "sto-3g", "--aux-basis", "def2-universal-jkfit", "--grid-level", "1", "-q"]
NO_CHECK = """\
import rho_data.atomic as a
a.require_free_space = lambda *args: None
try:
    import pyscf_io.disk as d
    d.require_free_space = a.require_free_space
except ImportError:  # the code before pyscf_io.disk existed
    pass
"""


@pytest.fixture
def small_disk(tmp_path: Path):
    folder = tmp_path / "small"
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2M", "tmpfs", str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"mount is not permitted here: {done.stderr.strip()}")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path, leave_bytes: int) -> Path:
    """A filler file that leaves about ``leave_bytes`` free on the file system of ``folder``."""
    filler = folder / "filler"
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    with open(filler, "wb") as handle:
        handle.write(b"\0" * max(free - leave_bytes, 0))
    return filler


def pyscf_io(args: list, *, check: bool = True) -> subprocess.CompletedProcess:
    code = ("" if check else NO_CHECK) + "import sys\nfrom pyscf_io.cli import app\nsys.argv[0] = 'pyscf-io'\napp()"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, env=env, timeout=600, check=False
    )


def one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)  # not 139 (segfault)
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_too_little_space_is_refused_before_the_work(tmp_path, small_disk):
    geometry = write_xyz(tmp_path / "w.xyz", jiggled_waters(3))
    err = one_line_error(pyscf_io(["run", geometry, "-o", small_disk / "d.h5", *FAST_ARGS]))
    assert "MiB free" in err and "needed" in err
    assert not list((small_disk / "d.h5.work" / "state").glob("*.json"))  # nothing was computed
    done = pyscf_io(["run", geometry, "-o", tmp_path / "d.h5", *FAST_ARGS])  # the output elsewhere
    assert done.returncode == 0, done.stderr
    with open_dataset(tmp_path / "d.h5") as ds:
        assert len(ds) == 3


def test_disk_full_while_merging(tmp_path, small_disk):
    geometry = write_xyz(tmp_path / "w.xyz", jiggled_waters(3))
    out, work = small_disk / "d.h5", tmp_path / "work"
    filler = fill(small_disk, 100_000)
    err = one_line_error(pyscf_io(["run", geometry, "-o", out, "--workdir", work, *FAST_ARGS], check=False))
    assert "disk is full" in err and str(out) in err
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]  # no dataset, no temporary file left
    assert len(list((work / "state").glob("*.json"))) == 3  # the computed structures are kept
    filler.unlink()  # free the space: the rerun merges without computing again
    done = pyscf_io(["run", geometry, "-o", out, "--workdir", work, *FAST_ARGS])
    assert done.returncode == 0, done.stderr
    assert "3 structures already finished" in " ".join(done.stdout.split())
    with open_dataset(out) as ds:
        assert ds.labels() == [f"water-{k}" for k in range(3)]


@pytest.mark.parametrize("workers", [1, 2])
def test_disk_full_in_the_workers(tmp_path, small_disk, workers):
    geometry = write_xyz(tmp_path / "w.xyz", jiggled_waters(4))
    out, work = tmp_path / "d.h5", small_disk / "work"
    filler = fill(small_disk, 500_000)
    err = one_line_error(pyscf_io(["run", geometry, "-o", out, "--workdir", work, "--workers", workers, *FAST_ARGS], check=False))
    assert "disk is full" in err or "MiB free" in err  # the write failed, or the check in the worker refused
    states = list((work / "state").glob("*.json"))
    assert all('"failed"' not in p.read_text() for p in states)  # a full disk is not a failure of a structure
    filler.unlink()
    done = pyscf_io(["run", geometry, "-o", out, "--workdir", work, *FAST_ARGS])
    assert done.returncode == 0, done.stderr
    with open_dataset(out) as ds:
        assert ds.labels() == [f"water-{k}" for k in range(4)]
