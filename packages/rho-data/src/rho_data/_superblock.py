"""Repairing the superblock of an HDF5 file whose SWMR writer was killed (``h5clear -s --increment``).

A writer in SWMR mode sets the "open for writing" flags in a version-3 superblock and clears
them on close. After a crash (SIGKILL, a job killed at its time limit) they stay set, and HDF5
refuses to open the file except for SWMR reading. The committed content is consistent (SWMR
orders its writes so that it always is), but the end-of-allocation address (EOA) stored in the
superblock can lag behind what the killed writer had already allocated: a chunk index flushed
after the last superblock write may point at a chunk just past the stored EOA. A new writer
that reuses that address fails with "addr overflow" (or, worse, hands the same space out
twice). The repair, as ``h5clear --increment`` does it, clears the flags and moves the EOA to
``max(EOA, EOF) + margin``, with ``margin`` larger than what one writer allocates between two
flushes; the file is first extended to the new EOA so that it never looks truncated.

The superblock (HDF5 file format spec, section II.A, versions 2 and 3) is: signature (8 bytes),
version, size of offsets, size of lengths, file consistency flags (1 byte each), then four
addresses (base, superblock extension, end of file (the EOA), root object header), then a
Jenkins lookup3 checksum of everything before it.
"""

from __future__ import annotations

import os
import struct
from os import PathLike

_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_FLAGS_OFFSET = 11
_MASK = 0xFFFFFFFF


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _MASK


#: Rotations of lookup3's ``mix`` (applied to a full 12-byte block) and ``final`` (to the last one).
_MIX_ROTATIONS = (4, 6, 8, 16, 19, 4)
_FINAL_ROTATIONS = (14, 11, 25, 16, 4, 14, 24)


def _mix(v: list[int]) -> None:
    """lookup3's ``mix(a, b, c)`` on ``v = [a, b, c]``: six steps ``x -= y; x ^= rot(y, k); y += z``
    with (x, y, z) = (a, c, b), (b, a, c), (c, b, a), (a, c, b), ..."""
    for step, k in enumerate(_MIX_ROTATIONS):
        x, y, z = step % 3, (step + 2) % 3, (step + 1) % 3
        v[x] = ((v[x] - v[y]) & _MASK) ^ _rot(v[y], k)
        v[y] = (v[y] + v[z]) & _MASK


def _final(v: list[int]) -> None:
    """lookup3's ``final(a, b, c)`` on ``v = [a, b, c]``: seven steps ``x ^= y; x -= rot(y, k)``
    with (x, y) = (c, b), (a, c), (b, a), (c, b), ..."""
    for step, k in enumerate(_FINAL_ROTATIONS):
        x, y = (step + 2) % 3, (step + 1) % 3
        v[x] = ((v[x] ^ v[y]) - _rot(v[y], k)) & _MASK


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle``, the metadata checksum of HDF5."""
    length = len(data)
    v = [(0xDEADBEEF + length + initval) & _MASK] * 3
    i = 0
    while length > 12:
        for k in range(3):
            v[k] = (v[k] + int.from_bytes(data[i + 4 * k : i + 4 * k + 4], "little")) & _MASK
        _mix(v)
        length -= 12
        i += 12
    if length == 0:
        return v[2]
    tail = data[i:] + bytes(12 - length)
    for k in range(3):
        v[k] = (v[k] + int.from_bytes(tail[4 * k : 4 * k + 4], "little")) & _MASK
    _final(v)
    return v[2]


#: File consistency flag bits: opened for writing (bit 0), opened for SWMR writing (bit 2).
WRITE_ACCESS = 0x01
SWMR_WRITE_ACCESS = 0x04


def write_flags(path: str | PathLike) -> int:
    """The file consistency flags of a version 2/3 superblock (0 for older superblocks)."""
    with open(path, "rb") as handle:
        head = handle.read(12)
    return head[_FLAGS_OFFSET] if head[:8] == _SIGNATURE and head[8] >= 2 and len(head) == 12 else 0


def write_flags_set(path: str | PathLike) -> bool:
    """True when the superblock says a writer still has (or had, before a crash) the file open."""
    return write_flags(path) != 0


def repair_after_crash(path: str | PathLike, margin: int) -> bool:
    """Clear the write flags and move the stored EOA past anything a killed writer allocated.

    Returns False (and changes nothing) when the flags are not set.
    """
    with open(path, "r+b") as handle:
        head = handle.read(11)
        if head[:8] != _SIGNATURE or head[8] < 2:
            return False
        size_of_offsets = head[9]
        body_length = 12 + 4 * size_of_offsets
        handle.seek(0)
        body = bytearray(handle.read(body_length))
        stored = struct.unpack("<I", handle.read(4))[0]
        if lookup3(bytes(body)) != stored:
            raise OSError(f"{path}: the HDF5 superblock checksum does not match; the file is damaged")
        if body[_FLAGS_OFFSET] == 0:
            return False
        eoa_at = 12 + 2 * size_of_offsets
        eoa = int.from_bytes(body[eoa_at : eoa_at + size_of_offsets], "little")
        new_eoa = max(eoa, os.fstat(handle.fileno()).st_size) + margin
        handle.truncate(new_eoa)  # extends (sparse): the file is never shorter than its EOA
        body[eoa_at : eoa_at + size_of_offsets] = new_eoa.to_bytes(size_of_offsets, "little")
        body[_FLAGS_OFFSET] = 0
        handle.seek(0)
        handle.write(bytes(body) + struct.pack("<I", lookup3(bytes(body))))
    return True
