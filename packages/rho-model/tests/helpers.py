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


def periodic_overlap_of(numbers, positions, cell) -> np.ndarray:
    """Lattice-summed overlap sum_T <phi_i | phi_j(. - T)> of a 3D cell (PySCF's Gamma-point pbc_intor)."""
    from ase.data import chemical_symbols
    from pyscf.pbc import gto

    symbols = [chemical_symbols[z] for z in numbers]
    basis = {s: [[l, [a, 1.0]] for l, a in SHELLS[s]] for s in set(symbols)}
    c = gto.Cell(atom=list(zip(symbols, positions)), a=np.asarray(cell), basis=basis, unit="Angstrom", verbose=0)
    c.spin = c.nelectron % 2
    c.build()
    perm = _reorder(c)
    s = c.pbc_intor("int1e_ovlp", hermi=1)
    return np.asarray(s)[np.ix_(perm, perm)]


def water_boxes(n: int, seed: int = 0, side: float = 3.6) -> list[Any]:
    """Distorted waters in small skewed 3D cells (ase.Atoms; images lie within a 4 A cutoff).

    Positions are rounded to 1e-4 A and cells to 1e-3 A, so that extxyz files and supercells
    (``atoms.repeat``) hold them exactly."""
    import ase

    out = []
    for (numbers, positions), k in zip(water_geometries(n, seed=seed), range(n)):
        rng = np.random.default_rng(seed + 1000 + k)
        cell = np.round(side * np.eye(3) + rng.uniform(-0.3, 0.3, size=(3, 3)), 3)
        out.append(ase.Atoms(numbers=numbers, positions=np.round(positions + 1.5, 4), cell=cell, pbc=True))
    return out


def write_periodic_dataset(path: Path, frames, coefficient_fn, symbols=("H", "O")) -> Path:
    """A dataset of 3D cells (``ase.Atoms``): lattice-summed PySCF overlaps, ``coefficient_fn(atoms)``."""
    basis = basis_of(symbols)
    provenance = Provenance(producer="rho-model-tests", fit_metric="overlap", extra={"periodic": True, "kmesh": [1, 1, 1]})
    with create_dataset(path, basis, provenance) as w:
        for i, atoms in enumerate(frames):
            dense = periodic_overlap_of(atoms.numbers, atoms.positions, atoms.cell[:])
            d = coefficient_fn(atoms)
            ov = BlockSparseOverlap.from_dense(dense, basis.atom_sizes(atoms.numbers), threshold=1e-14)
            w.append(Structure.from_ase(atoms, label=f"cell{i}", coefficients=d, projections=dense @ d, overlap=ov))
    return path


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

        return self.of_atoms(ase.Atoms(numbers=numbers, positions=positions))

    def of_atoms(self, atoms) -> np.ndarray:
        """The target of an ``ase.Atoms`` (a periodic one with its cell)."""
        from rho_data.layout import BatchLayout

        numbers = atoms.numbers
        feats = self.calc.compute([atoms])
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


def train_small_run(dataset: Path, out: Path) -> Path:
    """``rho-train train`` of ``dataset`` into ``out/run`` (SMALL_DESCRIPTOR, no descriptor cache, exact
    fit at alpha 1e-8); the run folder."""
    import yaml
    from typer.testing import CliRunner

    from rho_model.cli import app

    opts = out / "opts.yaml"
    opts.write_text(yaml.safe_dump({"descriptor": dict(SMALL_DESCRIPTOR, cache_dir=None), "fit": {"alpha": 1e-8}}))
    result = CliRunner().invoke(app, ["train", str(dataset), "-o", str(out / "run"), "-c", str(opts)])
    assert result.exit_code == 0, result.output
    return out / "run"


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
