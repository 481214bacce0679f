"""Synthetic structures with random but well-formed data, for tests and benchmarks.

Nothing here is physical: coefficients are random, the overlap is a random symmetric
positive-definite matrix. It exercises the format, not the science.
"""

from __future__ import annotations

import numpy as np

from .basis import AuxiliaryBasis
from .overlap import BlockSparseOverlap
from .records import Structure


def synthetic_basis(heavy_functions: int = 150) -> AuxiliaryBasis:
    """H with about 60 functions and C, N, O with about ``heavy_functions`` (lmax 4..6)."""
    heavy_l = [10, 9, 8, 6, 4, 2, 1]  # 10 + 27 + 40 + 42 + 36 + 22 + 13 = 190 functions at lmax 6
    scale = heavy_functions / sum(n * (2 * l + 1) for l, n in enumerate(heavy_l))
    heavy = [max(1, round(n * scale)) for n in heavy_l]
    return AuxiliaryBasis.from_counts({"H": [6, 5, 4, 2], "C": heavy, "N": heavy, "O": heavy})


def synthetic_structure(
    rng: np.random.Generator, basis: AuxiliaryBasis, n_atoms: int, *, overlap: bool = True, label: str = ""
) -> Structure:
    """A random molecule (H, C, N, O) with random coefficients, w = S d and an SPD overlap."""
    numbers = rng.choice([1, 1, 6, 7, 8], size=n_atoms)
    positions = rng.uniform(0.0, 1.5 * n_atoms ** (1 / 3) + 1.0, size=(n_atoms, 3))
    sizes = basis.atom_sizes(numbers)
    n = int(sizes.sum())
    d = rng.normal(size=n)
    s = Structure(numbers=numbers, positions=positions, label=label, coefficients=d)
    s.metadata = {"energy": float(rng.normal(-100.0, 10.0)), "scf_converged": 1.0}
    if overlap:
        b = rng.normal(size=(n, n)) / np.sqrt(n)
        dense = b @ b.T + 0.1 * np.eye(n)
        s.overlap = BlockSparseOverlap.from_dense(dense, sizes)
        s.projections = dense @ d
    else:
        s.projections = rng.normal(size=n)
    return s
