"""A writer killed with SIGKILL at any moment keeps every committed structure, exactly."""

import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_same_structure
from writer_process import structure

from rho_data import RhoDataError, RhoWriter, open_dataset

HERE = Path(__file__).parent


def start_writer(path: Path, resume: bool = False) -> subprocess.Popen:
    args = [sys.executable, str(HERE / "writer_process.py"), str(path)] + (["--resume"] if resume else [])
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True, cwd=HERE)


def kill_after(process: subprocess.Popen, seconds: float) -> int:
    """Once the writer has committed a structure, SIGKILL it ``seconds`` later.

    Returns the number of commits it reported.
    """
    first = process.stdout.readline()
    if not first:
        process.communicate()
        raise RuntimeError(f"the writer exited before its first commit (code {process.returncode}); see its stderr above")
    time.sleep(seconds)
    process.send_signal(signal.SIGKILL)
    out, _ = process.communicate()
    return 1 + len(out.split())


def check(path: Path, reported: int) -> int:
    with open_dataset(path) as f:
        n = len(f)
        # every reported commit is there; at most the one in flight beyond it
        assert reported <= n <= reported + 1
        for i in range(n):
            assert_same_structure(f[i], structure(i))
        return n


def run_kills(tmp_path: Path, trials: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    path = tmp_path / "crash.h5"
    total = 0
    for trial in range(trials):
        writer = start_writer(path, resume=trial > 0)
        reported = kill_after(writer, rng.uniform(0.0, 0.3))
        total = check(path, total + reported)
    # the file is still appendable and readable afterwards
    with RhoWriter(path) as w:
        w.append(structure(len(w)))
    check(path, total + 1)


def test_sigkill_keeps_committed_structures(tmp_path):
    run_kills(tmp_path, trials=3, seed=0)


@pytest.mark.slow
def test_sigkill_many_times(tmp_path):
    run_kills(tmp_path, trials=30, seed=1)


def set_stored_eoa(path: Path, eoa: int) -> None:
    """Overwrite the end-of-allocation address of a version-3 superblock (8-byte offsets)."""
    from rho_data._superblock import lookup3

    with open(path, "r+b") as handle:
        body = bytearray(handle.read(44))
        assert body[9] == 8, "the test assumes 8-byte file offsets"
        body[28:36] = eoa.to_bytes(8, "little")
        handle.seek(0)
        handle.write(bytes(body) + struct.pack("<I", lookup3(bytes(body))))


def test_stale_end_of_allocation_is_repaired(tmp_path):
    """A killed SWMR writer can leave chunks past the EOA stored in the superblock.

    Here the stored EOA is moved to the middle of the file by hand: a new writer that trusted it
    would allocate over committed data (or fail with "addr overflow", as seen in CI). Reopening
    for writing must move the EOA past the end of the file and keep every committed structure.
    """
    path = tmp_path / "stale.h5"
    writer = start_writer(path)
    for _ in range(3):
        assert writer.stdout.readline(), "the writer did not commit"
    writer.send_signal(signal.SIGKILL)
    out, _ = writer.communicate()
    n = check(path, 3 + len(out.split()))
    size = path.stat().st_size
    set_stored_eoa(path, size // 2)
    with RhoWriter(path) as w:
        w.append(structure(n))
        w.append(structure(n + 1))
    check(path, n + 2)


def test_second_writer_is_refused(tmp_path):
    path = tmp_path / "busy.h5"
    writer = start_writer(path)
    try:
        assert writer.stdout.readline(), "the writer did not start"
        with pytest.raises(RhoDataError, match="another writer"):
            RhoWriter(path)
    finally:
        writer.kill()
        writer.communicate()


KILLED_WHILE_OPENING = """
import os, signal, sys
import h5py
h5 = h5py.File(sys.argv[1], "r+", libver="latest", locking=False)  # as RhoWriter opens it, before SWMR is on
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_writer_killed_before_swmr_is_on_loses_nothing(tmp_path):
    """Killed between opening the file for writing and switching to SWMR, a writer leaves the
    flag "open for writing" without the SWMR bit, which no reader (SWMR or not) can open. The
    committed structures are intact: readers repair the flags under the writer lock and read
    them, and the next writer appends."""
    path = tmp_path / "opened.h5"
    writer = start_writer(path)
    n = check(path, kill_after(writer, 0.05))
    RhoWriter(path).close()  # repairs the SWMR writer's crash; the flags are clear again
    done = subprocess.run([sys.executable, "-c", KILLED_WHILE_OPENING, str(path)])
    assert done.returncode == -signal.SIGKILL
    with open(path, "rb") as handle:
        assert handle.read(12)[11] == 0x01  # open for writing, not SWMR
    assert check(path, n) == n
    with RhoWriter(path) as w:
        w.append(structure(n))
    assert check(path, n + 1) == n + 1
