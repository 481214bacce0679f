"""Train/validation/test indices: rho-data split files (always checked against the dataset) or seed + fractions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rho_data import split as rho_data_split

from .errors import RhoModelError


def read_index_file(path: str | Path, *, dataset_id: str, n_structures: int) -> list[int]:
    """rho-data's split format, read by rho-data: refuses a split of another dataset and indices out of range."""
    return [int(i) for i in rho_data_split.read_index_file(path, dataset_id=dataset_id, n_structures=n_structures)]


def write_index_file(path: str | Path, indices: Sequence[int], *, dataset_id: str, comment: str) -> None:
    """rho-data's split format (with the ``dataset_id`` header), written through a temporary file."""
    rho_data_split.write_index_file(path, np.asarray(list(indices), dtype=np.int64), dataset_id=dataset_id, comment=comment)


def split_counts(n_structures: int, fractions: Sequence[float]) -> list[int]:
    """Structures per part: round(f n) each, in the order train, val, test, capped by what is left.

    (rho-data's own fraction rule floors instead; rho-model keeps rounding so that runs split as before.)
    """
    counts: list[int] = []
    for fraction in fractions:  # each part takes what is left when rounding asks for more
        counts.append(max(0, min(int(round(fraction * n_structures)), n_structures - sum(counts))))
    return counts


def make_splits(n_structures: int, data_options: dict, dataset_id: str) -> dict[str, list[int]]:
    """From the index files named in the options, else a seeded random split by fractions."""
    files = {name: data_options[name] for name in ("train", "val", "test")}
    if files["train"] is not None:
        splits = {
            name: (read_index_file(p, dataset_id=dataset_id, n_structures=n_structures) if p is not None else [])
            for name, p in files.items()
        }
    else:
        counts = split_counts(n_structures, data_options["fractions"])
        parts = rho_data_split.split_indices(n_structures, counts, int(data_options["seed"]))
        splits = {name: part.tolist() for name, part in zip(("train", "val", "test"), parts)}
    if not splits["train"]:
        raise RhoModelError("data: the training split is empty")
    seen: dict[int, str] = {}
    for name, idx in splits.items():
        for i in idx:
            if i in seen and seen[i] != name:
                raise RhoModelError(f"data: structure {i} is in both the {seen[i]} and the {name} split")
            seen[i] = name
    return splits
