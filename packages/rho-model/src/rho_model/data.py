"""Training data in memory: per-structure records and batches as torch tensors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from rho_data import AuxiliaryBasis, BlockSparseOverlap
from rho_data.checks import require_finite
from rho_data.layout import BatchLayout, Key, key_name

from .errors import RhoModelError
from .metric import BatchOverlap


@dataclass
class Record:
    """One structure: geometry (with ``cell`` and ``pbc``), reference coefficients, projections, overlap, features per key."""

    index: int
    numbers: np.ndarray
    positions: np.ndarray
    coefficients: np.ndarray | None
    projections: np.ndarray | None
    overlap: BlockSparseOverlap | None
    features: dict[Key, np.ndarray] = field(default_factory=dict)
    cell: np.ndarray = field(default_factory=lambda: np.zeros((3, 3)))
    pbc: np.ndarray = field(default_factory=lambda: np.zeros(3, dtype=bool))


def split_features(features: dict[Key, np.ndarray], numbers_list: Sequence[np.ndarray]) -> list[dict[Key, np.ndarray]]:
    """Rows of a batch's features (structure, atom order) -> one dict per structure."""
    out: list[dict[Key, np.ndarray]] = [{} for _ in numbers_list]
    for key, values in features.items():
        counts = [int(np.sum(n == key[1])) for n in numbers_list]
        bounds = np.concatenate([[0], np.cumsum(counts)])
        for s in range(len(numbers_list)):
            out[s][key] = values[bounds[s] : bounds[s + 1]]
    return out


def dataset_target(dataset, target: str | None) -> str:
    """The dataset target a run learns (None: the main one); see ``RhoFile.resolve_target``."""
    return dataset.resolve_target(target)


def load_records(
    dataset,
    indices: Sequence[int],
    features: dict[Key, np.ndarray],
    *,
    need_reference: bool = True,
    target: str | None = None,
) -> list[Record]:
    """Records for ``indices`` of a rho-data dataset; ``features`` rows in the same order; the
    coefficients and projections of ``target`` (:func:`dataset_target`)."""
    name = dataset_target(dataset, target)
    structures = [dataset[int(i)] for i in indices]
    if name != dataset.target:
        for s in structures:
            s.coefficients, s.projections = s.targets[name].coefficients, s.targets[name].projections
    per = split_features(features, [s.numbers for s in structures])
    records = []
    for i, s, f in zip(indices, structures, per):
        if need_reference and (s.coefficients is None or s.overlap is None):
            raise RhoModelError(f"{dataset.path}: structure {i}: has no reference coefficients or overlap")
        check_finite_structure(dataset.path, int(i), s)
        records.append(Record(int(i), s.numbers, s.positions, s.coefficients, s.projections, s.overlap, f, s.cell, s.pbc))
    return records


def check_finite_structure(path, index: int, structure) -> None:
    """Refuse training data holding NaN or infinity, naming the file, the structure and the quantity."""
    label = getattr(structure, "label", "")
    for what, values in (
        ("positions", structure.positions),
        ("coefficients", structure.coefficients),
        ("projections", structure.projections),
        ("overlap", structure.overlap.values if structure.overlap is not None else None),
    ):
        if values is not None:
            require_finite(values, what, path=path, structure=index, label=label, error=RhoModelError)


class Batch:
    """A batch of records as tensors: features by key name, flat targets, block-sparse overlap."""

    def __init__(
        self,
        records: Sequence[Record],
        basis: AuxiliaryBasis,
        *,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
        pair_cutoff: float | None = None,
        with_reference: bool = True,
    ):
        self.records = list(records)
        self.layout = BatchLayout.build(basis, [r.numbers for r in records])
        self.index = {key_name(k): torch.as_tensor(v.reshape(-1), device=device) for k, v in self.layout.index.items()}
        keys = self.layout.keys
        self.features: dict[str, torch.Tensor] = {
            key_name(k): torch.as_tensor(np.concatenate([r.features[k] for r in records]), dtype=dtype, device=device)
            for k in keys
            if all(k in r.features for r in records)
        }
        self.samples: dict[str, torch.Tensor] = {
            key_name(k): torch.as_tensor(v, device=device) for k, v in self.layout.atoms.items()
        }
        self.dtype, self.device = dtype, device
        self.pair_cutoff = pair_cutoff  # atom pairs farther apart are left out of the overlap
        self.stored_projections = False  # projections read from the dataset (w = S d_ref of the full S)
        if with_reference:
            self.reference = torch.as_tensor(np.concatenate([r.coefficients for r in records]), dtype=dtype, device=device)
            self.overlap = BatchOverlap(
                [r.overlap for r in records],
                self.layout.offsets,
                positions=[r.positions for r in records],
                cells=[(r.cell, r.pbc) for r in records],
                pair_cutoff=pair_cutoff,
                dtype=dtype,
                device=device,
            )
            if all(r.projections is not None for r in records):
                self.projections = torch.as_tensor(np.concatenate([r.projections for r in records]), dtype=dtype, device=device)
                self.stored_projections = True
            else:
                self.projections = self.overlap.matvec(self.reference)
            self.constant = self.overlap.quadratic(self.reference)

    def __len__(self) -> int:
        return len(self.records)

    def assemble(self, blocks: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-key coefficient blocks (atoms, 2l+1, n) -> the flat canonical vector of the batch."""
        flat = torch.zeros(self.layout.size, dtype=self.dtype, device=self.device)
        for name, idx in self.index.items():
            flat = flat.index_put((idx,), blocks[name].transpose(1, 2).reshape(-1))
        return flat

    def blocks_of(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Inverse of :meth:`assemble`."""
        out = {}
        for k in self.layout.keys:
            idx = self.layout.index[k]
            out[key_name(k)] = flat[torch.as_tensor(idx, device=flat.device)].transpose(1, 2)
        return out
