"""Fields at arbitrary points (density-difference slice, cube files) via ``build_on_points``.

A periodic structure is pictured through its cell: the slice is the plane spanned by the first two
lattice vectors through the atoms' centroid, with the cell outline and the atoms of neighbouring
images; the cube files hold one unit cell (:mod:`rho_eval.cubes`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rho_data import RhoFile
from rho_data.field_builders import FieldRequest
from rho_data.orbital_fields import parse_field
from rho_data.units import BOHR_ANGSTROM

from . import plots
from .cubes import write_cube
from .errors import RhoEvalError
from .evaluate import PREDICTED, RI, SCF
from .spatial import box_points, cell_box_points, cell_plane_points, is_periodic, plane_points


def _fields(
    points_fn: Callable, dataset: RhoFile, index: int, coefficients: dict, points: np.ndarray, need_scf: bool, target: str | None
) -> dict[str, np.ndarray]:
    values = points_fn(dataset, FieldRequest(index=index, coefficients=coefficients, target=target), points)
    for name in list(coefficients) + ([SCF] if need_scf else []):
        if name not in values:
            raise RhoEvalError(f"the field builder's build_on_points returned no '{name}' field", path=dataset.path, structure=index)
        if np.shape(values[name]) != (len(points),):
            raise RhoEvalError(
                f"build_on_points returned {np.shape(values[name])} values of '{name}' for {len(points)} points", path=dataset.path, structure=index
            )
    return {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}


def _coefficients(dataset: RhoFile, predictions: RhoFile | None, row: int, index: int, target: str | None) -> dict[str, np.ndarray]:
    coefficients = {RI: dataset.coefficients(index, target)}
    if predictions is not None:
        coefficients[PREDICTED] = predictions.coefficients(row)
    return coefficients


def slice_plot(
    points_fn: Callable,
    dataset: RhoFile,
    predictions: RhoFile | None,
    row: int,
    index: int,
    *,
    margin: float,
    resolution: int,
    path: Path,
    target: str | None = None,
) -> Path:
    """Field difference (prediction - RI, or RI - SCF in fit-only runs) of ``target`` (None: the main one) on the
    molecule's plane (a cell: the a1-a2 plane through its atoms, see :func:`rho_eval.spatial.cell_plane_points`)."""
    s = dataset.geometry(index)
    outline = None
    numbers = s.numbers
    if is_periodic(s.pbc):
        cell = s.cell / BOHR_ANGSTROM
        points, u, v, atoms_2d, numbers, outline = cell_plane_points(s.positions / BOHR_ANGSTROM, s.numbers, cell, margin, resolution)
    else:
        points, u, v, atoms_2d = plane_points(s.positions / BOHR_ANGSTROM, margin, resolution)
    coefficients = _coefficients(dataset, predictions, row, index, target)
    values = _fields(points_fn, dataset, index, coefficients, points, predictions is None, target)
    shape = (len(u), len(v))
    field = "density" if parse_field(target or dataset.target).kind == "density" else (target or dataset.target)
    if predictions is not None:
        reference, difference, labels = values[RI], values[PREDICTED] - values[RI], (f"RI {field}", "predicted - RI")
    else:
        reference, difference, labels = values[SCF], values[RI] - values[SCF], (f"SCF {field}", "RI - SCF")
    title = f"structure {index} {s.label}".strip() + (" (periodic: one cell outlined, atoms of neighbouring images)" if outline is not None else "")
    return plots.density_slice(u, v, reference.reshape(shape), difference.reshape(shape), atoms_2d, numbers, title, labels, path, outline=outline)


def write_cubes(
    points_fn: Callable,
    dataset: RhoFile,
    predictions: RhoFile | None,
    row: int,
    index: int,
    *,
    spacing: float,
    margin: float,
    folder: Path,
    target: str | None = None,
) -> list[Path]:
    """Cube files of the predicted (or RI), reference and difference fields of ``target`` (None: the
    main one) of one structure; a further target's name is part of the file names. A cell's cube is
    the cell (about ``spacing`` bohr between points along each lattice vector; no margin)."""
    s = dataset.geometry(index)
    voxel: float | None = spacing
    if is_periodic(s.pbc):
        shape, points = cell_box_points(s.cell / BOHR_ANGSTROM, spacing)
        origin, voxel = np.zeros(3), None
    else:
        origin, shape, points = box_points(s.positions / BOHR_ANGSTROM, spacing, margin)
    coefficients = _coefficients(dataset, predictions, row, index, target)
    values = _fields(points_fn, dataset, index, coefficients, points, predictions is None, target)
    stem = f"{index:06d}" + (f"_{re.sub(r'[^A-Za-z0-9._-]+', '_', s.label)}" if s.label else "")
    if target not in (None, dataset.target):
        stem += "_" + re.sub(r"[^A-Za-z0-9._-]+", "_", target)
    fields: dict[str, Any] = {}
    if predictions is not None:
        fields.update({"predicted": values[PREDICTED], "ri": values[RI], "diff_predicted_minus_ri": values[PREDICTED] - values[RI]})
        if SCF in values:
            fields.update({"scf": values[SCF], "diff_predicted_minus_scf": values[PREDICTED] - values[SCF]})
    else:
        fields.update({"ri": values[RI], "scf": values[SCF], "diff_ri_minus_scf": values[RI] - values[SCF]})
    return [
        write_cube(folder / f"{stem}_{name}.cube", s, origin, shape, voxel, data, f"rho-eval {name} {target or dataset.target}, structure {index}")
        for name, data in fields.items()
    ]
