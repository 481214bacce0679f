"""Periodic structures: descriptors over lattice images, training and prediction keep cells."""

import ase
import ase.io
import numpy as np
import pytest
from ase.build import bulk
from helpers import train_small_run, water_boxes, write_periodic_dataset
from typer.testing import CliRunner

import rho_model
from rho_data import open_dataset, open_predictions
from rho_model.cells import featomic_frame, pair_distances
from rho_model.cli import app
from rho_model.data import Batch, load_records
from rho_model.descriptors import DescriptorSpec, LambdaSoap
from rho_model.model_setup import descriptor_store

runner = CliRunner()
SI_KEYS = ((0, 14), (1, 14), (2, 14), (3, 14))


@pytest.fixture(scope="module")
def si_calc():
    # cutoff 4 A > half the 3.84 A primitive vectors: an atom sees its own images
    return LambdaSoap(DescriptorSpec(4.0, 0.5, 0.3, 2, 3, (14,), SI_KEYS))


@pytest.fixture(scope="module")
def si_cell():
    atoms = bulk("Si", "diamond", a=5.43)
    atoms.rattle(0.05, seed=11)
    return atoms


def _close(a, b, atol=1e-10):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].shape == b[k].shape, k
        np.testing.assert_allclose(b[k], a[k], rtol=0, atol=atol)


def _differ(a, b, by=1e-3):
    assert max(np.abs(a[k] - b[k]).max() for k in a) > by


@pytest.mark.parametrize("repeat", [(2, 2, 1), (2, 2, 2)])
def test_supercell_atoms_have_the_features_of_the_primitive_atoms(si_calc, si_cell, repeat):
    primitive = si_calc.compute([si_cell])
    big = si_cell.repeat(repeat)  # atom k of the repeat is an image of primitive atom k % 2
    n = int(np.prod(repeat))
    _close({k: np.tile(v, (n, 1, 1)) for k, v in primitive.items()}, si_calc.compute([big]))


def test_periodic_frame_differs_from_its_atoms_without_pbc(si_calc, si_cell):
    molecule = ase.Atoms(numbers=si_cell.numbers, positions=si_cell.positions)
    _differ(si_calc.compute([si_cell]), si_calc.compute([molecule]))
    # a cell with pbc F F F is a molecule (featomic gets a zero cell, without its warning)
    no_pbc = si_cell.copy()
    no_pbc.pbc = False
    _close(si_calc.compute([molecule]), si_calc.compute([no_pbc]), atol=0)


def _slab(third):
    rng = np.random.default_rng(4)
    positions = np.concatenate([rng.uniform(0, 3, size=(4, 3)), [[0.5, 0.5, -1.0]]])  # one atom below z = 0
    cell = [[3.8, 0.0, 0.0], [0.6, 3.7, 0.0], third]
    return ase.Atoms(numbers=[14] * 5, positions=positions, cell=cell, pbc=[True, True, False])


def test_slab_is_periodic_in_plane_only(si_calc):
    slab = si_calc.compute([_slab([0.0, 0.0, 3.0])])
    vacuum = _slab([0.4, 0.0, 60.0])
    vacuum.pbc = True  # images along the third vector farther than the cutoff
    _close(slab, si_calc.compute([vacuum]), atol=1e-12)
    _close(slab, si_calc.compute([_slab([0.0, 0.0, 0.0])]), atol=1e-12)  # ASE's 2D cell without a third vector
    short = _slab([0.0, 0.0, 3.0])
    short.pbc = True
    _differ(slab, si_calc.compute([short]))
    _differ(slab, si_calc.compute([ase.Atoms(numbers=short.numbers, positions=short.positions)]))


def test_featomic_frame_refuses_a_flat_cell():
    atoms = bulk("Si", "diamond", a=5.43)
    atoms.cell[2] = atoms.cell[0]
    with pytest.raises(rho_model.RhoModelError, match="structure 3: periodic structure with a zero-volume cell"):
        featomic_frame(atoms, 4.0, "structure 3: ")


@pytest.mark.parametrize("third", [None, [0.0, 0.0, 3.0]])
def test_chunked_periodic_frame_equals_one_call(si_calc, si_cell, third):
    frame = si_cell.repeat((2, 2, 2)) if third is None else _slab(third).repeat((2, 2, 1))
    assert len(frame) > 5
    _close(si_calc.compute([frame], max_atoms=10_000), si_calc.compute([frame], max_atoms=5), atol=1e-12)


def test_pair_cutoff_uses_the_nearest_image():
    positions = np.array([[0.2, 0.5, 0.5], [3.4, 0.5, 0.5], [1.8, 2.0, 0.5]])
    pairs = np.array([[0, 0], [0, 1], [0, 2], [1, 2]])
    cell = np.diag([3.6, 4.0, 5.0])
    molecule = pair_distances(positions, pairs, None, None)
    periodic = pair_distances(positions, pairs, cell, np.array([True, True, True]))
    # brute force over images of atom j
    shifts = np.array([[a, b, c] for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)]) @ cell
    brute = [min(np.linalg.norm(positions[j] + shifts - positions[i], axis=1)) for i, j in pairs]
    np.testing.assert_allclose(periodic, brute, rtol=0, atol=1e-12)
    np.testing.assert_allclose(molecule, np.linalg.norm(positions[pairs[:, 1]] - positions[pairs[:, 0]], axis=1))
    assert periodic[1] == pytest.approx(0.4) and molecule[1] == pytest.approx(3.2)


@pytest.fixture(scope="module")
def water_cells(tmp_path_factory, water_target):
    path = tmp_path_factory.mktemp("cells") / "cells.h5"
    return write_periodic_dataset(path, water_boxes(12, seed=5), water_target.of_atoms)


@pytest.fixture(scope="module")
def cell_run(water_cells, tmp_path_factory):
    out = tmp_path_factory.mktemp("cell_run")
    return train_small_run(water_cells, out)


def test_training_features_and_pair_cutoff_use_the_cells(water_cells, water_target, small_options):
    with open_dataset(water_cells) as ds:
        assert all(ds.geometry(i).pbc.all() for i in range(len(ds)))
        store = descriptor_store(small_options, ds)
        idx = [0, 3]
        used = store.gather(idx)
        frames = [ds[i].to_ase() for i in idx]
        _close(water_target.calc.compute(frames), used, atol=1e-12)
        _differ(water_target.calc.compute([ase.Atoms(numbers=a.numbers, positions=a.positions) for a in frames]), used)
        records = load_records(ds, idx, used)
        assert records[1].pbc.all() and np.array_equal(records[1].cell, frames[1].cell[:])
        assert Batch(records, ds.basis).overlap.n_pairs == 12  # 6 pairs i <= j of 3 atoms per cell
        # 1.2 A keeps the self and O-H pairs (H-H 1.5 A, images 3.3 A and farther), also when an H
        # moves by a lattice vector (the lattice-summed overlap is the same)
        records[0].positions = records[0].positions + np.array([[0, 0, 0], frames[0].cell[0], -frames[0].cell[1]])
        assert Batch(records, ds.basis, pair_cutoff=1.2).overlap.n_pairs == 10


def test_supercell_from_extxyz_predicts_the_primitive_coefficients_repeated(cell_run, tmp_path):
    primitive = water_boxes(1, seed=99)[0]
    supercell = primitive.repeat((2, 1, 1))
    xyz = tmp_path / "cells.xyz"
    ase.io.write(xyz, [primitive, supercell], format="extxyz")
    assert "Lattice=" in xyz.read_text() and 'pbc="T T T"' in xyz.read_text()
    r = runner.invoke(app, ["predict", str(cell_run / "model.pt"), str(xyz), "-o", str(tmp_path / "pred.h5")])
    assert r.exit_code == 0, r.output
    model = rho_model.load(cell_run / "model.pt", max_atoms=2)  # the supercell also in chunks
    with open_predictions(tmp_path / "pred.h5") as pred:
        small, big = pred[0], pred[1]
        np.testing.assert_allclose(big.cell, supercell.cell[:], rtol=0, atol=1e-12)
        assert big.pbc.tolist() == [True] * 3 and small.pbc.tolist() == [True] * 3
        np.testing.assert_allclose(np.tile(small.coefficients, 2), big.coefficients, rtol=0, atol=1e-8)
        np.testing.assert_allclose(model.predict(xyz)[1].coefficients, big.coefficients, rtol=0, atol=1e-10)
    molecule = model.predict(ase.Atoms(numbers=primitive.numbers, positions=primitive.positions))
    assert np.abs(molecule.coefficients - small.coefficients).max() > 1e-3


def test_predictions_of_a_periodic_dataset_store_its_cells(cell_run, water_cells, tmp_path):
    r = runner.invoke(app, ["predict", str(cell_run / "model.pt"), str(water_cells), "-o", str(tmp_path / "p.h5")])
    assert r.exit_code == 0, r.output
    with open_dataset(water_cells) as ds, open_predictions(tmp_path / "p.h5") as pred:
        assert pred.dataset_id == ds.dataset_id and len(pred) == len(ds)
        for i in range(len(ds)):
            np.testing.assert_array_equal(pred[i].cell, ds[i].cell)
            np.testing.assert_array_equal(pred[i].pbc, ds[i].pbc)
        # the fitted structures (more unknowns than data: held-out ones are not) are reproduced
        for i in np.loadtxt(cell_run / "splits" / "train.idx", dtype=int, ndmin=1):
            reference = ds[int(i)].coefficients
            assert np.abs(pred[int(i)].coefficients - reference).max() < 1e-3 * np.abs(reference).max()
