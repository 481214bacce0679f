"""Train/validation/test indices: rho-data split files or seed + fractions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rho_data import split as rho_data_split

from .errors import RhoModelError


def read_index_file(path: str | Path, n_structures: int) -> list[int]:
    """Plain text, one integer per line, '#' comments (rho-data's split format, read by rho-data)."""
    return [int(i) for i in rho_data_split.read_index_file(path, n_structures=n_structures)]


def write_index_file(path: str | Path, indices: Sequence[int], comment: str) -> None:
    Path(path).write_text(f"# {comment}\n" + "".join(f"{int(i)}\n" for i in indices))


def make_splits(n_structures: int, data_options: dict) -> dict[str, list[int]]:
    """From the index files named in the options, else a seeded random split by fractions."""
    files = {name: data_options[name] for name in ("train", "val", "test")}
    if files["train"] is not None:
        splits = {name: (read_index_file(p, n_structures) if p is not None else []) for name, p in files.items()}
    else:
        order = np.random.default_rng(int(data_options["seed"])).permutation(n_structures)
        f_train, f_val, f_test = data_options["fractions"]
        n_train = int(round(f_train * n_structures))
        n_val = int(round(f_val * n_structures))
        n_test = min(int(round(f_test * n_structures)), n_structures - n_train - n_val)
        splits = {
            "train": sorted(order[:n_train].tolist()),
            "val": sorted(order[n_train : n_train + n_val].tolist()),
            "test": sorted(order[n_train + n_val : n_train + n_val + n_test].tolist()),
        }
    if not splits["train"]:
        raise RhoModelError("data: the training split is empty")
    seen: dict[int, str] = {}
    for name, idx in splits.items():
        for i in idx:
            if i in seen and seen[i] != name:
                raise RhoModelError(f"data: structure {i} is in both the {seen[i]} and the {name} split")
            seen[i] = name
    return splits
