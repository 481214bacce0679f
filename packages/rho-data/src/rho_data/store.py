"""Crash-safe, append-only ragged columns in one HDF5 file.

Every per-structure quantity is a *column* under ``/structures``. A column either has one row
per structure (``segment=None``) or a variable number of rows per structure, all columns of
the same *segment* (``atoms``, ``coefficients``, ...) sharing that number. ``/structures/index``
holds, for every committed structure, the start and count of each segment; its length is
the number of structures, and it is the commit record:

1. write the new rows of every column (resizing as needed), flush;
2. append one row to the index, flush.

The file is written in HDF5's SWMR mode, which orders the metadata writes so that the file is
consistent at every moment; a writer killed anywhere leaves the structures committed before
it, and rows past the index are ignored by readers and truncated when the file is reopened
for appending. Opening costs the same whatever the number of structures: nothing is read
until asked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from os import PathLike

import h5py
import numpy as np

from .errors import RhoDataError
from .h5_open import lock_for_writing, open_h5

__all__ = ["INDEX", "Column", "RaggedStore", "index_columns", "lock_for_writing", "open_h5"]

INDEX = "structures/index"
_CHUNK_BYTES = 1 << 16
_ROW_BLOCK = 1024


@dataclass(frozen=True)
class Column:
    """One stored quantity: ``/structures/<name>``."""

    name: str
    dtype: str
    shape: tuple[int, ...] = ()
    segment: str | None = None

    def chunks(self) -> tuple[int, ...]:
        row_bytes = int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize
        rows = 256 if self.segment is None else max(256, _CHUNK_BYTES // max(row_bytes, 1))
        return (rows, *self.shape)

    def h5_dtype(self):
        return np.dtype(self.dtype)


def index_columns(segments: Sequence[str]) -> list[str]:
    return [f"{s}_{what}" for s in segments for what in ("start", "count")]


def _path(name: str) -> str:
    return f"structures/{name}"


class RaggedStore:
    """The columns of one open file; append (writers) or read rows of structure i."""

    def __init__(self, h5: h5py.File, columns: Sequence[Column], segments: Sequence[str], path: str | PathLike):
        self.h5 = h5
        self.path = path
        self.columns = {c.name: c for c in columns}
        self.segments = list(segments)
        if not isinstance(h5.get(INDEX), h5py.Dataset):
            raise RhoDataError(f"/{INDEX} is missing or not a dataset", path=path)
        self._index = h5[INDEX]
        stored = [str(c) for c in np.atleast_1d(np.asarray(self._index.attrs.get("columns", []))).reshape(-1)]
        expected = index_columns(self.segments)
        if stored == expected and (self._index.dtype.kind not in "iu" or self._index.shape[1:] != (len(expected),)):
            raise RhoDataError(
                f"/{INDEX} must hold {len(expected)} integer columns, got {self._index.dtype} of shape {self._index.shape}",
                path=path,
            )
        if stored != expected:
            missing = [c for c in expected if c not in stored]
            extra = [c for c in stored if c not in expected]
            raise RhoDataError(
                f"the commit index /structures/index does not match the file's layout (missing columns {missing}, "
                f"unexpected {extra}): damaged, or written by an incompatible development version",
                path=path,
            )
        self._datasets = {}
        for name, col in self.columns.items():
            dset = h5.get(_path(name))
            if not isinstance(dset, h5py.Dataset):
                raise RhoDataError(f"/{_path(name)} is missing or not a dataset", path=path)
            expected_dtype = col.h5_dtype()
            if dset.dtype.kind != expected_dtype.kind or dset.shape[1:] != col.shape:
                raise RhoDataError(
                    f"/{_path(name)} must hold {expected_dtype} rows of shape {col.shape}, "
                    f"got {dset.dtype} of shape {dset.shape}",
                    path=path,
                )
            self._datasets[name] = dset
        self._row_cache: dict[tuple[str, int], np.ndarray] = {}

    # ---- creation and reopening -------------------------------------------------------------
    @staticmethod
    def create_layout(h5: h5py.File, columns: Sequence[Column], segments: Sequence[str]) -> None:
        """Create the empty, resizable datasets (before SWMR writing starts)."""
        names = index_columns(segments)
        index = h5.create_dataset(
            INDEX, shape=(0, len(names)), maxshape=(None, len(names)), dtype="i8", chunks=(1024, len(names))
        )
        index.attrs["columns"] = names
        for col in columns:
            dset = h5.create_dataset(
                _path(col.name), shape=(0, *col.shape), maxshape=(None, *col.shape), dtype=col.h5_dtype(), chunks=col.chunks()
            )
            dset.attrs["segment"] = col.segment or "structure"

    def truncate_uncommitted(self) -> None:
        """Drop rows written after the last commit (a writer killed mid-append)."""
        n = len(self)
        ends = self._segment_ends(n)
        for name, col in self.columns.items():
            target = n if col.segment is None else ends[col.segment]
            dset = self._datasets[name]
            if dset.shape[0] != target:
                dset.resize((target, *col.shape))
        self.h5.flush()

    def _segment_ends(self, n: int) -> dict[str, int]:
        if n == 0:
            return {s: 0 for s in self.segments}
        row = self.index_row(n - 1)
        return {s: int(row[2 * k] + row[2 * k + 1]) for k, s in enumerate(self.segments)}

    # ---- writing ------------------------------------------------------------------------------
    def append(self, rows: dict[str, np.ndarray]) -> int:
        """Commit one structure; ``rows`` maps every column name to its rows."""
        n = len(self)
        ends = self._segment_ends(n)
        counts: dict[str, int] = {}
        for name, col in self.columns.items():
            value = rows[name]
            if col.segment is None:
                continue
            count = len(value)
            if counts.setdefault(col.segment, count) != count:
                raise RhoDataError(
                    f"columns of segment '{col.segment}' disagree in length ({counts[col.segment]} and {count} for '{name}')",
                    path=self.path,
                    structure=n,
                )
        for name, col in self.columns.items():
            dset = self._datasets[name]
            value = rows[name]
            if col.segment is None:
                dset.resize((n + 1, *col.shape))
                dset[n] = value
            else:
                start, count = ends[col.segment], counts[col.segment]
                dset.resize((start + count, *col.shape))
                if count:
                    dset[start : start + count] = value
        self.h5.flush()
        entry = np.array([[ends[s], counts.get(s, 0)] for s in self.segments], dtype=np.int64).reshape(1, -1)
        self._index.resize((n + 1, entry.shape[1]))
        self._index[n] = entry[0]
        self.h5.flush()
        self._row_cache.clear()
        return n

    # ---- reading --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._index.shape[0])

    def _cached_row(self, name: str, dset: h5py.Dataset, i: int) -> np.ndarray:
        """Row i of a one-row-per-structure dataset, read in blocks of _ROW_BLOCK rows.

        Random access then costs one HDF5 read per ragged column instead of one per column.
        """
        block = i // _ROW_BLOCK
        cached = self._row_cache.get((name, block))
        if cached is None or i - block * _ROW_BLOCK >= len(cached):
            cached = dset[block * _ROW_BLOCK : min((block + 1) * _ROW_BLOCK, len(self))]
            self._row_cache[(name, block)] = cached
        return cached[i - block * _ROW_BLOCK].copy()  # callers may modify what they get

    def index_row(self, i: int) -> np.ndarray:
        return self._cached_row(INDEX, self._index, i)

    def read(self, i: int, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"{self.path}: structure {i} out of range (the file holds {n})")
        i = i % n
        row = self.index_row(i)
        spans = {s: (int(row[2 * k]), int(row[2 * k + 1])) for k, s in enumerate(self.segments)}
        out = {}
        for name in names if names is not None else self.columns:
            col = self.columns[name]
            dset = self._datasets[name]
            if col.segment is None:
                out[name] = self._cached_row(name, dset, i)
            else:
                start, count = spans[col.segment]
                out[name] = dset[start : start + count] if count else np.zeros((0, *col.shape), dtype=dset.dtype)
        return out

    def read_segment_rows(self, name: str) -> list[np.ndarray]:
        """The rows of a ragged column for every committed structure (reads the whole column)."""
        col = self.columns[name]
        n = len(self)
        k = self.segments.index(col.segment)
        spans = self._index[:n, 2 * k : 2 * k + 2]
        values = self._datasets[name][: int(spans[-1].sum())] if n else np.zeros((0, *col.shape))
        return [values[start : start + count] for start, count in spans]

    def read_column(self, name: str, indices: np.ndarray | None = None) -> np.ndarray:
        """A per-structure column for all (or the given) committed structures."""
        dset = self._datasets[name]
        n = len(self)
        if indices is None:
            return dset[:n]
        unique, inverse = np.unique(np.asarray(indices, dtype=np.int64), return_inverse=True)
        if len(unique) and (unique[0] < 0 or unique[-1] >= n):
            raise IndexError(f"{self.path}: structure indices must lie in 0..{n - 1}")
        values = dset[unique] if len(unique) else np.zeros((0, *dset.shape[1:]), dtype=dset.dtype)
        return values[inverse]
