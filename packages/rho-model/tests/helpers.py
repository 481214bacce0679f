"""Tiny datasets built in the tests: PySCF overlaps of a small Gaussian basis, equivariant targets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rho_data import AuxiliaryBasis, BlockSparseOverlap, Provenance, Structure, create_dataset

BOHR = 0.52917721092

# small uncontracted auxiliary basis: (l, exponent) shells listed l by l
SHELLS = {
    "H": [(0, 2.0), (0, 0.5), (1, 1.0), (2, 0.8)],
    "O": [(0, 8.0), (0, 2.0), (0, 0.6), (1, 3.0), (1, 0.9), (2, 1.2)],
    "C": [(0, 6.0), (0, 1.5), (0, 0.5), (1, 2.0), (1, 0.7), (2, 1.0)],
}


def basis_of(symbols) -> AuxiliaryBasis:
    counts = {}
    for s in symbols:
        ls = [l for l, _ in SHELLS[s]]
        counts[s] = [ls.count(l) for l in range(max(ls) + 1)]
    return AuxiliaryBasis.from_counts(counts)


def _reorder(mol) -> np.ndarray:
    """PySCF AO order -> canonical (p functions x, y, z -> y, z, x)."""
    perm = []
    for shell in range(mol.nbas):
        start, stop = mol.ao_loc[shell], mol.ao_loc[shell + 1]
        idx = list(range(start, stop))
        if mol.bas_angular(shell) == 1:
            idx = [idx[1], idx[2], idx[0]]
        perm.extend(idx)
    return np.array(perm)


def overlap_of(numbers, positions) -> np.ndarray:
    from ase.data import chemical_symbols
    from pyscf import gto

    symbols = [chemical_symbols[z] for z in numbers]
    basis = {s: [[l, [a, 1.0]] for l, a in SHELLS[s]] for s in set(symbols)}
    mol = gto.M(atom=list(zip(symbols, positions)), basis=basis, unit="Angstrom", spin=None, verbose=0)
    mol.spin = mol.nelectron % 2
    mol.build()
    perm = _reorder(mol)
    s = mol.intor("int1e_ovlp")
    return s[np.ix_(perm, perm)]


def water_geometries(n: int, seed: int = 0, scale: float = 0.08) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    base = np.array([[0.0, 0.0, 0.1173], [0.0, 0.7572, -0.4692], [0.0, -0.7572, -0.4692]])
    out = []
    for _ in range(n):
        out.append((np.array([8, 1, 1]), base + rng.normal(scale=scale, size=base.shape)))
    return out


def organic_geometries(n: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    from ase.build import molecule

    rng = np.random.default_rng(seed)
    mols = [molecule(name) for name in ("CH3OH", "HCOOH", "CH4", "H2O", "CH2O")]
    out = []
    for i in range(n):
        m = mols[i % len(mols)]
        out.append((m.numbers.copy(), m.positions + rng.normal(scale=0.05, size=m.positions.shape)))
    return out


def write_dataset(path: Path, geometries, coefficient_fn, symbols=("H", "O")) -> Path:
    """A rho-data dataset with PySCF overlaps and coefficients from ``coefficient_fn(numbers, positions)``."""
    basis = basis_of(symbols)
    w = create_dataset(path, basis, Provenance(producer="rho-model-tests", fit_metric="overlap"))
    for i, (numbers, positions) in enumerate(geometries):
        dense = overlap_of(numbers, positions)
        d = coefficient_fn(numbers, positions)
        ov = BlockSparseOverlap.from_dense(dense, basis.atom_sizes(numbers), threshold=1e-14)
        w.append(
            Structure(numbers=numbers, positions=positions, label=f"s{i}", coefficients=d, projections=dense @ d, overlap=ov)
        )
    w.close()
    return path


class EquivariantTarget:
    """Coefficients = a fixed random linear map of the (scaled) lambda-SOAP features, plus a constant on l = 0."""

    def __init__(self, basis: AuxiliaryBasis, descriptor_options: dict, seed: int = 1):
        from rho_data.elements import atomic_number
        from rho_data.layout import basis_keys
        from rho_model.descriptors import DescriptorSpec, LambdaSoap

        keys = basis_keys(basis)
        self.basis = basis
        self.calc = LambdaSoap(DescriptorSpec.from_options(descriptor_options, keys, [atomic_number(s) for s in basis.symbols]))
        rng = np.random.default_rng(seed)
        sizes = self.calc.sizes
        self.weights = {k: rng.normal(size=(sizes[k], basis[k[1]].n_radial[k[0]])) / np.sqrt(sizes[k]) for k in keys}
        self.bias = {k: rng.normal(size=basis[k[1]].n_radial[k[0]]) for k in keys if k[0] == 0}

    def __call__(self, numbers, positions) -> np.ndarray:
        import ase

        from rho_data.layout import BatchLayout

        feats = self.calc.compute([ase.Atoms(numbers=numbers, positions=positions)])
        layout = BatchLayout.build(self.basis, [np.asarray(numbers)])
        blocks = {}
        for k, x in feats.items():
            y = 20.0 * x @ self.weights[k]
            if k in self.bias:
                y = y + self.bias[k]
            blocks[k] = y
        return layout.to_flat(blocks)


SMALL_DESCRIPTOR = {
    "cutoff": 4.0,
    "cutoff_width": 0.5,
    "density_width": 0.3,
    "max_radial": 2,
    "max_angular": 3,
    "neighbor_types": None,
    "body_order": 3,
    "pca_components": None,
    "max_atoms": 500,
    "cache_chunk": 100,
    "cache_dir": None,
}


def cluster(n_molecules: int, seed: int = 0, spacing: float = 2.9) -> Any:
    """Water molecules on a cubic grid, random orientations, atoms in scrambled order."""
    import ase

    rng = np.random.default_rng(seed)
    side = int(np.ceil(n_molecules ** (1 / 3)))
    sites = (
        np.array([[i, j, k] for i in range(side) for j in range(side) for k in range(side)], dtype=float)[:n_molecules] * spacing
    )
    mono = np.array([[0.0, 0.0, 0.1173], [0.0, 0.7572, -0.4692], [0.0, -0.7572, -0.4692]])
    positions = np.concatenate([s + mono @ np.linalg.qr(rng.normal(size=(3, 3)))[0].T for s in sites])
    order = rng.permutation(len(positions))  # scrambled atom order: chunks must not rely on it
    return ase.Atoms(numbers=np.tile([8, 1, 1], n_molecules)[order], positions=positions[order])
