"""Periodic structures through the command lines: rattled Si2 diamond cells (Gamma, gth-szv) through
pyscf-io run -> rho-data split -> rho-train train -> rho-train predict -> rho-eval, the prediction of a
2x1x1 supercell, and the convention of the field builder's periodic SCF density against PySCF's own."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from test_chain import run, split_train_predict, validate

A_SI = 5.43  # angstrom
BOHR = 0.52917721092  # pyscf.lib.param.BOHR


def si2_cells(n: int, seed: int, rattle: float = 0.05):
    from ase.build import bulk

    rng = np.random.default_rng(seed)
    cells = []
    for k in range(n):
        atoms = bulk("Si", "diamond", a=A_SI)
        atoms.positions += rng.normal(0.0, rattle, atoms.positions.shape)
        atoms.info["label"] = f"Si2-{k}"
        cells.append(atoms)
    return cells


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> Path:
    from ase.io import write

    work = tmp_path_factory.mktemp("periodic_chain")
    write(work / "cells.xyz", si2_cells(6, seed=3), format="extxyz")
    # Si2 at the Gamma point has no gap: Fermi smearing lets every rattled cell converge
    run(
        "pyscf-io",
        "run",
        "cells.xyz",
        "-o",
        "data.h5",
        "--workers",
        "2",
        "--set",
        "cell_basis=gth-szv",
        "--set",
        "cell_smearing_ev=0.1",
        "-q",
        cwd=work,
    )
    validate(work / "data.h5", work)
    split_train_predict(work, 4)
    evaluate = ("rho-eval", "predictions.h5", "--reference", "data.h5", "-o", "report")
    run(*evaluate, "--cubes", "worst", "--set", "cube_spacing_bohr=0.5", cwd=work)
    return work


@pytest.mark.slow
def test_nmae_per_cell_and_properties_skipped(chain: Path) -> None:
    summary = json.loads((chain / "report" / "summary.json").read_text())
    assert summary["periodic_structures"]["count"] == 2
    assert summary["periodic_structures"]["errors"] == "per unit cell"
    assert any("not defined per cell" in note for note in summary["notes"])
    rows = list(csv.DictReader((chain / "report" / "metrics.csv").open()))
    assert len(rows) == 2
    for row in rows:
        for key in ("nmae_ri_percent", "nmae_scf_percent"):
            value = float(row[key])
            assert math.isfinite(value) and 0.0 < value < 20.0, (key, value)
        assert float(row["n_electrons_pred"]) == pytest.approx(8.0, abs=0.5)  # 4 valence electrons per Si (GTH)
        assert float(row["n_electrons_coef_pred"]) == pytest.approx(float(row["n_electrons_pred"]), rel=1e-3)
        assert math.isnan(float(row["dipole_pred_debye"])) and math.isnan(float(row["hartree_energy_pred_ha"]))
        assert float(row["coef_grid_rel_diff"]) < 1e-4  # grid of the cell vs the lattice-summed overlap
    assert summary["consistency"]["ok"]


@pytest.mark.slow
def test_cube_files_hold_the_cell(chain: Path) -> None:
    from ase.io.cube import read_cube

    from rho_data import open_dataset

    cubes = sorted((chain / "report" / "cubes").glob("*_predicted.cube"))
    assert len(cubes) == 1
    with cubes[0].open() as fh:
        cube = read_cube(fh)
    index = int(cubes[0].name.split("_")[0])
    with open_dataset(chain / "data.h5") as ds:
        s = ds.geometry(index)
    assert np.allclose(cube["origin"], 0.0)
    assert np.allclose(cube["atoms"].cell[:], s.cell, atol=1e-4)  # voxel axes * n = the lattice vectors
    assert np.allclose(cube["atoms"].positions, s.positions, atol=1e-4)
    values = cube["data"]
    assert values.shape == tuple(int(np.ceil(np.linalg.norm(a) / BOHR / 0.5)) for a in s.cell)
    volume = abs(np.linalg.det(s.cell)) / BOHR**3
    assert values.mean() * volume == pytest.approx(8.0, abs=0.5)  # electrons per cell


@pytest.mark.slow
def test_supercell_prediction_repeats_the_cell(chain: Path) -> None:
    """The model predicts a 2x1x1 supercell (larger than any training cell) from a geometry file: of
    an unrattled cell, the supercell's coefficients are the cell's twice over, 16 electrons."""
    from ase.build import bulk
    from ase.io import write

    from rho_data import open_dataset, open_predictions
    from rho_data.moments import electron_count

    cell = bulk("Si", "diamond", a=A_SI)
    write(chain / "cell.xyz", cell, format="extxyz")
    write(chain / "supercell.xyz", cell.repeat((2, 1, 1)), format="extxyz")
    run("rho-train", "predict", "model/model.pt", "cell.xyz", "-o", "cell.h5", cwd=chain)
    run("rho-train", "predict", "model/model.pt", "supercell.xyz", "-o", "supercell.h5", cwd=chain)
    with open_predictions(chain / "cell.h5") as one, open_predictions(chain / "supercell.h5") as two:
        c1, c2 = one.coefficients(0), two.coefficients(0)
        assert two[0].n_atoms == 4 and np.allclose(two.geometry(0).cell, cell.repeat((2, 1, 1)).cell)
        assert np.isfinite(c2).all()
        assert np.allclose(c2, np.tile(c1, 2), atol=1e-8 * np.abs(c1).max())
        with open_dataset(chain / "data.h5") as ds:  # the dataset's basis holds the Gaussian radial data
            n1, n2 = (electron_count(ds.basis, p.numbers(0), c) for p, c in ((one, c1), (two, c2)))
        assert n2 == pytest.approx(2 * n1) and n1 == pytest.approx(8.0, abs=0.5)


def test_bloch_density_is_pyscfs() -> None:
    """The builder's periodic SCF density (pyscf_io.grid.cell_ao_density) equals PySCF's own numint on the
    cell's uniform grid, at Gamma and with a 2x1x1 kmesh; it integrates to the valence electrons and is periodic."""
    from ase.build import bulk
    from pyscf.pbc import dft, gto
    from pyscf.pbc.dft import numint

    from pyscf_io.grid import cell_ao_density, uniform_grid

    atoms = bulk("Si", "diamond", a=A_SI)
    atoms.positions += np.random.default_rng(0).normal(0.0, 0.05, atoms.positions.shape)
    cell = gto.Cell(
        atom=[["Si", p] for p in atoms.positions], a=atoms.cell[:], basis="gth-szv", pseudo="gth-pade", ke_cutoff=40, verbose=0
    ).build()
    points, weights = uniform_grid(cell, cell.mesh)
    assert weights.sum() == pytest.approx(cell.vol)
    mf = dft.RKS(cell, xc="lda").run()
    dm = mf.make_rdm1()
    rho = cell_ao_density(cell, dm, points)
    assert np.allclose(rho, numint.eval_rho(cell, cell.pbc_eval_gto("GTOval_sph", points), dm), atol=1e-12)
    assert weights @ rho == pytest.approx(8.0, abs=1e-6)
    kpts = cell.make_kpts([2, 1, 1])
    kmf = dft.KRKS(cell, kpts=kpts, xc="lda").run()
    dmk = np.asarray(kmf.make_rdm1())
    rho_k = cell_ao_density(cell, dmk, points, kpts)
    reference = numint.KNumInt().eval_rho(cell, cell.pbc_eval_gto("GTOval_sph", points, kpts=kpts), dmk, hermi=1)
    assert np.allclose(rho_k, reference, atol=1e-12)
    assert weights @ rho_k == pytest.approx(8.0, abs=1e-6)
    shifted = cell_ao_density(cell, dmk, points[:500] + cell.lattice_vectors()[0] - 2 * cell.lattice_vectors()[2], kpts)
    assert np.allclose(shifted, rho_k[:500], atol=1e-12)
