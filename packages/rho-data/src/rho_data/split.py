"""Train/validation/test splits written as plain index files.

An index file is UTF-8 text: comment lines starting with ``#`` (the first one names the
dataset, ``# dataset_id: <id>``; the next says how the split was made), then one structure
index per line (0-based, in the dataset's file order); numpy's ``loadtxt`` reads it as it is.
Parts are made by a seeded shuffle, in file order (``ordered``) or from explicit ranges
(:class:`PartRange`). SCHEMA.md section 6 specifies the format.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np

from .atomic import write_text_atomic
from .errors import RhoDataError
from .yaml_input import short_repr


def split_counts(n: int, sizes: Sequence[float]) -> list[int]:
    """How many structures each part gets.

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
        return counts
    if not all(s.is_integer() for s in sizes):
        raise RhoDataError(f"split sizes must be all fractions (< 1) or all counts, got {sizes}")
    counts = [int(s) for s in sizes]
    if sum(counts) > n:
        raise RhoDataError(f"split counts sum to {sum(counts)}, the dataset holds {n} structures")
    return counts


def split_indices(n: int, sizes: Sequence[float], seed: int = 0, *, ordered: bool = False) -> list[np.ndarray]:
    """Cut 0..n-1 into parts of :func:`split_counts` ``sizes``.

    By default the structures are shuffled with ``seed`` first (each part is then sorted);
    ``ordered`` keeps the file order: the first part holds the first structures, the next part
    the ones after them, and so on.
    """
    counts = split_counts(n, sizes)
    order = np.arange(n) if ordered else np.random.default_rng(seed).permutation(n)
    bounds = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return [np.sort(order[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


@dataclass(frozen=True)
class PartRange:
    """An explicit part ``NAME=START:STOP``: a half-open Python slice of the structures in file
    order; a negative bound counts from the end, an empty one means the start or the end."""

    name: str
    start: int | None
    stop: int | None

    @classmethod
    def parse(cls, text: str) -> PartRange:
        name, sep, span = text.partition("=")
        bounds = span.split(":")
        if not sep or len(bounds) != 2:
            raise RhoDataError(f"range {short_repr(text)} is not NAME=START:STOP (e.g. train=0:80 or val=-20:)")
        try:
            start, stop = (int(b) if b.strip() else None for b in bounds)
        except ValueError:
            raise RhoDataError(f"range {short_repr(text)}: START and STOP must be integers or empty") from None
        return cls(name.strip(), start, stop)

    def text(self) -> str:
        return f"{'' if self.start is None else self.start}:{'' if self.stop is None else self.stop}"

    def indices(self, n: int) -> np.ndarray:
        """The structure indices of this part in a dataset of ``n``; out-of-range bounds and
        empty parts are errors (never clamped silently)."""
        for bound in (self.start, self.stop):
            if bound is not None and not -n <= bound <= n:
                raise RhoDataError(f"range {self.name}={self.text()}: {bound} lies outside the dataset of {n} structures")
        start, stop, _ = slice(self.start, self.stop).indices(n)
        if stop <= start:
            raise RhoDataError(f"range {self.name}={self.text()} selects no structures of the {n}")
        return np.arange(start, stop, dtype=np.int64)


def range_indices(n: int, ranges: Sequence[PartRange]) -> list[np.ndarray]:
    """The indices of explicit parts; parts that share a structure are refused (a leak between
    training and validation)."""
    parts = [r.indices(n) for r in ranges]
    owner = np.full(n, -1)
    for k, part in enumerate(parts):
        taken = owner[part] >= 0
        if taken.any():
            other = ranges[int(owner[part][taken][0])]
            raise RhoDataError(
                f"ranges {other.name}={other.text()} and {ranges[k].name}={ranges[k].text()} share "
                f"{int(taken.sum())} structure{'s' if taken.sum() > 1 else ''} (first {int(part[taken][0])})"
            )
        owner[part] = k
    return parts


def check_part_names(names: Sequence[str]) -> None:
    """Part names become file names ``<name>.idx``: plain, distinct names only."""
    if len(set(names)) != len(names):
        raise RhoDataError(f"part names repeat: {list(names)}")
    for name in names:
        if not name or "/" in name or "\\" in name or name in (".", "..") or not name.isprintable():
            raise RhoDataError(f"part name {short_repr(name)} is not a plain file name")


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
