"""Block-sparse overlap products in torch: one grouping, one set of products (needs torch).

Atom-pair blocks of equal shape are gathered into groups (rows (G, r) and cols (G, c) indices
into a flat vector, blocks (G, r, c), off-diagonal flags (G,)), so that

    v^T S v = sum_{pairs (i, j), i <= j} f_ij v_i^T S_ij v_j,   f_ij = 1 (i = j) or 2 (i < j),

and S v cost time linear in the stored pairs without a dense matrix. :class:`TorchOverlap`
(one structure, :mod:`rho_data.torch_dataset`) and rho-model's batch overlap both use
:func:`group_quadratic` and :func:`group_matvec`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from .errors import RhoDataError
from .overlap import BlockSparseOverlap

#: (rows (G, r), cols (G, c), blocks (G, r, c), offdiag (G,)) of one group of same-shape blocks
Group = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def group_quadratic(groups: Iterable[Group], v: torch.Tensor) -> torch.Tensor:
    """v^T S v over the groups (differentiable)."""
    total = v.new_zeros(())
    for rows, cols, blocks, offdiag in groups:
        terms = torch.einsum("gr,grc,gc->g", v[rows], blocks, v[cols])
        total = total + (terms * (1.0 + offdiag.to(terms.dtype))).sum()
    return total


def split_diagonal(group: Group) -> list[Group]:
    """A group as its diagonal (i = j) and off-diagonal blocks, each contiguous: :func:`group_matvec` then
    multiplies the off-diagonal blocks transposed without gathering them first (a copy of the blocks per product)."""
    rows, cols, blocks, offdiag = group
    if bool(offdiag.all()) or not bool(offdiag.any()):
        return [group]
    return [(rows[m].contiguous(), cols[m].contiguous(), blocks[m].contiguous(), offdiag[m]) for m in (~offdiag, offdiag)]


def group_matvec(groups: Iterable[Group], v: torch.Tensor, size: int) -> torch.Tensor:
    """S v for v of shape (size,) or (size, K): each block S_ij adds to rows i and, off the diagonal, S_ij^T to rows j."""
    squeeze = v.dim() == 1
    v2 = v.reshape(size, -1)
    out = torch.zeros_like(v2)
    for rows, cols, blocks, offdiag in groups:
        out.index_add_(0, rows.reshape(-1), torch.bmm(blocks, v2[cols]).reshape(-1, v2.shape[1]))
        if bool(offdiag.all()):  # no copy of the blocks (see split_diagonal)
            out.index_add_(0, cols.reshape(-1), torch.bmm(blocks.transpose(1, 2), v2[rows]).reshape(-1, v2.shape[1]))
        elif bool(offdiag.any()):
            out.index_add_(
                0,
                cols[offdiag].reshape(-1),
                torch.bmm(blocks[offdiag].transpose(1, 2), v2[rows[offdiag]]).reshape(-1, v2.shape[1]),
            )
    return out.reshape(v.shape) if squeeze else out


@dataclass
class TorchOverlap:
    """A :class:`~rho_data.overlap.BlockSparseOverlap` as torch tensors.

    ``pairs`` (P, 2) with i <= j and ``values`` (the blocks concatenated, row-major) are those of
    the file; ``groups`` are the blocks grouped by shape as gather indices (from
    :meth:`BlockSparseOverlap.group_indices`): (rows (G, r) and cols (G, c) into the structure's
    coefficient vector, value indices (G, r * c), off-diagonal flags (G,)).
    """

    atom_sizes: torch.Tensor
    pairs: torch.Tensor
    values: torch.Tensor
    groups: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]

    @classmethod
    def from_numpy(cls, overlap: BlockSparseOverlap, dtype: torch.dtype = torch.float64) -> TorchOverlap:
        start = overlap.atom_offsets
        groups = []
        for rows, cols, ks, index in overlap.group_indices():
            i, j = overlap.pairs[ks, 0], overlap.pairs[ks, 1]
            groups.append(
                (
                    torch.as_tensor(start[i][:, None] + np.arange(rows)[None, :]),
                    torch.as_tensor(start[j][:, None] + np.arange(cols)[None, :]),
                    torch.as_tensor(index),
                    torch.as_tensor(i != j),
                )
            )
        return cls(
            torch.as_tensor(overlap.atom_sizes),
            torch.as_tensor(overlap.pairs),
            torch.as_tensor(overlap.values, dtype=dtype),
            groups,
        )

    @property
    def n_functions(self) -> int:
        return int(self.atom_sizes.sum())

    def to(self, device: str | torch.device) -> TorchOverlap:
        groups = [tuple(t.to(device) for t in g) for g in self.groups]
        return TorchOverlap(self.atom_sizes.to(device), self.pairs.to(device), self.values.to(device), groups)  # type: ignore[arg-type]

    def to_numpy(self) -> BlockSparseOverlap:
        return BlockSparseOverlap(self.atom_sizes.cpu().numpy(), self.pairs.cpu().numpy(), self.values.detach().cpu().numpy())

    def _check(self, vector: torch.Tensor) -> None:
        if vector.shape[0] != self.n_functions:
            raise RhoDataError(f"overlap: vector has {vector.shape[0]} entries, the basis has {self.n_functions}")

    def _blocks(self) -> Iterable[Group]:
        for rows, cols, index, offdiag in self.groups:
            yield rows, cols, self.values[index].reshape(len(index), rows.shape[1], cols.shape[1]), offdiag

    def quadratic(self, vector: torch.Tensor) -> torch.Tensor:
        """v^T S v = sum over stored pairs of f_ij v_i^T S_ij v_j (f = 1 on the diagonal, 2 off it)."""
        self._check(vector)
        return group_quadratic(self._blocks(), vector)

    def matvec(self, vector: torch.Tensor) -> torch.Tensor:
        """S v for a vector (N,)."""
        self._check(vector)
        return group_matvec(self._blocks(), vector, self.n_functions)
