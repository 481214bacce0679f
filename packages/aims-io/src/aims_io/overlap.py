"""``ri_ovlp.out`` -> block-sparse overlap by atom pairs, without a dense N x N copy.

FHI-aims writes S either as the row-major upper triangle (``ri_ovlp_write_triu``,
N(N+1)/2 values) or in full (N^2 values). The element (r, c), r <= c, of the triangle sits at
``r (2N - r + 1) / 2 + (c - r)``. Each atom-pair block (i <= j) is gathered straight from the
flat array with that formula (through the canonical permutation and signs of old FHI-aims
versions), so memory stays at the size of the file's values plus the stored blocks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rho_data import BlockSparseOverlap

from .errors import AimsIOError
from .floats import read_floats
from .order import AimsOrder


def read_overlap(
    path: str | Path, atom_sizes: np.ndarray, order: AimsOrder | None = None, threshold: float = 0.0, symmetry_tol: float = 1e-10
) -> BlockSparseOverlap:
    """The canonical block-sparse overlap; blocks with max |S| <= threshold are dropped (i != j)."""
    path = Path(path)
    sizes = np.asarray(atom_sizes, dtype=np.int64)
    n = int(sizes.sum())
    order = order or AimsOrder.identity(n)
    flat = read_floats(path)
    tri = n * (n + 1) // 2
    if len(flat) == tri:
        full = None
    elif len(flat) == n * n:
        full = flat.reshape(n, n)
        scale = max(1.0, float(np.abs(np.diagonal(full)).max()))
        rows = np.arange(0, n, max(1, n // 64))
        if np.abs(full[rows] - full[:, rows].T).max() > symmetry_tol * scale:
            raise AimsIOError("the full overlap matrix is not symmetric", path=path)
    else:
        raise AimsIOError(f"has {len(flat)} values; {n} functions need {tri} (upper triangle) or {n * n} (full)", path=path)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    blocks: dict[tuple[int, int], np.ndarray] = {}
    for i in range(len(sizes)):
        fa = order.perm[offsets[i] : offsets[i + 1]]
        sa = order.sign[offsets[i] : offsets[i + 1]]
        for j in range(i, len(sizes)):
            fb = order.perm[offsets[j] : offsets[j + 1]]
            sb = order.sign[offsets[j] : offsets[j + 1]]
            if full is not None:
                block = full[np.ix_(fa, fb)]
            else:
                r = np.minimum(fa[:, None], fb[None, :])
                c = np.maximum(fa[:, None], fb[None, :])
                block = flat[r * (2 * n - r + 1) // 2 + (c - r)]
            if order.legacy:
                block = block * sa[:, None] * sb[None, :]
            if i == j or np.abs(block).max() > threshold:
                blocks[(i, j)] = np.ascontiguousarray(block)
    return BlockSparseOverlap.from_blocks(sizes, blocks)
