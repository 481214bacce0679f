"""Writing an output so that nothing already written is ever lost.

Every file a rho command writes goes through :func:`atomic_output`: the new content is
written to a temporary file that is unique to the process (``.NAME.<pid>.<random>.tmp`` in
the output's own directory, so the final rename never crosses a file system) and only moved
onto ``NAME`` once it is complete. A failing or killed writer leaves the old output as it was;
its temporary file never blocks a rerun (the next one gets another name, and temporary
files of dead processes are removed). Without ``overwrite`` the final step is a hard link,
which fails if ``NAME`` appeared meanwhile: two writers of one output cannot silently replace
each other's result.

A full disk (``ENOSPC``) or a read-only or missing directory is turned into one
:class:`~rho_data.errors.RhoDataError` line naming the file and what to do (a
:class:`DiskFullError` for a full disk).

:func:`replace_quickly` is the variant for bookkeeping files written by the thousand (no
directory scan, no ``fsync``); every file replacement of the repository goes through this module.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import os
import re
import shutil
import socket
import uuid
from collections.abc import Iterator
from os import PathLike
from pathlib import Path

from .errors import RhoDataError


class DiskFullError(RhoDataError):
    """A write failed for want of space (``ENOSPC``, ``EDQUOT``): finished work is kept."""


#: Hints for the system errors a user can act on.
_HINTS = {
    errno.ENOSPC: "the disk is full; free some space and run the command again (finished work is kept)",
    errno.EDQUOT: "the disk quota is exceeded; free some space and run the command again (finished work is kept)",
    errno.EACCES: "permission denied",
    errno.EROFS: "the file system is read-only",
    errno.ENOENT: "the directory does not exist",
    errno.ENOTDIR: "a part of the path is not a directory",
    errno.EISDIR: "is a directory",
}


def os_error_message(err: OSError) -> str:
    """One line for a system error: ``"<file>: <what happened>"``."""
    reason = _HINTS.get(err.errno) or err.strerror or str(err).split("\n")[0]
    where = err.filename if err.filename is not None else ""
    return f"{where}: {reason}" if where else reason


def disk_full(err: BaseException) -> bool:
    """True when ``err`` (or an exception it wraps, as HDF5's do) reports a full disk."""
    while err is not None:
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(err) or "Disk quota exceeded" in str(err):
            return True
        err = err.__cause__ or err.__context__
    return False


def _host() -> str:
    """This machine's name in a form that fits one dot-separated part of a file name."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:64] or "host"


def temporary_path(path: str | PathLike) -> Path:
    """A fresh name beside ``path`` that no other process uses: ``.NAME.<pid>.<host>.<random>.tmp``.

    The host is part of the name because a directory may be shared between the nodes of a
    cluster: only the node that made a temporary file can tell whether its process still runs.
    """
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{_host()}.{uuid.uuid4().hex[:12]}.tmp")


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host runs (a process of another user counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(path: str | PathLike) -> list[Path]:
    """Remove temporary files of ``path`` left by processes of this host that no longer run
    (names without a host, ``.NAME.<pid>.<random>.tmp``, count as this host's); returns them."""
    path = Path(path)
    removed = []
    host = _host()
    with contextlib.suppress(OSError):
        for candidate in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
            parts = candidate.name[len(path.name) + 2 :].split(".")
            ours = len(parts) == 3 or (len(parts) == 4 and parts[1] == host)
            if ours and parts[0].isdigit() and not pid_alive(int(parts[0])):
                with contextlib.suppress(OSError):
                    candidate.unlink()
                    removed.append(candidate)
    return removed


def check_output_location(path: str | PathLike, *, overwrite: bool = False, what: str = "output") -> Path:
    """Refuse, before any work is done, an output that cannot be written or must not be replaced."""
    path = Path(path)
    if path.is_dir():
        raise RhoDataError(f"the {what} is a directory", path=path)
    if path.exists() and not overwrite:
        raise RhoDataError(f"the {what} already exists (pass --overwrite to replace it)", path=path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise RhoDataError(f"cannot write the {what}: the directory {parent} does not exist", path=path)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RhoDataError(f"cannot write the {what}: the directory {parent} is not writable", path=path)
    return path


def require_free_space(path: str | PathLike, needed_bytes: int) -> None:
    """Refuse to start when the file system of ``path`` has less than ``needed_bytes`` free."""
    path = Path(path)
    where = path if path.is_dir() else path.parent if str(path.parent) else Path(".")
    try:
        free = shutil.disk_usage(where).free
    except OSError:
        return  # cannot tell: the write itself will say
    if free < needed_bytes:
        raise RhoDataError(
            f"only {free / 2**20:.1f} MiB free, about {needed_bytes / 2**20:.1f} MiB needed: free some space first",
            path=path,
        )


def publish(tmp: str | PathLike, path: str | PathLike, *, overwrite: bool = False) -> None:
    """Move the finished ``tmp`` onto ``path``; without ``overwrite`` refuse an existing ``path``.

    Without ``overwrite`` this is ``link(tmp, path)`` then ``unlink(tmp)``: the link fails when
    ``path`` exists, even if another process created it a moment ago.
    """
    tmp, path = Path(tmp), Path(path)
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise RhoDataError(
            "was written by another process meanwhile; this result is not kept (pass --overwrite to replace it)",
            path=path,
        ) from None
    except OSError as err:
        if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
            raise
        if path.exists():  # no hard links on this file system: check, then rename
            raise RhoDataError(
                "was written by another process meanwhile; this result is not kept (pass --overwrite to replace it)",
                path=path,
            ) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


@contextlib.contextmanager
def atomic_output(path: str | PathLike, *, overwrite: bool = False, what: str = "output") -> Iterator[Path]:
    """Yield a unique temporary path to write; on success it becomes ``path``.

    On any error (or a kill) ``path`` keeps what it held before and the temporary file is
    removed (a kill leaves it for :func:`remove_stale_temporaries`). System errors become one
    :class:`RhoDataError` line.
    """
    path = check_output_location(path, overwrite=overwrite, what=what)
    remove_stale_temporaries(path)
    tmp = temporary_path(path)
    try:
        yield tmp
        publish(tmp, path, overwrite=overwrite)
    except BaseException as err:
        if not _translated(err):
            raise
        raise _write_error(err, path, tmp, what) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _translated(err: BaseException) -> bool:
    """Whether :func:`_write_error` turns ``err`` into a one-line error (else it is raised as is)."""
    return isinstance(err, OSError) or disk_full(err)


def _write_error(err: BaseException, path: Path, tmp: Path, what: str) -> RhoDataError:
    """The one-line error for a failed write of ``path`` through ``tmp`` (for an ``err`` that :func:`_translated` accepts)."""
    if disk_full(err) or not isinstance(err, OSError):  # HDF5's OSErrors carry no errno, only the text
        return DiskFullError(f"cannot write the {what}: {_HINTS[errno.ENOSPC]}", path=path)
    if err.filename is not None and Path(err.filename) == tmp:  # name the output, not its temporary file
        err.filename = None
    return RhoDataError(f"cannot write the {what}: {os_error_message(err)}", path=path)


def write_bytes_atomic(path: str | PathLike, data: bytes, *, overwrite: bool = True, what: str = "file") -> None:
    """Write ``data`` to ``path`` through a unique temporary file (replacing by default)."""
    with atomic_output(path, overwrite=overwrite, what=what) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


def write_text_atomic(path: str | PathLike, text: str, *, overwrite: bool = True, what: str = "file") -> None:
    """Write ``text`` (UTF-8) to ``path`` through a unique temporary file (replacing by default)."""
    write_bytes_atomic(path, text.encode("utf-8"), overwrite=overwrite, what=what)


def replace_quickly(path: str | PathLike, data: bytes, *, what: str = "file") -> None:
    """Replace ``path`` by ``data`` through a unique temporary file and a rename, without the
    stale-temporary scan and the ``fsync`` of :func:`write_bytes_atomic`.

    For bookkeeping files written by the thousand, such as one state file per finished
    structure of a run: the scan lists the whole directory for every file (quadratic over a
    run) and an ``fsync`` costs milliseconds per file on a network file system. A killed writer
    still leaves the old file or the new one, never a part of it (the rename is atomic); only a
    crash of the machine before the data reach the disk can lose the newest files. The caller
    removes stale temporaries once, before its loop (:func:`remove_stale_temporaries`). Errors
    are those of :func:`atomic_output`.
    """
    path = Path(path)
    tmp = temporary_path(path)
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if not _translated(err):
            raise
        raise _write_error(err, path, tmp, what) from None


@contextlib.contextmanager
def exclusive_lock(path: str | PathLike, *, what: str = "output") -> Iterator[None]:
    """Hold an exclusive advisory lock named after ``path`` (``.NAME.lock`` beside it).

    Taken before anything is written, so that a second process writing the same output is
    refused at once; the operating system drops the lock when its holder dies.
    """
    path = Path(path)
    lock_path = path.with_name(f".{path.name}.lock")
    try:
        handle = open(lock_path, "a+b")
    except OSError as err:
        raise RhoDataError(f"cannot write the {what}: {os_error_message(err)}", path=path) from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise RhoDataError(f"another process is writing this {what}; wait for it to finish", path=path) from None
        yield
    finally:
        handle.close()
