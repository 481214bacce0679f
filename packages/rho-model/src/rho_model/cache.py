"""On-disk descriptor cache of a dataset, keyed by the hyperparameters and the dataset's geometries.

The key is a hash of the descriptor hyperparameters, the structure count and every structure's
atomic numbers, positions, cell and periodicity, so appending or changing structures gives a
new cache folder: a cache is never stale.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rho_data.atomic import atomic_output, write_text_atomic
from rho_data.layout import Key

from .descriptors import LambdaSoap


class DescriptorStore:
    """Descriptors of a whole dataset, computed in chunks and cached on disk.

    ``chunk`` structures go into one cache file (``descriptor.cache_chunk``); inside a chunk
    featomic is called on groups of at most ``max_atoms`` atoms (``descriptor.max_atoms``).
    The cache folder is ``cache_dir / spec.digest(content_key)`` (``content_key`` from
    :func:`geometry_digest`); chunk files are written atomically, so an interrupted computation
    resumes where it stopped. A chunk file whose rows do not fit its structures is recomputed.
    """

    def __init__(
        self,
        calculator: LambdaSoap,
        frames_of,
        n_structures: int,
        numbers_of,
        *,
        content_key: str,
        cache_dir: str | Path | None,
        chunk: int = 100,
        max_atoms: int = 500,
        progress=None,
    ):
        self.calc = calculator
        self.n = n_structures
        self.chunk = max(1, int(chunk))
        self.max_atoms = int(max_atoms)
        self.numbers_of = numbers_of
        self._frames_of = frames_of
        self.dir = None if cache_dir is None or not content_key else Path(cache_dir) / calculator.spec.digest(content_key)
        self._loaded: dict[int, dict[Key, np.ndarray]] = {}
        self._progress = progress

    def _chunk_path(self, c: int) -> Path | None:
        return None if self.dir is None else self.dir / f"chunk_{c:05d}.npz"

    def _load_chunk(self, c: int, start: int, stop: int) -> dict[Key, np.ndarray]:
        if c in self._loaded:
            return self._loaded[c]
        path = self._chunk_path(c)
        feats = self._read_chunk(path, start, stop) if path is not None and path.exists() else None
        if feats is None:
            feats = self.calc.compute(self._frames_of(range(start, stop)), self.max_atoms)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                write_text_atomic(path.parent / "hypers.json", json.dumps(self.calc.spec.hypers(), indent=1), what="cache file")
                with atomic_output(path, overwrite=True, what="descriptor cache file") as tmp:  # unique per process
                    with open(tmp, "wb") as handle:
                        np.savez(handle, **{f"{k[0]}_{k[1]}": v for k, v in feats.items()})
        self._loaded[c] = feats
        return feats

    def _read_chunk(self, path: Path, start: int, stop: int) -> dict[Key, np.ndarray] | None:
        """A cached chunk, or None when it is unreadable or its rows do not match its structures."""
        sizes = self.calc.sizes
        try:
            with np.load(path, allow_pickle=False) as data:
                feats = {k: data[f"{k[0]}_{k[1]}"] for k in self.calc.spec.keys}
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
            return None
        for k, v in feats.items():
            atoms = sum(int(np.sum(self.numbers_of(i) == k[1])) for i in range(start, stop))
            if v.shape != (atoms, 2 * k[0] + 1, sizes[k]):
                return None
        return feats

    def gather(self, indices: Sequence[int]) -> dict[Key, np.ndarray]:
        """Features of the structures ``indices`` (in that order), rows (structure, atom)."""
        indices = [int(i) for i in indices]
        needed = sorted({i // self.chunk for i in indices})
        rows: dict[int, dict[Key, np.ndarray]] = {}
        task = self._progress.add_task("descriptors", total=len(needed)) if self._progress is not None else None
        for c in needed:
            start, stop = c * self.chunk, min(self.n, (c + 1) * self.chunk)
            feats = self._load_chunk(c, start, stop)
            # split chunk rows by structure
            counts = {k: [int(np.sum(self.numbers_of(i) == k[1])) for i in range(start, stop)] for k in self.calc.spec.keys}
            for k in self.calc.spec.keys:
                bounds = np.concatenate([[0], np.cumsum(counts[k])])
                for j, i in enumerate(range(start, stop)):
                    rows.setdefault(i, {})[k] = feats[k][bounds[j] : bounds[j + 1]]
            if task is not None:
                self._progress.advance(task)
        sizes = self.calc.sizes
        return {
            k: (np.concatenate([rows[i][k] for i in indices]) if indices else np.zeros((0, 2 * k[0] + 1, sizes[k])))
            for k in self.calc.spec.keys
        }


def geometry_digest(dataset) -> str:
    """Hash of a rho-data dataset's geometries: structure count, numbers, positions, cell, pbc."""
    geometries = dataset.geometries()
    h = hashlib.sha256(f"structures {len(dataset)}".encode())
    h.update(np.asarray([len(g.numbers) for g in geometries], dtype=np.int64).tobytes())
    for g in geometries:
        h.update(np.ascontiguousarray(g.numbers, dtype=np.int64).tobytes())
    for g in geometries:
        h.update(np.ascontiguousarray(g.positions, dtype=np.float64).tobytes())
    for name in ("cell", "pbc"):
        h.update(np.ascontiguousarray([getattr(g, name) for g in geometries], dtype=np.float64).tobytes())
    return h.hexdigest()[:32]
