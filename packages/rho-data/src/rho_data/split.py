"""Reproducible train/validation/test splits written as plain index files.

An index file holds one structure index per line, after comment lines starting with ``#``
that name the dataset it belongs to (``# dataset_id: <id>``) and how it was made; numpy's
``loadtxt`` reads it as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import numpy as np

from .atomic import write_text_atomic
from .errors import RhoDataError
from .yaml_input import short_repr


def split_indices(n: int, sizes: Sequence[float], seed: int) -> list[np.ndarray]:
    """Shuffle 0..n-1 with ``seed`` and cut it into parts.

    ``sizes`` are either fractions (all < 1, summing to at most 1; the last part takes the
    rounding remainder when they sum to 1) or counts (integers summing to at most n).
    """
    sizes = [float(s) for s in sizes]
    if not sizes or any(s < 0 for s in sizes):
        raise RhoDataError(f"split sizes must be non-negative, got {sizes}")
    if all(s < 1 for s in sizes) and any(s > 0 for s in sizes) and not all(s.is_integer() for s in sizes):
        if sum(sizes) > 1 + 1e-9:
            raise RhoDataError(f"split fractions sum to {sum(sizes):g} > 1")
        counts = [int(np.floor(s * n + 1e-9)) for s in sizes]
        if abs(sum(sizes) - 1) < 1e-9:
            counts[-1] = n - sum(counts[:-1])
    else:
        if not all(s.is_integer() for s in sizes):
            raise RhoDataError(f"split sizes must be all fractions (< 1) or all counts, got {sizes}")
        counts = [int(s) for s in sizes]
        if sum(counts) > n:
            raise RhoDataError(f"split counts sum to {sum(counts)}, the dataset holds {n} structures")
    order = np.random.default_rng(seed).permutation(n)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    return [np.sort(order[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def write_index_file(
    path: str | PathLike, indices: np.ndarray, *, dataset_id: str, comment: str = "", overwrite: bool = True
) -> None:
    """Write an index file through a temporary file (without ``overwrite`` an existing one is refused)."""
    comment = " ".join(comment.splitlines())  # one comment line, whatever it holds
    lines = [f"# dataset_id: {dataset_id}"] + ([f"# {comment}"] if comment else [])
    lines += [str(int(i)) for i in indices]
    write_text_atomic(path, "\n".join(lines) + "\n", overwrite=overwrite, what="index file")


def read_index_file(path: str | PathLike, *, dataset_id: str | None = None, n_structures: int | None = None) -> np.ndarray:
    """Indices of an index file, checked against the dataset it is used with."""
    path = Path(path)
    if path.is_dir():
        raise RhoDataError("is a directory, not an index file", path=path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as err:
        raise RhoDataError(f"cannot read index file: {err.strerror}", path=path) from None
    except UnicodeDecodeError as err:
        raise RhoDataError(f"is not an index file: not UTF-8 text (byte {err.start})", path=path) from None
    found_id = None
    values = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line.startswith("# dataset_id:"):
            found_id = line.split(":", 1)[1].strip()
        line = line.split("#", 1)[0].strip()  # comments, whole-line or trailing
        if not line:
            continue
        try:
            value = int(line)
        except ValueError:
            raise RhoDataError(f"line {number} is not an integer index: {short_repr(line)}", path=path) from None
        if not -(2**62) < value < 2**62:
            raise RhoDataError(f"line {number}: index {short_repr(value)} is out of range", path=path)
        values.append(value)
    indices = np.array(values, dtype=np.int64)
    if dataset_id is not None and found_id is not None and found_id != dataset_id:
        raise RhoDataError(f"is a split of dataset {found_id}, not of dataset {dataset_id}", path=path)
    if n_structures is not None and len(indices) and (indices.min() < 0 or indices.max() >= n_structures):
        raise RhoDataError(f"indices must lie in 0..{n_structures - 1}", path=path)
    return indices
