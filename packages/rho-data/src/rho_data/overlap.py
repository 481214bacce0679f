"""The overlap matrix of the auxiliary basis, stored block-sparse by atom pairs.

S_ab = integral phi_a(r) phi_b(r) dr. Only pairs of atoms (i, j) with i <= j whose functions
overlap are stored; the block of (j, i) is the transpose of the block of (i, j). Every
operation here costs time linear in the number of stored pairs; none builds a dense N x N
matrix, except :meth:`BlockSparseOverlap.to_dense`, which exists for tests and small systems.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import RhoDataError


@dataclass(frozen=True)
class BlockSparseOverlap:
    """Atom-pair blocks of a symmetric overlap matrix.

    ``pairs`` is a (P, 2) array of atom indices with i <= j, sorted; ``values`` concatenates
    the blocks, each of shape (atom_sizes[i], atom_sizes[j]) in row-major order.
    """

    atom_sizes: np.ndarray
    pairs: np.ndarray
    values: np.ndarray

    def __post_init__(self) -> None:
        sizes = np.asarray(self.atom_sizes, dtype=np.int64)
        pairs = np.asarray(self.pairs, dtype=np.int64).reshape(-1, 2)
        values = np.asarray(self.values, dtype=np.float64).reshape(-1)
        object.__setattr__(self, "atom_sizes", sizes)
        object.__setattr__(self, "pairs", pairs)
        object.__setattr__(self, "values", values)
        if len(pairs) and (pairs.min() < 0 or pairs.max() >= len(sizes)):
            raise RhoDataError(f"overlap: atom pair indices must lie in 0..{len(sizes) - 1}")
        if np.any(pairs[:, 0] > pairs[:, 1]):
            raise RhoDataError("overlap: atom pairs must be stored with i <= j")
        if self.block_offsets[-1] != len(values):
            raise RhoDataError(f"overlap: the pair blocks need {self.block_offsets[-1]} values, got {len(values)}")

    # ---- construction ---------------------------------------------------------------------
    @classmethod
    def from_dense(cls, matrix: np.ndarray, atom_sizes: np.ndarray, threshold: float = 0.0) -> BlockSparseOverlap:
        """Keep the atom-pair blocks (i <= j) whose largest |value| exceeds ``threshold``.

        Diagonal blocks are always kept.
        """
        matrix = np.asarray(matrix, dtype=np.float64)
        sizes = np.asarray(atom_sizes, dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        if matrix.shape != (offsets[-1], offsets[-1]):
            raise RhoDataError(f"overlap: dense matrix has shape {matrix.shape}, the atoms need {(offsets[-1],) * 2}")
        pairs, blocks = [], []
        for i in range(len(sizes)):
            for j in range(i, len(sizes)):
                block = matrix[offsets[i] : offsets[i + 1], offsets[j] : offsets[j + 1]]
                if i == j or (block.size and np.abs(block).max() > threshold):
                    pairs.append((i, j))
                    blocks.append(block.reshape(-1))
        values = np.concatenate(blocks) if blocks else np.zeros(0)
        return cls(sizes, np.array(pairs, dtype=np.int64).reshape(-1, 2), values)

    @classmethod
    def from_blocks(cls, atom_sizes: np.ndarray, blocks: dict[tuple[int, int], np.ndarray]) -> BlockSparseOverlap:
        """Build from ``{(i, j): block}`` with i <= j, in any order."""
        keys = sorted(blocks)
        values = [np.asarray(blocks[k], dtype=np.float64).reshape(-1) for k in keys]
        return cls(atom_sizes, np.array(keys, dtype=np.int64).reshape(-1, 2), np.concatenate(values) if values else np.zeros(0))

    # ---- layout ------------------------------------------------------------------------------
    @property
    def n_atoms(self) -> int:
        return len(self.atom_sizes)

    @property
    def n_functions(self) -> int:
        return int(self.atom_sizes.sum())

    @property
    def atom_offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.atom_sizes)])

    @property
    def block_offsets(self) -> np.ndarray:
        sizes = self.atom_sizes[self.pairs[:, 0]] * self.atom_sizes[self.pairs[:, 1]]
        return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    def block(self, k: int) -> np.ndarray:
        """The k-th stored block, shape (atom_sizes[i], atom_sizes[j])."""
        i, j = self.pairs[k]
        offsets = self.block_offsets
        return self.values[offsets[k] : offsets[k + 1]].reshape(self.atom_sizes[i], self.atom_sizes[j])

    def blocks(self):
        """Iterate over ((i, j), block)."""
        offsets = self.block_offsets
        for k, (i, j) in enumerate(self.pairs):
            yield (int(i), int(j)), self.values[offsets[k] : offsets[k + 1]].reshape(self.atom_sizes[i], self.atom_sizes[j])

    def group_indices(self, keep: np.ndarray | None = None):
        """Stored blocks grouped by shape, as gather indices: (rows, cols, pair indices ks (G,),
        indices into ``values`` (G, rows * cols)). ``values[index].reshape(G, rows, cols)`` are the
        blocks of pairs ``pairs[ks]``; other array libraries (the torch path of
        :mod:`rho_data.torch_dataset`, rho-model's batch overlap) do the same algebra as
        :meth:`matvec` with them. Shapes come in sorted order, pairs in stored order; ``keep``
        (a boolean mask over the pairs, e.g. a pair cutoff) leaves the other pairs out."""
        offsets = self.block_offsets
        shapes = np.stack([self.atom_sizes[self.pairs[:, 0]], self.atom_sizes[self.pairs[:, 1]]], axis=1)
        if keep is None:
            keep = np.ones(len(self.pairs), dtype=bool)
        for shape in np.unique(shapes[keep], axis=0):
            ks = np.flatnonzero((shapes == shape).all(axis=1) & keep)
            rows, cols = int(shape[0]), int(shape[1])
            yield rows, cols, ks, offsets[ks][:, None] + np.arange(rows * cols)[None, :]

    def _groups(self):
        """Stored blocks grouped by shape: (rows, cols, pair indices, (G, rows, cols) values)."""
        for rows, cols, ks, flat in self.group_indices():
            yield rows, cols, ks, self.values[flat].reshape(len(ks), rows, cols)

    # ---- algebra -------------------------------------------------------------------------------
    def matvec(self, vector: np.ndarray) -> np.ndarray:
        """S v for a vector (N,) or a stack of vectors (N, K)."""
        v = np.asarray(vector, dtype=np.float64)
        if v.shape[0] != self.n_functions:
            raise RhoDataError(f"overlap: vector has {v.shape[0]} entries, the basis has {self.n_functions}")
        squeeze = v.ndim == 1
        v2 = v.reshape(self.n_functions, -1)
        out = np.zeros_like(v2)
        start = self.atom_offsets
        for rows, cols, ks, blocks in self._groups():
            i, j = self.pairs[ks, 0], self.pairs[ks, 1]
            vi = v2[start[i][:, None] + np.arange(rows)[None, :]]  # (G, rows, K)
            vj = v2[start[j][:, None] + np.arange(cols)[None, :]]  # (G, cols, K)
            np.add.at(out, start[i][:, None] + np.arange(rows)[None, :], np.einsum("grc,gck->grk", blocks, vj))
            off = i != j
            if off.any():
                np.add.at(
                    out,
                    start[j[off]][:, None] + np.arange(cols)[None, :],
                    np.einsum("grc,grk->gck", blocks[off], vi[off]),
                )
        return out.reshape(v.shape) if squeeze else out

    def quadratic(self, vector: np.ndarray) -> float:
        """v^T S v."""
        v = np.asarray(vector, dtype=np.float64)
        return float(v @ self.matvec(v))

    def to_dense(self) -> np.ndarray:
        """The full symmetric matrix (tests and small systems only)."""
        n = self.n_functions
        start = self.atom_offsets
        dense = np.zeros((n, n))
        for (i, j), block in self.blocks():
            dense[start[i] : start[i + 1], start[j] : start[j + 1]] = block
            dense[start[j] : start[j + 1], start[i] : start[i + 1]] = block.T
        return dense

    def diagonal_blocks(self) -> list[np.ndarray]:
        """The one-centre blocks S_ii, one per atom (every atom has one)."""
        out: list[np.ndarray | None] = [None] * self.n_atoms
        for (i, j), block in self.blocks():
            if i == j:
                out[i] = block
        missing = [i for i, b in enumerate(out) if b is None]
        if missing:
            raise RhoDataError(f"overlap: atoms {missing} have no diagonal block")
        return out  # type: ignore[return-value]
