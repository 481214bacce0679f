"""In-memory records: one structure with whatever a file kind stores about it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .overlap import BlockSparseOverlap


@dataclass
class Grid:
    """Real-space grid of one structure: points (bohr), integration weights, field values."""

    points: np.ndarray
    weights: np.ndarray
    values: dict[str, np.ndarray] = field(default_factory=dict)

    def integrate(self, name: str) -> float:
        return float(self.weights @ self.values[name])


@dataclass
class TargetValues:
    """One further target of a dataset structure (schema 1.1): its coefficients and, where the
    dataset stores them, its projections w = S d on the same overlap."""

    coefficients: np.ndarray
    projections: np.ndarray | None = None


@dataclass
class Structure:
    """One structure and its data.

    Geometry: ``numbers`` (atomic numbers), ``positions`` (Angstrom, (n, 3)), ``cell`` (rows are
    lattice vectors, Angstrom; zeros when not periodic) and ``pbc``. Which of the other fields
    are set depends on the file kind: datasets hold coefficients, projections, overlap and
    metadata; predictions hold coefficients and ``dataset_index``; grid files hold ``grid``.
    ``extras`` holds producer-specific flat float64 arrays declared when the file was created
    (for example the SCF density matrix, so that the producer can rebuild the SCF density).
    ``targets`` holds a dataset's further targets (fields other than the file's main target,
    for example ``homo``), each on the same overlap.
    """

    numbers: np.ndarray
    positions: np.ndarray
    cell: np.ndarray = field(default_factory=lambda: np.zeros((3, 3)))
    pbc: np.ndarray = field(default_factory=lambda: np.zeros(3, dtype=bool))
    label: str = ""
    coefficients: np.ndarray | None = None
    projections: np.ndarray | None = None
    overlap: BlockSparseOverlap | None = None
    metadata: dict[str, float] = field(default_factory=dict)
    dataset_index: int = -1
    grid: Grid | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    targets: dict[str, TargetValues] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.numbers = np.asarray(self.numbers, dtype=np.int32).reshape(-1)
        self.positions = np.asarray(self.positions, dtype=np.float64)
        self.cell = np.asarray(self.cell, dtype=np.float64)
        self.pbc = np.asarray(self.pbc, dtype=bool).reshape(-1)
        if self.pbc.shape == (1,):
            self.pbc = np.repeat(self.pbc, 3)

    @property
    def n_atoms(self) -> int:
        return len(self.numbers)

    @classmethod
    def from_ase(cls, atoms, **fields) -> Structure:
        """From an ``ase.Atoms`` (duck-typed: ASE is not a dependency of rho-data)."""
        return cls(
            numbers=atoms.numbers,
            positions=atoms.positions,
            cell=np.asarray(atoms.cell[:]),
            pbc=atoms.pbc,
            **fields,
        )

    def to_ase(self):
        """As an ``ase.Atoms`` (needs ASE)."""
        import ase

        return ase.Atoms(numbers=self.numbers, positions=self.positions, cell=self.cell, pbc=self.pbc)
