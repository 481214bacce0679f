"""A ``torch.utils.data.Dataset`` over a rho-data file (needs the ``torch`` extra).

Each item is a dict of torch tensors for one structure:

- ``index`` (its index in the file), ``label``; ``numbers`` int64 (atoms,), ``positions``
  (atoms, 3) Angstrom, ``cell`` (3, 3), ``pbc`` bool (3,);
- ``coefficients``: the flat canonical vector d (SCHEMA.md section 1); ``projections`` w when
  the file stores them;
- ``blocks``: ``{"l{l}_z{z}": (atoms of element z, 2l+1, n_radial[l])}``, the per-key layout of
  :mod:`rho_data.layout` (metatensor's: components ``o3_mu``, then properties ``n``), with
  ``block_index`` (the same shape, transposed last axes: indices into ``coefficients``) and
  ``block_atoms`` (the atom of each row); left out with ``keys="flat"``;
- ``overlap``: the block-sparse overlap as a :class:`TorchOverlap` (pair indices + blocks, as
  :class:`~rho_data.overlap.BlockSparseOverlap`), or None when the file stores none.

:func:`collate` batches items (atoms and blocks concatenated with a ``system`` index, overlaps
kept per structure); :func:`overlap_loss` is (d - d_ref)^T S (d - d_ref) from the stored pairs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .errors import RhoDataError
from .files import RhoFile, open_file
from .layout import BatchLayout, basis_keys, key_name
from .records import Structure
from .split import read_index_file
from .torch_overlap import TorchOverlap


def overlap_loss(pred_flat: torch.Tensor, ref_flat: torch.Tensor, overlap: TorchOverlap) -> torch.Tensor:
    """(d - d_ref)^T S (d - d_ref) of one structure: its squared L2 density error (electrons^2 / bohr^3)."""
    if pred_flat.shape != ref_flat.shape:
        raise RhoDataError(f"overlap loss: prediction has shape {tuple(pred_flat.shape)}, the reference {tuple(ref_flat.shape)}")
    return overlap.quadratic(pred_flat - ref_flat)


def batch_overlap_loss(pred_flat: torch.Tensor, batch: dict) -> torch.Tensor:
    """The sum of :func:`overlap_loss` over the structures of a :func:`collate` batch."""
    offsets, reference = batch["offsets"].tolist(), batch["coefficients"]
    if pred_flat.shape != reference.shape:
        raise RhoDataError(f"overlap loss: prediction has shape {tuple(pred_flat.shape)}, the batch {tuple(reference.shape)}")
    if any(o is None for o in batch["overlaps"]):
        raise RhoDataError("overlap loss: the file stores no overlap")
    parts = [
        overlap_loss(pred_flat[a:b], reference[a:b], overlap)
        for a, b, overlap in zip(offsets[:-1], offsets[1:], batch["overlaps"])
    ]
    return torch.stack(parts).sum()


def flat_to_blocks(flat: torch.Tensor, block_index: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Flat canonical vector -> ``{name: (atoms, 2l+1, n)}`` (``block_index`` of an item or batch)."""
    return {name: flat[index].transpose(1, 2) for name, index in block_index.items()}


def blocks_to_flat(blocks: dict[str, torch.Tensor], block_index: dict[str, torch.Tensor], size: int) -> torch.Tensor:
    """The inverse of :func:`flat_to_blocks` (differentiable: a model's blocks -> its flat prediction)."""
    first = next(iter(blocks.values()))
    flat = first.new_zeros(size)
    for name, index in block_index.items():
        flat = flat.index_put((index.reshape(-1),), blocks[name].transpose(1, 2).reshape(-1))
    return flat


class RhoTorchDataset(Dataset):
    """The structures of a rho-data dataset (or predictions file) as dicts of torch tensors.

    ``indices``: the structures to serve (a sequence of indices, or an index file from
    ``rho-data split``, checked against the file's ``dataset_id``); ``keys``: ``"blocks"`` (the
    flat vectors and the per-key blocks) or ``"flat"`` (the flat vectors only). The HDF5 file is
    opened in each process that reads it, so the dataset works with ``DataLoader`` workers.
    """

    def __init__(
        self,
        path: str | PathLike,
        indices: Sequence[int] | np.ndarray | str | PathLike | None = None,
        *,
        dtype: torch.dtype = torch.float64,
        keys: str = "blocks",
    ):
        if keys not in ("blocks", "flat"):
            raise RhoDataError(f"keys must be 'blocks' or 'flat', got {keys!r}")
        self.path, self.dtype, self.keys = Path(path), dtype, keys
        with open_file(self.path) as f:
            if f.kind == "grids":
                raise RhoDataError("grid files hold no coefficients", path=self.path)
            self.kind, self.basis, self.dataset_id, n = f.kind, f.basis, f.dataset_id, len(f)
        if indices is None:
            self.indices = np.arange(n, dtype=np.int64)
        elif isinstance(indices, (str, PathLike)):
            self.indices = read_index_file(indices, dataset_id=self.dataset_id, n_structures=n)
        else:
            self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)
            if len(self.indices) and (self.indices.min() < 0 or self.indices.max() >= n):
                raise RhoDataError(f"indices must lie in 0..{n - 1}", path=self.path)
        #: (2l + 1, n_radial) of each block name, for every key of the basis
        self.key_shapes = {key_name((l, z)): (2 * l + 1, self.basis[z].n_radial[l]) for l, z in basis_keys(self.basis)}
        self.elements = sorted({z for _, z in basis_keys(self.basis)})
        self._file: tuple[int, RhoFile] | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> dict:
        i = int(self.indices[k])
        return self.item(self._open()[i], i)

    def _open(self) -> RhoFile:
        if self._file is None or self._file[0] != os.getpid():  # one handle per process (DataLoader workers)
            self._file = (os.getpid(), open_file(self.path))
        return self._file[1]

    def close(self) -> None:
        if self._file is not None and self._file[0] == os.getpid():
            self._file[1].close()
        self._file = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_file": None}

    def item(self, s: Structure, index: int = -1) -> dict:
        """One structure as the dict described in the module docstring."""
        flat = torch.as_tensor(s.coefficients, dtype=self.dtype)
        item = {
            "index": index,
            "label": s.label,
            "numbers": torch.as_tensor(s.numbers, dtype=torch.int64),
            "positions": torch.as_tensor(s.positions, dtype=self.dtype),
            "cell": torch.as_tensor(s.cell, dtype=self.dtype),
            "pbc": torch.as_tensor(s.pbc),
            "coefficients": flat,
            "overlap": TorchOverlap.from_numpy(s.overlap, self.dtype) if s.overlap is not None else None,
        }
        if s.projections is not None:
            item["projections"] = torch.as_tensor(s.projections, dtype=self.dtype)
        if self.keys == "blocks":
            layout = BatchLayout.build(self.basis, [s.numbers])
            item["block_index"] = {key_name(k): torch.as_tensor(v) for k, v in layout.index.items()}
            item["block_atoms"] = {key_name(k): torch.as_tensor(v[:, 1]) for k, v in layout.atoms.items()}
            item["blocks"] = flat_to_blocks(flat, item["block_index"])
        return item


def collate(structures: Sequence[dict]) -> dict:
    """Batch :class:`RhoTorchDataset` items: atoms, flat vectors and blocks concatenated.

    Adds ``system`` (the structure of each atom), ``offsets`` (where each structure starts in
    the flat vectors, B + 1), ``atom_offsets``, and per block ``block_system``; ``block_index``
    and ``block_atoms`` then index the batch's flat vector and atoms. ``overlaps`` is the list
    of the structures' :class:`TorchOverlap` (each indexes its own structure's slice).
    """
    if not structures:
        raise RhoDataError("collate: no structures")
    atoms = [len(s["numbers"]) for s in structures]
    sizes = [len(s["coefficients"]) for s in structures]
    atom_offsets = np.concatenate([[0], np.cumsum(atoms)]).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    batch = {
        "index": torch.as_tensor([s["index"] for s in structures]),
        "labels": [s["label"] for s in structures],
        "numbers": torch.cat([s["numbers"] for s in structures]),
        "positions": torch.cat([s["positions"] for s in structures]),
        "system": torch.repeat_interleave(torch.arange(len(structures)), torch.as_tensor(atoms)),
        "cell": torch.stack([s["cell"] for s in structures]),
        "pbc": torch.stack([s["pbc"] for s in structures]),
        "offsets": torch.as_tensor(offsets),
        "atom_offsets": torch.as_tensor(atom_offsets),
        "coefficients": torch.cat([s["coefficients"] for s in structures]),
        "overlaps": [s["overlap"] for s in structures],
    }
    if all("projections" in s for s in structures):
        batch["projections"] = torch.cat([s["projections"] for s in structures])
    if "blocks" in structures[0]:
        names = list(structures[0]["blocks"])
        batch["blocks"] = {n: torch.cat([s["blocks"][n] for s in structures]) for n in names}
        batch["block_index"] = {n: torch.cat([s["block_index"][n] + int(o) for s, o in zip(structures, offsets)]) for n in names}
        batch["block_atoms"] = {
            n: torch.cat([s["block_atoms"][n] + int(o) for s, o in zip(structures, atom_offsets)]) for n in names
        }
        batch["block_system"] = {
            n: torch.cat([torch.full((len(s["block_atoms"][n]),), k) for k, s in enumerate(structures)]) for n in names
        }
    return batch
