"""On-disk descriptor cache of a dataset, keyed by the hyperparameters and the dataset id."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .descriptors import LambdaSoap
from .layout import Key


class DescriptorStore:
    """Descriptors of a whole dataset, computed in chunks and cached on disk.

    ``chunk`` structures go into one cache file (``descriptor.cache_chunk``); inside a chunk
    featomic is called on groups of at most ``max_atoms`` atoms (``descriptor.max_atoms``).
    The cache folder is ``cache_dir / spec.digest(dataset_id)``; chunk files are written
    atomically, so an interrupted computation resumes where it stopped.
    """

    def __init__(
        self,
        calculator: LambdaSoap,
        frames_of,
        n_structures: int,
        numbers_of,
        *,
        dataset_id: str,
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
        self.dir = None if cache_dir is None or not dataset_id else Path(cache_dir) / calculator.spec.digest(dataset_id)
        self._loaded: dict[int, dict[Key, np.ndarray]] = {}
        self._progress = progress

    def _chunk_path(self, c: int) -> Path | None:
        return None if self.dir is None else self.dir / f"chunk_{c:05d}.npz"

    def _load_chunk(self, c: int, start: int, stop: int) -> dict[Key, np.ndarray]:
        if c in self._loaded:
            return self._loaded[c]
        path = self._chunk_path(c)
        if path is not None and path.exists():
            with np.load(path, allow_pickle=False) as data:
                feats = {k: data[f"{k[0]}_{k[1]}"] for k in self.calc.spec.keys}
        else:
            feats = self.calc.compute(self._frames_of(range(start, stop)), self.max_atoms)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                (path.parent / "hypers.json").write_text(json.dumps(self.calc.spec.hypers(), indent=1))
                tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")  # one per process (DDP ranks)
                np.savez(tmp, **{f"{k[0]}_{k[1]}": v for k, v in feats.items()})
                tmp.replace(path)
        self._loaded[c] = feats
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
