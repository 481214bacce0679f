"""Periodic structures: the cell's cube grid and slice plane (pure geometry), and rho-eval end to end on a
small pyscf-io dataset of Si2 diamond cells (Gamma, gth-szv): %NMAE per cell, properties skipped with the
reason, cube files of the cell, the slice through the cell."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rho_data import Structure, create_predictions, open_dataset
from rho_data.field_builders import available_builders
from rho_data.units import BOHR_ANGSTROM
from rich.console import Console

from rho_eval import Settings, evaluate_files
from rho_eval.spatial import cell_box_points, cell_plane_points

QUIET = Console(quiet=True)

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


@pytest.fixture(scope="module")
def si2_dataset(tmp_path_factory) -> Path:
    """One rattled Si2 diamond cell computed by ``pyscf-io run`` (Gamma, gth-szv, GTH pseudopotential)."""
    from ase.build import bulk
    from ase.io import write

    if "pyscf-io" not in available_builders():
        pytest.skip("the pyscf-io field builder is not installed")
    tmp = tmp_path_factory.mktemp("si2")
    atoms = bulk("Si", "diamond", a=5.43)
    atoms.positions += np.random.default_rng(1).normal(0.0, 0.05, atoms.positions.shape)
    write(tmp / "si2.xyz", atoms, format="extxyz")
    command = [
        sys.executable,
        "-m",
        "pyscf_io",
        "run",
        str(tmp / "si2.xyz"),
        "-o",
        str(tmp / "si2.h5"),
        "--set",
        "cell_basis=gth-szv",
        "--set",
        "cell_smearing_ev=0.1",
        "-q",
    ]
    result = subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return tmp / "si2.h5"


def _predictions(dataset: Path, out: Path, transform) -> Path:
    with open_dataset(dataset) as ds:
        writer = create_predictions(out, ds.basis, dataset_id=ds.dataset_id)
        for i in range(len(ds)):
            s = ds[i]
            writer.append(
                Structure(s.numbers, s.positions, cell=s.cell, pbc=s.pbc, label=s.label, coefficients=transform(s.coefficients), dataset_index=i)
            )
        writer.close()
    return out


def _rows(report: Path) -> list[dict]:
    with open(report / "metrics.csv", newline="") as fh:
        return [{k: (v if k in ("label", "formula") else float(v)) for k, v in r.items()} for r in csv.DictReader(fh)]


def test_si2_errors_per_cell_and_properties_skipped(si2_dataset, tmp_path):
    # a uniformly scaled density: 1 % too many electrons everywhere, %NMAE vs RI = int |rho_RI| / int rho_RI >= 1
    # (random noise on the coefficients of a near-dependent basis gives no defined error)
    pred = _predictions(si2_dataset, tmp_path / "p.h5", lambda d: 1.01 * d)
    summary = evaluate_files(pred, si2_dataset, tmp_path / "r", Settings(cubes="0", cube_spacing_bohr=0.6), console=QUIET)
    (row,) = _rows(tmp_path / "r")
    with open_dataset(si2_dataset) as ds:
        s = ds[0]
        mesh = [s.metadata.get(f"grid_mesh_{axis}") for axis in "abc"]
    assert row["n_grid_points"] == np.prod(mesh)  # the cell's uniform grid
    assert 1.0 <= row["nmae_ri_percent"] < 1.02 and np.isfinite(row["nmae_scf_percent"])
    assert row["n_electrons_pred"] == pytest.approx(8.08, abs=2e-3)  # per cell: 4 valence electrons per Si
    assert row["n_electrons_coef_pred"] == pytest.approx(row["n_electrons_pred"], rel=1e-4)
    assert np.isnan(row["dipole_pred_debye"]) and np.isnan(row["electrostatic_energy_pred_ha"])
    assert summary["consistency"]["ok"], summary["consistency"]  # grid of the cell vs the lattice-summed overlap
    assert summary["periodic_structures"]["count"] == 1 and summary["periodic_structures"]["errors"] == "per unit cell"
    assert any("not defined per cell" in note for note in summary["notes"])
    assert "plots/density_difference_slice.png" in summary["files"]
    from ase.io.cube import read_cube

    (path,) = (tmp_path / "r" / "cubes").glob("000000*_predicted.cube")  # the stem holds the label
    with path.open() as fh:
        cube = read_cube(fh)
    assert np.allclose(cube["origin"], 0.0) and np.allclose(cube["atoms"].cell[:], s.cell, atol=1e-4)
    volume_bohr3 = abs(np.linalg.det(s.cell)) / BOHR_ANGSTROM**3
    assert cube["data"].mean() * volume_bohr3 == pytest.approx(row["n_electrons_pred"], rel=1e-2)


def test_si2_perfect_prediction_matches_the_stored_fit(si2_dataset, tmp_path):
    pred = _predictions(si2_dataset, tmp_path / "p.h5", lambda d: d)
    evaluate_files(pred, si2_dataset, tmp_path / "r", Settings(plots=False), console=QUIET)
    (row,) = _rows(tmp_path / "r")
    assert row["nmae_ri_percent"] == 0.0
    assert np.isfinite(row["nmae_scf_percent"]) and row["nmae_scf_percent"] < 20.0  # the fit floor of gth-szv's small etb set
    if np.isfinite(row["stored_fit_nmae_percent"]):  # pyscf-io measured its fit on the same grid of the cell
        assert row["nmae_scf_percent"] == pytest.approx(row["stored_fit_nmae_percent"], rel=1e-6)


def test_si2_points_are_periodic(si2_dataset):
    """build_on_points equals build on the cell's grid, and a lattice vector away gives the same values."""
    from rho_data.field_builders import FieldRequest, load_field_builder

    builder = load_field_builder("pyscf-io")
    with open_dataset(si2_dataset) as ds:
        request = FieldRequest(0, {"ri": ds.coefficients(0)})
        ((_, grid),) = list(builder.build(ds, [request]))
        assert grid.weights.sum() == pytest.approx(abs(np.linalg.det(ds[0].cell)) / BOHR_ANGSTROM**3)
        some = grid.points[::997]
        lattice = ds[0].cell / BOHR_ANGSTROM
        moved = builder.build_on_points(ds, request, some + lattice[0] - lattice[2])
        for name in ("ri", "scf"):
            assert np.allclose(moved[name], grid.values[name][::997], atol=1e-10)
