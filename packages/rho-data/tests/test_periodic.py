"""Periodic structures: the writer, ``validate`` and ``info`` know cells and their pbc patterns."""

import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from rho_data import Provenance, RhoDataError, create_dataset, open_dataset
from rho_data.file_summary import periodic_counts
from rho_data.synthetic import synthetic_structure
from rho_data.validate import validate_file

CELL = np.array([[6.0, 0.0, 0.0], [1.0, 7.0, 0.0], [0.0, 0.5, 8.0]])


def cli(*args: object) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "rho_data.cli", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, COLUMNS="200"))


def info(path) -> str:
    result = cli("info", path)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def periodic_path(tmp_path, basis):
    """Structures 0 and 2 are 3D cells, 1 a slab (T T F), 3 a molecule."""
    rng = np.random.default_rng(5)
    path = tmp_path / "cells.h5"
    pbcs = ([True] * 3, [True, True, False], [True] * 3, [False] * 3)
    with create_dataset(path, basis, Provenance(producer="test", extra={"periodic": True, "kmesh": [1, 1, 1]})) as w:
        for k, pbc in enumerate(pbcs):
            s = synthetic_structure(rng, basis, 3, label=f"cell{k}")
            if any(pbc):
                s.cell, s.pbc = CELL * (1 + 0.1 * k), np.array(pbc)
            w.append(s)
    return path


def test_cells_round_trip_and_are_valid(periodic_path):
    assert validate_file(periodic_path) == []
    with open_dataset(periodic_path) as f:
        np.testing.assert_array_equal(f[1].cell, CELL * 1.1)
        assert f[1].pbc.tolist() == [True, True, False]
        assert f.geometry(3).pbc.tolist() == [False] * 3
        atoms = f[2].to_ase()
        np.testing.assert_array_equal(atoms.cell[:], CELL * 1.2)
        assert atoms.pbc.tolist() == [True] * 3


def test_validate_reports_a_pbc_pattern_producers_do_not_write(periodic_path):
    with h5py.File(periodic_path, "r+") as h5:
        h5["structures/pbc"][2] = [False, True, True]
    problems = validate_file(periodic_path)
    assert [(p.structure, p.field) for p in problems] == [(2, "pbc")]
    assert "pattern F T T" in problems[0].message
    result = cli("validate", periodic_path)
    assert result.returncode == 1 and "structure 2 (cell2): pbc: pattern F T T" in result.stderr


def test_validate_reports_a_non_finite_cell(periodic_path):
    with h5py.File(periodic_path, "r+") as h5:
        h5["structures/cell"][0, 1, 1] = np.inf
    problems = validate_file(periodic_path)
    assert [(p.structure, p.field, p.message) for p in problems] == [(0, "cell", "non-finite values")]


def test_writer_refuses_non_finite_and_flat_cells(tmp_path, basis):
    s = synthetic_structure(np.random.default_rng(0), basis, 2, label="bad")
    s.cell, s.pbc = CELL.copy(), np.array([True] * 3)
    s.cell[2, 2] = np.nan
    with create_dataset(tmp_path / "a.h5", basis, Provenance(producer="test")) as w:
        with pytest.raises(RhoDataError, match=r"structure 0: cell has non-finite values \(bad\)"):
            w.append(s)
        s.cell = CELL.copy()
        s.cell[2] = s.cell[0]
        with pytest.raises(RhoDataError, match="zero volume"):
            w.append(s)


def test_info_counts_periodic_structures_only_when_there_are_some(periodic_path, dataset_path):
    row = [line for line in info(periodic_path).splitlines() if "│ periodic " in line]
    assert len(row) == 1 and "3 of 4 (3D 2, 2D 1)" in row[0]
    assert "│ periodic " not in info(dataset_path)


def test_periodic_counts():
    assert periodic_counts(np.zeros((5, 3), dtype=bool)) is None
    pbc = np.array([[1, 1, 1], [1, 1, 0], [0, 0, 0], [1, 0, 0]], dtype=bool)
    assert periodic_counts(pbc) == "3 of 4 (3D 1, 2D 1, other 1)"
