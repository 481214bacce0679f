"""Opening a rho-data HDF5 file: one writer at a time, and repair after a killed writer.

A writer holds an exclusive advisory lock (:func:`lock_for_writing`) while it has the file open;
the operating system drops it when the writer dies. :func:`open_h5` opens a file for reading
even while its SWMR writer runs or after it was killed, and repairs the superblock of a file
whose writer was killed (:mod:`rho_data._superblock`) before a new writer appends to it.
"""

from __future__ import annotations

import fcntl
import os
import time
from os import PathLike

import h5py
import numpy as np

from ._superblock import SWMR_WRITE_ACCESS, repair_after_crash, write_flags, write_flags_set
from .errors import RhoDataError

_READ_CACHE_BYTES = 64 << 20


def lock_for_writing(path: str | PathLike):
    """An exclusive advisory lock on the file, held while a writer has it open.

    The operating system drops it when the writer dies, so a killed writer never blocks the
    next one; a second live writer is refused.
    """
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        raise RhoDataError("no such file", path=path) from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise RhoDataError(
            "is open by another writer (one writer per file: give each job its own file and merge)", path=path
        ) from None
    return handle


def open_h5(path: str | PathLike, mode: str = "r") -> h5py.File:
    """Open an HDF5 file, turning low-level failures into one-line errors."""
    try:
        if mode == "r":
            # A file whose writer is still running, or was killed, has its write flags set:
            # only SWMR reading opens it. Other files open normally, which also checks that
            # the file is not truncated.
            flags = write_flags(path)
            if flags and not flags & SWMR_WRITE_ACCESS:
                _repair_unfinished_open(path)
                flags = 0
            return h5py.File(path, "r", swmr=bool(flags), rdcc_nbytes=_READ_CACHE_BYTES, locking=False)
        if write_flags_set(path):
            repair_after_crash(path, _crash_margin(path))
        return h5py.File(path, mode, libver="latest", locking=False)
    except FileNotFoundError:
        raise RhoDataError("no such file", path=path) from None
    except OSError as err:
        reason = str(err).split("\n")[0]
        if "signature" in reason or "not an HDF5" in reason.lower():
            raise RhoDataError("not an HDF5 file", path=path) from None
        raise RhoDataError(f"cannot be read as HDF5 (truncated or damaged?): {reason}", path=path) from None


def _repair_unfinished_open(path: str | PathLike, wait_s: float = 5.0) -> None:
    """Clear the flags of a file whose writer was killed after opening it for writing but before
    switching to SWMR (the flag says "open for writing", not "SWMR"): no reader can open such a
    file, yet its committed content is intact, since the writer wrote nothing in that window.

    The repair (what ``h5clear -s`` does) runs under the writer lock, so it never touches a file
    a live writer holds; a live writer in that window finishes it within milliseconds, so this
    waits up to ``wait_s`` for it.
    """
    deadline = time.monotonic() + wait_s
    while True:
        try:
            lock = lock_for_writing(path)
            break
        except RhoDataError:
            if time.monotonic() > deadline:
                raise RhoDataError("is being opened by a writer; try again in a moment", path=path) from None
            time.sleep(0.05)
    try:
        flags = write_flags(path)
        if flags and not flags & SWMR_WRITE_ACCESS:
            repair_after_crash(path, _crash_margin(path))
    except PermissionError:
        raise RhoDataError(
            "was left open for writing by a killed writer and cannot be repaired here (read-only); "
            "run 'h5clear -s' on it where it is writable",
            path=path,
        ) from None
    finally:
        lock.close()


def _crash_margin(path: str | PathLike) -> int:
    """Bytes a writer may have allocated past the stored EOA before it was killed.

    Between two flushes one append allocates at most one new chunk per dataset plus some
    metadata; twice the sum of the chunk sizes and 1 MiB covers that with room to spare.
    """
    chunk_bytes = 0

    def add(_name: str, obj) -> None:
        nonlocal chunk_bytes
        if isinstance(obj, h5py.Dataset) and obj.chunks is not None:
            chunk_bytes += int(np.prod(obj.chunks, dtype=np.int64)) * obj.dtype.itemsize

    if not write_flags(path) & SWMR_WRITE_ACCESS:
        # killed before SWMR was on, so nothing was written: any margin is safe, the file size is ample
        return os.path.getsize(path) + (1 << 20)
    with h5py.File(path, "r", swmr=True, locking=False) as h5:
        h5.visititems(add)
    return 2 * chunk_bytes + (1 << 20)
