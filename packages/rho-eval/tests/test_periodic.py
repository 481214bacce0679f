"""Periodic structures: the cell's cube grid and slice plane (pure geometry), and rho-eval end to end on a
small pyscf-io dataset of Si2 diamond cells (Gamma, gth-szv): %NMAE per cell, properties skipped with the
reason, cube files of the cell, the slice through the cell."""

from __future__ import annotations

import numpy as np
import pytest

from rho_eval.spatial import cell_box_points, cell_plane_points

A = 5.43 / 0.529177210903  # diamond Si lattice constant, bohr
CELL = 0.5 * A * np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
POSITIONS = np.array([[0.0, 0.0, 0.0], [0.25 * A, 0.25 * A, 0.25 * A]])


def test_cell_box_is_the_cell():
    shape, points = cell_box_points(CELL, 0.5)
    lengths = np.linalg.norm(CELL, axis=1)
    assert shape == tuple(int(np.ceil(n / 0.5)) for n in lengths)
    assert len(points) == np.prod(shape)
    assert np.allclose(points[0], 0.0)
    assert np.allclose(points[1], CELL[2] / shape[2])  # z (a3) fastest, as cube files want
    assert np.allclose(points[shape[2]], CELL[1] / shape[1])
    fractions = points @ np.linalg.inv(CELL)
    assert fractions.min() > -1e-12 and fractions.max() < 1.0  # one cell, its periodic copy left out


def test_cell_plane_outline_and_image_atoms():
    points, s, t, atoms_2d, numbers, outline = cell_plane_points(POSITIONS, np.array([14, 14]), CELL, margin=2.0, resolution=31)
    assert len(points) == len(s) * len(t)
    assert np.allclose(outline[0], outline[-1])  # closed
    x, y = outline[:-1, 0], outline[:-1, 1]
    area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    assert area == pytest.approx(np.linalg.norm(np.cross(CELL[0], CELL[1])))
    normal = np.cross(CELL[0], CELL[1]) / np.linalg.norm(np.cross(CELL[0], CELL[1]))
    centre = POSITIONS.mean(axis=0)
    assert np.allclose((points - centre) @ normal, 0.0)  # the plane is spanned by a1 and a2
    # the window holds atoms of neighbouring images: more than the cell's own two, all silicon, all inside
    assert len(atoms_2d) > 2 and set(numbers) == {14}
    assert (atoms_2d >= [s[0] - 1e-9, t[0] - 1e-9]).all() and (atoms_2d <= [s[-1] + 1e-9, t[-1] + 1e-9]).all()
