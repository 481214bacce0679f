"""rho_data.atomic: unique temporaries, atomic publication, locks, and one-line system errors."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from rho_data import RhoDataError
from rho_data.atomic import (
    DiskFullError,
    atomic_output,
    check_output_location,
    disk_full,
    exclusive_lock,
    publish,
    remove_stale_temporaries,
    replace_quickly,
    temporary_path,
    write_bytes_atomic,
    write_text_atomic,
)


def temporaries(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.tmp"))


@contextlib.contextmanager
def mounted_tmpfs(size: str = "1M", read_only: bool = False):
    """A fresh tmpfs (root only); skips the test where mounting is not allowed."""
    folder = Path(tempfile.mkdtemp(prefix="rho-tmpfs-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True, text=True)
    if mounted.returncode != 0:
        folder.rmdir()
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True, capture_output=True)
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)
        folder.rmdir()


def test_temporary_names_are_unique_and_beside_the_output(tmp_path):
    out = tmp_path / "out.h5"
    names = {temporary_path(out) for _ in range(200)}
    assert len(names) == 200
    for name in names:
        assert name.parent == tmp_path and name.name.startswith(f".out.h5.{os.getpid()}.") and name.name.endswith(".tmp")


def test_success_publishes_and_leaves_no_temporary(tmp_path):
    out = tmp_path / "out.txt"
    with atomic_output(out) as tmp:
        tmp.write_text("new")
        assert not out.exists()  # nothing visible before the end
    assert out.read_text() == "new" and temporaries(tmp_path) == []


def test_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    out = tmp_path / "out.txt"
    out.write_text("old")
    with pytest.raises(ZeroDivisionError):
        with atomic_output(out, overwrite=True) as tmp:
            tmp.write_text("half")
            raise ZeroDivisionError
    assert out.read_text() == "old" and temporaries(tmp_path) == []
    with pytest.raises(RhoDataError, match="cannot write the output"):
        with atomic_output(out, overwrite=True) as tmp:
            tmp.write_text("half")
            raise PermissionError(13, "Permission denied", str(tmp))
    assert out.read_text() == "old" and temporaries(tmp_path) == []


def test_existing_output_is_refused_without_overwrite(tmp_path):
    out = tmp_path / "out.txt"
    out.write_text("old")
    with pytest.raises(RhoDataError, match="already exists"):
        with atomic_output(out):
            pass
    write_text_atomic(out, "new")  # replaces by default
    assert out.read_text() == "new"
    with pytest.raises(RhoDataError, match="already exists"):
        write_bytes_atomic(out, b"x", overwrite=False)


def test_publish_refuses_a_file_created_meanwhile(tmp_path):
    out = tmp_path / "out.txt"
    with pytest.raises(RhoDataError, match="another process meanwhile"):
        with atomic_output(out) as tmp:
            tmp.write_text("mine")
            out.write_text("theirs")  # another process finished first
    assert out.read_text() == "theirs" and temporaries(tmp_path) == []
    tmp = temporary_path(out)
    tmp.write_text("mine")
    publish(tmp, out, overwrite=True)
    assert out.read_text() == "mine" and not tmp.exists()


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    out = tmp_path / "out[1].txt"  # glob characters in the name
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = out.with_name(f".{out.name}.{dead_pid}.abcdef012345.tmp")
    stale.write_text("left by a killed run")
    live = out.with_name(f".{out.name}.{os.getpid()}.abcdef012345.tmp")
    live.write_text("a writer of this process")
    other = tmp_path / f".other.txt.{dead_pid}.abcdef012345.tmp"
    other.write_text("another output's")
    assert remove_stale_temporaries(out) == [stale]
    assert live.exists() and other.exists()
    stale.write_text("left again")
    with atomic_output(out) as tmp:  # a stale temporary never blocks the rerun
        tmp.write_text("done")
    assert out.read_text() == "done" and not stale.exists() and live.exists()


def test_temporaries_of_another_host_are_kept(tmp_path):
    """A directory shared between cluster nodes: only the node that wrote a temporary file can
    tell whether its writer still runs, so another node's file is never removed."""
    out = tmp_path / "out.h5"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    ours = temporary_path(out).name.split(".")
    assert ours[-4] == str(os.getpid())  # .out.h5.<pid>.<host>.<random>.tmp
    foreign = out.with_name(f".{out.name}.{dead_pid}.another-node.abcdef012345.tmp")
    foreign.write_text("a writer on another node")
    local = out.with_name(f".{out.name}.{dead_pid}.{ours[-3]}.abcdef012345.tmp")
    local.write_text("left by a killed run here")
    assert remove_stale_temporaries(out) == [local]
    assert foreign.exists()


LOCK_HOLDER = """
import sys, time
from rho_data.atomic import exclusive_lock
with exclusive_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_exclusive_lock_refuses_a_second_holder_and_is_freed_when_its_holder_dies(tmp_path):
    out = tmp_path / "out.h5"
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RhoDataError, match="another process is writing this merged file"):
            with exclusive_lock(out, what="merged file"):
                pass
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    with exclusive_lock(out):  # the operating system dropped the dead holder's lock
        pass


def test_check_output_location(tmp_path):
    with pytest.raises(RhoDataError, match="does not exist"):
        check_output_location(tmp_path / "missing" / "out.h5", what="merged file")
    with pytest.raises(RhoDataError, match="is a directory"):
        check_output_location(tmp_path)
    (tmp_path / "out.h5").write_text("x")
    with pytest.raises(RhoDataError, match="already exists"):
        check_output_location(tmp_path / "out.h5")
    assert check_output_location(tmp_path / "out.h5", overwrite=True) == tmp_path / "out.h5"


def test_check_output_location_refuses_a_read_only_directory():
    with mounted_tmpfs(read_only=True) as folder:
        with pytest.raises(RhoDataError, match="not writable") as caught:
            check_output_location(folder / "out.h5", what="merged file")
        assert str(folder / "out.h5") in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("write", [write_bytes_atomic, replace_quickly])
def test_a_full_disk_is_one_line_and_keeps_the_old_file(write):
    with mounted_tmpfs("1M") as folder:
        out = folder / "out.bin"
        out.write_bytes(b"old")
        with pytest.raises(RhoDataError) as caught:
            write(out, b"x" * (4 << 20), what="results")
        message = str(caught.value)
        hint = "the disk is full; free some space and run the command again (finished work is kept)"
        assert message == f"{out}: cannot write the results: {hint}"
        assert out.read_bytes() == b"old" and temporaries(folder) == []
        assert isinstance(caught.value, DiskFullError)


def test_disk_full_recognises_wrapped_errors():
    assert disk_full(OSError(28, "No space left on device"))
    assert disk_full(OSError("Can't write data (file write failed: errno = 28, error message = 'No space left on device')"))
    try:
        try:
            raise OSError(28, "No space left on device")
        except OSError as inner:
            raise RuntimeError("writing failed") from inner
    except RuntimeError as outer:
        assert disk_full(outer)
    assert not disk_full(ValueError("bad value"))


def test_replace_quickly_replaces_and_leaves_no_temporary(tmp_path):
    out = tmp_path / "state.json"
    replace_quickly(out, b"first")
    replace_quickly(out, b"second")
    assert out.read_bytes() == b"second" and temporaries(tmp_path) == []


def test_replace_quickly_does_not_scan_for_stale_temporaries(tmp_path):
    out = tmp_path / "state.json"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".state.json.{int(dead.stdout)}.abcdef123456.tmp"
    stale.write_bytes(b"left by a killed run")
    replace_quickly(out, b"new")
    assert stale.exists() and out.read_bytes() == b"new"


def test_replace_quickly_names_the_output_in_one_line(tmp_path):
    with pytest.raises(RhoDataError, match="the directory does not exist") as caught:
        replace_quickly(tmp_path / "no-such-dir" / "state.json", b"x", what="state file")
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'no-such-dir' / 'state.json'}: cannot write the state file")
    assert "\n" not in message and ".tmp" not in message
