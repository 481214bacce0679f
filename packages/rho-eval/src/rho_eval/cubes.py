"""Gaussian cube files of densities on a regular grid (written with ASE, readable by VMD).

A molecule's grid is an axis-aligned box around it; a cell's grid is the cell itself (origin 0,
voxel axes the lattice vectors / n, the cell's atoms, pbc kept).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rho_data import Structure
from rho_data.atomic import atomic_output

from .errors import RhoEvalError


def write_cube(
    path: Path,
    structure: Structure,
    origin_bohr: np.ndarray,
    shape: tuple[int, int, int],
    spacing_bohr: float | None,
    values: np.ndarray,
    comment: str,
) -> Path:
    """One cube file of ``values`` (z fastest): on the axis-aligned grid origin + spacing * (i, j, k),
    or, with ``spacing_bohr`` None, on the periodic structure's cell (i/n1, j/n2, k/n3) @ cell."""
    try:
        from ase.io.cube import write_cube as ase_write_cube
        from ase.units import Bohr
    except ImportError:
        raise RhoEvalError("writing cube files needs ASE: pip install 'rho-eval[cube]' (or pip install ase)") from None
    atoms = structure.to_ase()
    if spacing_bohr is not None:
        atoms.pbc = False
        atoms.cell = np.diag(np.array(shape, dtype=float) * spacing_bohr * Bohr)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, overwrite=True, what="cube file") as tmp, tmp.open("w") as fh:
        ase_write_cube(fh, atoms, data=np.asarray(values, dtype=np.float64).reshape(shape), origin=np.asarray(origin_bohr) * Bohr, comment=comment)
    return path
