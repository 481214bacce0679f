"""The overlap metric on a batch: block-sparse S, loss (d - d_ref)^T S (d - d_ref).

The batch's structures are concatenated into one flat vector; their atom-pair blocks, grouped
by shape as rho-data groups them (:meth:`rho_data.BlockSparseOverlap.group_indices`), are
joined across structures into (G, rows, cols) tensors with gather indices into that vector, so that

    r^T S r = sum_{pairs (i, j), i <= j} f_ij r_i^T S_ij r_j,   f_ij = 1 (i = j) or 2 (i < j),

costs time linear in the number of stored atom pairs. A structure of at most DENSE_STRUCTURE_MAX
coefficients is held instead as its dense S_s (the same blocks and their transposes), stacked with
the structures of its size: a molecule's S is nearly all pairs anyway, and one product per
structure reads it faster than many small block products. For a
periodic structure the stored blocks are lattice sums (rho-data SCHEMA.md 3.2), so the loss is the
error per cell; ``loss.pair_cutoff`` then measures each pair's distance to the nearest image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rho_data import BlockSparseOverlap
from rho_data.torch_overlap import group_matvec, group_quadratic, split_diagonal

from .cells import pair_distances


@dataclass
class _Group:
    rows: torch.Tensor  # (G, r) indices into the flat vector
    cols: torch.Tensor  # (G, c)
    blocks: torch.Tensor  # (G, r, c)
    offdiag: torch.Tensor  # (G,) bool


#: a structure with at most this many coefficients keeps its overlap as one dense matrix (32 MiB): one
#: batched product per size instead of one per block shape (2.5x faster on small molecules, 1.5x the memory)
DENSE_STRUCTURE_MAX = 2048


class BatchOverlap:
    """Block-sparse overlap of a batch of structures, as torch tensors.

    Structures of at most DENSE_STRUCTURE_MAX coefficients are held as dense matrices (the stored
    blocks and their transposes, zeros for pairs not stored), stacked by size; larger ones as
    atom-pair blocks grouped by shape.
    """

    def __init__(
        self,
        overlaps: list[BlockSparseOverlap],
        offsets: np.ndarray,
        *,
        positions: list[np.ndarray] | None = None,
        cells: list[tuple[np.ndarray, np.ndarray]] | None = None,
        pair_cutoff: float | None = None,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
    ):
        self.size = int(offsets[-1])
        self.n_pairs = 0
        by_shape: dict[tuple[int, int], list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]] = {}
        by_size: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        for s, ov in enumerate(overlaps):
            starts = ov.atom_offsets[:-1]
            keep = None
            if pair_cutoff is not None and positions is not None:
                cell, pbc = cells[s] if cells is not None else (None, None)
                dist = pair_distances(positions[s], ov.pairs, cell, pbc)  # periodic: nearest image
                keep = (dist <= pair_cutoff) | (ov.pairs[:, 0] == ov.pairs[:, 1])
            n = int(ov.n_functions)
            matrix = np.zeros((n, n)) if n <= DENSE_STRUCTURE_MAX else None
            for r, c, ks, index in ov.group_indices(keep):  # rho-data's grouping of one structure's blocks
                i, j = ov.pairs[ks, 0], ov.pairs[ks, 1]
                rows = starts[i][:, None] + np.arange(r)[None]
                cols = starts[j][:, None] + np.arange(c)[None]
                values = ov.values[index].reshape(len(ks), r, c)
                self.n_pairs += len(ks)
                if matrix is not None:
                    matrix[rows[:, :, None], cols[:, None, :]] = values
                    matrix[cols[:, :, None], rows[:, None, :]] = values.transpose(0, 2, 1)
                else:
                    by_shape.setdefault((r, c), []).append((rows + offsets[s], cols + offsets[s], values, i != j))
            if matrix is not None:
                by_size.setdefault(n, []).append((offsets[s] + np.arange(n), matrix))
        self.groups: list[_Group] = []
        for _, parts in sorted(by_shape.items()):  # the same shape in several structures: one group
            rows, cols, blocks, offdiag = (np.concatenate([p[n] for p in parts]) for n in range(4))
            group = (
                torch.as_tensor(rows.astype(np.int64), device=device),
                torch.as_tensor(cols.astype(np.int64), device=device),
                torch.as_tensor(blocks, dtype=dtype, device=device),
                torch.as_tensor(offdiag, device=device),
            )
            self.groups.extend(_Group(*part) for part in split_diagonal(group))
        self.dense: list[tuple[torch.Tensor, torch.Tensor]] = [  # (index (B, n), matrices (B, n, n)) per size
            (
                torch.as_tensor(np.stack([p[0] for p in parts]).astype(np.int64), device=device),
                torch.as_tensor(np.stack([p[1] for p in parts]), dtype=dtype, device=device),
            )
            for _, parts in sorted(by_size.items())
        ]

    def _tuples(self):
        return ((g.rows, g.cols, g.blocks, g.offdiag) for g in self.groups)

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """S v for v of shape (N,) or (N, K)."""
        out = group_matvec(self._tuples(), v, self.size)
        flat, v2 = out.reshape(self.size, -1), v.reshape(self.size, -1)
        for index, matrices in self.dense:  # each coefficient belongs to one structure: no index repeats
            if v2.shape[1] == 1:  # one mv per structure reads S at ~1.6x the speed of bmm with one column
                for b in range(len(index)):
                    flat[index[b], 0] = torch.mv(matrices[b], v2[index[b], 0])
            else:
                flat[index] = torch.bmm(matrices, v2[index])
        return out

    def quadratic(self, v: torch.Tensor) -> torch.Tensor:
        """v^T S v, summed over atom-pair blocks (differentiable)."""
        total = group_quadratic(self._tuples(), v)
        for index, matrices in self.dense:
            total = total + torch.einsum("bn,bnm,bm->", v[index], matrices, v[index])
        return total


def overlap_loss(pred: torch.Tensor, ref: torch.Tensor, overlap: BatchOverlap) -> torch.Tensor:
    """sum_s (d_pred - d_ref)^T S_s (d_pred - d_ref)."""
    return overlap.quadratic(pred - ref)


def projection_loss(pred: torch.Tensor, projections: torch.Tensor, constant: torch.Tensor, overlap: BatchOverlap) -> torch.Tensor:
    """d^T S d - 2 d^T w + const, equal to the overlap form when w = S d_ref and const = d_ref^T S d_ref."""
    return overlap.quadratic(pred) - 2.0 * torch.dot(pred, projections) + constant


def batch_loss(model: torch.nn.Module, batch, form: str) -> torch.Tensor:
    """Sum over a :class:`rho_model.data.Batch`'s structures of the overlap-metric loss of ``model``.

    ``form`` ``overlap``: :func:`overlap_loss` (d - d_ref)^T S (d - d_ref); ``projections``:
    :func:`projection_loss` with the batch's projections w and constant d_ref^T S d_ref (with a
    pair cutoff, S is truncated but w is the dataset's S d_ref: the two forms then differ).
    """
    pred = batch.assemble(model(batch.features, batch.samples))
    if form == "projections":
        return projection_loss(pred, batch.projections, batch.constant, batch.overlap)
    return overlap_loss(pred, batch.reference, batch.overlap)
