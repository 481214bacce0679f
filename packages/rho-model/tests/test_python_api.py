"""rho_model.load(...).predict(...): the notebook API gives what `rho-train predict` writes, with its layout."""

import subprocess
import sys

import ase.io
import numpy as np
import pytest
from helpers import train_small_run
from typer.testing import CliRunner

import rho_model
from rho_data import RhoDataError, open_dataset, open_predictions
from rho_model.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def run(water_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("api")
    return train_small_run(water_dataset, out)


def test_predict_atoms_equals_cli(run, water_dataset, tmp_path):
    r = runner.invoke(app, ["predict", str(run / "model.pt"), str(water_dataset), "-o", str(tmp_path / "cli.h5")])
    assert r.exit_code == 0, r.output
    with open_dataset(water_dataset) as ds:
        frames = [ds[i].to_ase() for i in range(5)]
    model = rho_model.load(run / "model.pt")
    with open_predictions(tmp_path / "cli.h5") as cli:
        for i, atoms in enumerate(frames):
            p = model.predict(atoms)
            assert isinstance(p, rho_model.Prediction)
            np.testing.assert_allclose(p.coefficients, cli[i].coefficients, rtol=0, atol=1e-12)
            np.testing.assert_array_equal(p.numbers, atoms.numbers)
            np.testing.assert_allclose(p.positions, atoms.positions)
    # a geometry file: the same structures as ASE reads them back (extxyz rounds positions)
    xyz = tmp_path / "w.xyz"
    ase.io.write(xyz, frames)
    r = runner.invoke(app, ["predict", str(run / "model.pt"), str(xyz), "-o", str(tmp_path / "xyz.h5")])
    assert r.exit_code == 0, r.output
    with open_predictions(tmp_path / "xyz.h5") as cli:
        for i, atoms in enumerate(ase.io.read(xyz, index=":")):
            np.testing.assert_allclose(model.predict(atoms).coefficients, cli[i].coefficients, rtol=0, atol=1e-12)


def test_list_equals_single_and_file_input(run, water_dataset, tmp_path):
    model = rho_model.load(run / "model.pt")
    with open_dataset(water_dataset) as ds:
        frames = [ds[i].to_ase() for i in range(4)]
    many = model.predict(frames)
    assert isinstance(many, list) and len(many) == 4
    assert model.predict([]) == []
    for atoms, p in zip(frames, many):
        np.testing.assert_allclose(p.coefficients, model.predict(atoms).coefficients, rtol=0, atol=1e-12)
    xyz = tmp_path / "w.xyz"
    ase.io.write(xyz, frames)
    for p, q in zip(model.predict(xyz), model.predict(ase.io.read(xyz, index=":"))):
        np.testing.assert_allclose(p.coefficients, q.coefficients, rtol=0, atol=1e-12)
        assert p.dataset_index == -1
    from_dataset = model.predict(water_dataset, indices=[2, 0])
    assert [p.dataset_index for p in from_dataset] == [2, 0]
    np.testing.assert_allclose(from_dataset[1].coefficients, many[0].coefficients, rtol=0, atol=1e-12)


def test_blocks_layout_matches_basis(run, water_dataset):
    model = rho_model.load(run / "model.pt")
    with open_dataset(water_dataset) as ds:
        atoms = ds[0].to_ase()
    p = model.predict(atoms)
    basis = p.basis
    total = 0
    for sym in basis.symbols:
        z = int(ase.data.atomic_numbers[sym])
        n_atoms = int(np.sum(p.numbers == z))
        for l, n in enumerate(basis[sym].n_radial):
            if n:
                assert p.blocks[f"l{l}_z{z}"].shape == (n_atoms, 2 * l + 1, n)
                total += p.blocks[f"l{l}_z{z}"].size
    assert total == p.coefficients.size
    # first atom's first l = 0 radial function is the first canonical coefficient
    z0 = int(p.numbers[0])
    assert p.blocks[f"l0_z{z0}"][0, 0, 0] == p.coefficients[0]
    tm = p.to_tensormap()
    assert len(tm.keys) == len(p.blocks)


def test_write_predictions_file(run, water_dataset, tmp_path):
    model = rho_model.load(run / "model.pt")
    preds = model.predict(water_dataset, indices=[1, 3])
    with open_dataset(water_dataset) as ds:
        dataset_id = ds.dataset_id
    out = model.write(tmp_path / "p.h5", preds, dataset_id=dataset_id)
    with open_predictions(out) as f:
        assert f.dataset_id == dataset_id
        assert [f[i].dataset_index for i in range(len(f))] == [1, 3]
        np.testing.assert_array_equal(f[1].coefficients, preds[1].coefficients)
    with pytest.raises(RhoDataError, match="already exists"):
        model.write(out, preds)
    model.write(out, preds[:1], overwrite=True)
    with open_predictions(out) as f:
        assert len(f) == 1


def test_bad_input_is_one_error(run):
    model = rho_model.load(run / "model.pt")
    with pytest.raises(rho_model.RhoModelError, match="item 1"):
        model.predict([ase.Atoms("H2O", positions=np.eye(3)), "water"])
    with pytest.raises(rho_model.RhoModelError, match="not known to the model"):
        model.predict(ase.Atoms("CH4", positions=np.eye(5, 3)))
    with pytest.raises(rho_model.RhoModelError, match="no such file"):
        model.predict("/nonexistent/file.xyz")


def test_import_is_cheap():
    code = "import sys, rho_model; print('torch' in sys.modules, 'featomic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
