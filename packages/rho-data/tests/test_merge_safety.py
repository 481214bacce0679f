"""rho-data merge never loses or corrupts an output: concurrent merges, killed merges, bad locations."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import assert_same_structure

from rho_data import Provenance, create_dataset, open_dataset

#: Runs ``rho-data merge`` with RhoWriter.append paused until the file RELEASE exists (or
#: killing the process) after the given number of structures, printing "appending" when it
#: first appends.
MERGE_WITH_HOOK = """
import os, signal, sys, time
from rho_data import writer
from rho_data.cli import app

mode, after, release = sys.argv[1], int(sys.argv[2]), sys.argv[3]
original = writer.RhoWriter.append
calls = []

def append(self, structure):
    calls.append(1)
    if len(calls) == 1:
        print("appending", flush=True)
    if len(calls) > after:
        if mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        while not os.path.exists(release):
            time.sleep(0.05)
    return original(self, structure)

writer.RhoWriter.append = append
sys.argv = ["rho-data", "merge", *sys.argv[4:]]
app()
"""


def merge_cli(*args):
    return subprocess.run([sys.executable, "-m", "rho_data.cli", "merge", *map(str, args)], capture_output=True, text=True)


def hooked_merge(mode: str, after: int, release: Path, *args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", MERGE_WITH_HOOK, mode, str(after), str(release), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def error_line(result) -> str:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and "merging" not in line]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def parts(tmp_path, basis, structures) -> list[Path]:
    out = []
    for k in range(2):
        path = tmp_path / f"part{k}.h5"
        with create_dataset(path, basis, Provenance(producer="test", functional="PBE")) as w:
            for s in structures[k::2]:
                w.append(s)
        out.append(path)
    return out


def check_complete(path: Path, structures) -> None:
    with open_dataset(path) as f:
        order = structures[0::2] + structures[1::2]
        assert len(f) == len(order)
        for a, b in zip(order, f):
            assert_same_structure(a, b)


def test_two_concurrent_merges_into_one_output(tmp_path, parts, structures):
    merged = tmp_path / "merged.h5"
    release = tmp_path / "release"
    first = hooked_merge("pause", 1, release, merged, *parts)  # holds the output until released
    try:
        assert first.stdout.readline().strip() == "appending"
        second = merge_cli(merged, *parts)
        assert "another process is writing this merged file" in error_line(second)
        second_overwrite = merge_cli(merged, *parts, "--overwrite")
        assert "another process is writing this merged file" in error_line(second_overwrite)
        assert not merged.exists()
        release.touch()
        _, err = first.communicate(timeout=60)
    finally:
        first.kill()
        first.wait()
        first.stdout.close()
        first.stderr.close()
    assert first.returncode == 0, err
    check_complete(merged, structures)
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_killed_merge_leaves_the_old_output_intact_and_the_rerun_completes(tmp_path, parts, structures):
    merged = tmp_path / "merged.h5"
    assert merge_cli(merged, parts[0]).returncode == 0
    old = merged.read_bytes()
    killed = hooked_merge("kill", 2, tmp_path / "release", merged, *parts, "--overwrite")
    killed.communicate(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    assert merged.read_bytes() == old  # untouched: the new content went to a temporary file
    assert len(list(tmp_path.glob(".merged.h5.*.tmp"))) == 1  # the killed run's temporary file
    rerun = merge_cli(merged, *parts, "--overwrite")
    assert rerun.returncode == 0, rerun.stderr
    check_complete(merged, structures)
    assert not list(tmp_path.glob(".*.tmp"))  # the stale temporary was removed


def test_a_failing_merge_leaves_the_old_output_intact(tmp_path, parts, basis, structures):
    merged = tmp_path / "merged.h5"
    assert merge_cli(merged, parts[0]).returncode == 0
    old = merged.read_bytes()
    other = tmp_path / "other.h5"
    with create_dataset(other, basis, Provenance(producer="test", functional="B3LYP")) as w:
        w.append(structures[0])
    assert "functional 'PBE' vs 'B3LYP'" in error_line(merge_cli(merged, parts[0], other, "--overwrite"))
    assert merged.read_bytes() == old and not list(tmp_path.glob(".*.tmp"))


def test_merge_into_a_missing_or_read_only_directory_is_one_line(tmp_path, parts):
    line = error_line(merge_cli(tmp_path / "missing" / "merged.h5", *parts))
    assert "merged.h5" in line and "does not exist" in line
    if os.geteuid() != 0:
        pytest.skip("a read-only directory needs a read-only mount (root)")
    folder = tmp_path / "ro"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M,ro", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a read-only tmpfs here")
    try:
        line = error_line(merge_cli(folder / "merged.h5", *parts))
        assert str(folder / "merged.h5") in line and "not writable" in line
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)
