"""Clearing the "open for writing" flags of an HDF5 superblock (what ``h5clear -s`` does).

A writer in SWMR mode sets these flags in a version-3 superblock and clears them on close.
After a crash (SIGKILL, power loss of the job) they stay set, and HDF5 refuses to open the
file except for SWMR reading. The file content itself is consistent (SWMR orders its writes so
that it always is), so clearing the flags is safe. The superblock (HDF5 file format spec,
section II.A, versions 2 and 3) is: signature (8 bytes), version, size of offsets, size of
lengths, file consistency flags (1 byte each), four addresses, then a Jenkins lookup3
checksum of everything before it.
"""

from __future__ import annotations

import struct
from os import PathLike

_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_FLAGS_OFFSET = 11
_MASK = 0xFFFFFFFF


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _MASK


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle``, the metadata checksum of HDF5."""
    length = len(data)
    a = b = c = (0xDEADBEEF + length + initval) & _MASK
    i = 0
    while length > 12:
        a = (a + int.from_bytes(data[i : i + 4], "little")) & _MASK
        b = (b + int.from_bytes(data[i + 4 : i + 8], "little")) & _MASK
        c = (c + int.from_bytes(data[i + 8 : i + 12], "little")) & _MASK
        a = (a - c) & _MASK
        a ^= _rot(c, 4)
        c = (c + b) & _MASK  # noqa: E702
        b = (b - a) & _MASK
        b ^= _rot(a, 6)
        a = (a + c) & _MASK  # noqa: E702
        c = (c - b) & _MASK
        c ^= _rot(b, 8)
        b = (b + a) & _MASK  # noqa: E702
        a = (a - c) & _MASK
        a ^= _rot(c, 16)
        c = (c + b) & _MASK  # noqa: E702
        b = (b - a) & _MASK
        b ^= _rot(a, 19)
        a = (a + c) & _MASK  # noqa: E702
        c = (c - b) & _MASK
        c ^= _rot(b, 4)
        b = (b + a) & _MASK  # noqa: E702
        length -= 12
        i += 12
    if length == 0:
        return c
    tail = data[i:] + bytes(12 - length)
    a = (a + int.from_bytes(tail[0:4], "little")) & _MASK
    b = (b + int.from_bytes(tail[4:8], "little")) & _MASK
    c = (c + int.from_bytes(tail[8:12], "little")) & _MASK
    c ^= b
    c = (c - _rot(b, 14)) & _MASK  # noqa: E702
    a ^= c
    a = (a - _rot(c, 11)) & _MASK  # noqa: E702
    b ^= a
    b = (b - _rot(a, 25)) & _MASK  # noqa: E702
    c ^= b
    c = (c - _rot(b, 16)) & _MASK  # noqa: E702
    a ^= c
    a = (a - _rot(c, 4)) & _MASK  # noqa: E702
    b ^= a
    b = (b - _rot(a, 14)) & _MASK  # noqa: E702
    c ^= b
    c = (c - _rot(b, 24)) & _MASK  # noqa: E702
    return c


def write_flags_set(path: str | PathLike) -> bool:
    """True when the superblock says a writer still has (or had, before a crash) the file open."""
    with open(path, "rb") as handle:
        head = handle.read(12)
    return head[:8] == _SIGNATURE and head[8] >= 2 and head[_FLAGS_OFFSET] != 0


def clear_write_flags(path: str | PathLike) -> bool:
    """Clear the consistency flags of a version 2/3 superblock at offset 0; True if it changed."""
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
        body[_FLAGS_OFFSET] = 0
        handle.seek(0)
        handle.write(bytes(body) + struct.pack("<I", lookup3(bytes(body))))
    return True
