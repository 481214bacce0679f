"""``geometry.in``: molecules and periodic cells, ghost sites written as ``empty``.

Positions and lattice vectors are in Angstrom, as FHI-aims reads them. FHI-aims treats a
structure either as a cluster (no ``lattice_vector``) or as 3D periodic: partial periodicity,
a cell without pbc, pbc without a cell, a zero-volume cell and atoms closer than 0.5 A through
the boundary are refused (:func:`aims_io.periodic.check_cell`), when written and when read back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase.data import atomic_numbers, chemical_symbols

from rho_data.yaml_input import short_repr

from .errors import AimsIOError
from .layout import read_text, write_text
from .periodic import check_cell


@dataclass
class Geometry:
    """Atomic numbers, positions (Angstrom), cell rows (Angstrom), pbc and ghost flags."""

    numbers: np.ndarray
    positions: np.ndarray
    cell: np.ndarray = field(default_factory=lambda: np.zeros((3, 3)))
    pbc: np.ndarray = field(default_factory=lambda: np.zeros(3, dtype=bool))
    ghost: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.numbers = np.asarray(self.numbers, dtype=np.int64).reshape(-1)
        self.positions = np.asarray(self.positions, dtype=np.float64).reshape(-1, 3)
        self.cell = np.asarray(self.cell, dtype=np.float64).reshape(3, 3)
        self.pbc = np.asarray(self.pbc, dtype=bool).reshape(-1)
        if self.pbc.shape == (1,):
            self.pbc = np.repeat(self.pbc, 3)
        self.ghost = np.zeros(len(self.numbers), dtype=bool) if self.ghost is None else np.asarray(self.ghost, dtype=bool)

    @property
    def symbols(self) -> list[str]:
        return [chemical_symbols[int(z)] for z in self.numbers]

    @classmethod
    def from_ase(cls, atoms, ghost: np.ndarray | None = None) -> Geometry:
        """From ase.Atoms; ghost sites from ``ghost`` or a per-atom array ``atoms.arrays['ghost']``."""
        if ghost is None and "ghost" in atoms.arrays:
            ghost = atoms.arrays["ghost"]
        return cls(atoms.numbers, atoms.positions, np.asarray(atoms.cell[:]), atoms.pbc, ghost)


def geometry_text(geometry: Geometry, *, where: str = "geometry.in", structure: int | None = None) -> str:
    """The text of geometry.in."""
    g = geometry
    if not np.isfinite(g.positions).all():
        raise AimsIOError("positions are not finite", path=where, structure=structure)
    check_cell(g.cell, g.pbc, g.positions, where=where, structure=structure)
    lines = ["# geometry.in written by aims-io (Angstrom)"]
    if g.pbc.all():
        lines += [f"lattice_vector {v[0]:.10f} {v[1]:.10f} {v[2]:.10f}" for v in g.cell]
    for z, (x, y, zz), ghost in zip(g.numbers, g.positions, g.ghost):
        if not 0 < z < len(chemical_symbols):
            raise AimsIOError(f"atomic number {z} is not an element", path=where, structure=structure)
        lines.append(f"{'empty' if ghost else 'atom'} {x:.10f} {y:.10f} {zz:.10f} {chemical_symbols[int(z)]}")
    return "\n".join(lines) + "\n"


def write_geometry(geometry: Geometry, path: str | Path) -> None:
    write_text(path, geometry_text(geometry, where=str(path)), what="geometry.in")


def read_geometry(path: str | Path) -> Geometry:
    """Atoms (``atom``, ``atom_frac``), ghost sites (``empty``) and ``lattice_vector`` lines."""
    path = Path(path)
    if not path.is_file():
        raise AimsIOError("missing file", path=path)
    cell, numbers, positions, ghost, frac = [], [], [], [], []
    for k, raw in enumerate(read_text(path).splitlines(), 1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        kind = words[0]
        if kind not in ("lattice_vector", "atom", "atom_frac", "empty"):
            continue
        try:
            xyz = [float(w) for w in words[1:4]]
        except ValueError:
            raise AimsIOError(f"line {k}: cannot read coordinates from {short_repr(raw.strip())}", path=path) from None
        if len(xyz) != 3:
            raise AimsIOError(f"line {k}: expected 3 coordinates in {short_repr(raw.strip())}", path=path)
        if kind == "lattice_vector":
            cell.append(xyz)
            continue
        if len(words) < 5:
            raise AimsIOError(f"line {k}: no species in {short_repr(raw.strip())}", path=path)
        species = words[4]
        element = species.split("_")[0]
        if element not in atomic_numbers or element == "X":
            raise AimsIOError(f"line {k}: species '{species}' is not an element", path=path)
        numbers.append(atomic_numbers[element])
        positions.append(xyz)
        ghost.append(kind == "empty")
        frac.append(kind == "atom_frac")
    if not numbers:
        raise AimsIOError("has no atoms", path=path)
    if len(cell) not in (0, 3):
        raise AimsIOError(f"has {len(cell)} lattice_vector lines, expected 0 or 3", path=path)
    cell_array = np.array(cell) if cell else np.zeros((3, 3))
    pos = np.array(positions)
    frac_mask = np.array(frac)
    if frac_mask.any():
        if not cell:
            raise AimsIOError("atom_frac needs lattice vectors", path=path)
        pos[frac_mask] = pos[frac_mask] @ cell_array
    geometry = Geometry(np.array(numbers), pos, cell_array, np.full(3, bool(cell)), np.array(ghost))
    check_cell(geometry.cell, geometry.pbc, geometry.positions, where=path)
    return geometry
