"""The field builder at arbitrary points (``build_on_points``): equal to ``build`` on the DFT
grid, equal to the stored Gaussian radials times scipy's Y_lm, chunked, and through rho-eval's
cube files."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import FAST, MOLECULES, write_xyz
from test_basis import real_sph
from test_compute import context, structure

from pyscf_io import grid as grid_module
from pyscf_io.errors import PyscfIoError
from pyscf_io.task import append_to_part
from rho_data import Structure, create_predictions, open_dataset
from rho_data.field_builders import FieldRequest, load_field_builder

RHO_EVAL = shutil.which("rho-eval", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
BOHR = __import__("pyscf").lib.param.BOHR  # angstrom: PySCF converts the stored positions with it


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    """Water and methanol, STO-3G / def2-universal-jkfit / grid level 1."""
    path = tmp_path_factory.mktemp("fields") / "d.h5"
    ctx = context(**FAST)
    for name in ("water", "methanol"):
        from pyscf_io.compute import compute_structure

        append_to_part(path, ctx, compute_structure(structure(name), ctx))
    return path


def test_build_on_points_equals_build_on_the_dft_grid(small_dataset, monkeypatch):
    with open_dataset(small_dataset) as ds:
        builder = load_field_builder(ds.provenance.producer)
        rng = np.random.default_rng(3)
        for i in range(len(ds)):
            c = ds[i].coefficients
            request = FieldRequest(i, {"ri": c, "noisy": c + 0.01 * rng.normal(size=c.shape)})
            [(_, grid)] = list(builder.build(ds, [request]))
            monkeypatch.setattr(grid_module, "_CHUNK_BYTES", 1)  # 256 points per chunk: many chunks
            values = builder.build_on_points(ds, request, grid.points)
            monkeypatch.undo()
            assert set(values) == {"scf", "ri", "noisy"}
            assert len(grid.points) > 10 * 256
            for name in values:
                assert values[name].shape == (len(grid.points),)
                np.testing.assert_allclose(values[name], grid.values[name], rtol=0, atol=1e-12)


def test_build_on_points_is_the_stored_basis_times_real_spherical_harmonics(small_dataset):
    """rho(r) = sum_a sum_lnm c_alnm R_ln(|r - R_a|) Y_lm(r - R_a) from the dataset's own basis
    description (GaussianRadial) and scipy's Y_lm, at random points around methanol."""
    with open_dataset(small_dataset) as ds:
        s = ds[1]
        basis = ds.basis
        points = s.positions.mean(axis=0) / BOHR + np.random.default_rng(0).normal(scale=2.0, size=(300, 3))
        values = load_field_builder("pyscf-io").build_on_points(ds, FieldRequest(1, {"ri": s.coefficients}), points)
    expected = np.zeros(len(points))
    start = 0
    for z, position in zip(s.numbers, s.positions / BOHR):
        eb = basis[int(z)]
        d = points - position
        r = np.linalg.norm(d, axis=1)
        for l, sl in eb.l_slices():
            radials = [g for g in eb.gaussians if g.l == l]
            c = s.coefficients[start + sl.start : start + sl.stop].reshape(len(radials), 2 * l + 1)
            ylm = real_sph(l, d)
            expected += sum(g(r) * (ylm @ c[n]) for n, g in enumerate(radials))
        start += eb.n_functions
    np.testing.assert_allclose(values["ri"], expected, rtol=1e-10, atol=1e-12)


def test_build_on_points_refuses_bad_input(small_dataset):
    with open_dataset(small_dataset) as ds:
        builder = load_field_builder("pyscf-io")
        c = ds[0].coefficients
        with pytest.raises(PyscfIoError, match=r"structure 0: points must have shape \(n, 3\)"):
            builder.build_on_points(ds, FieldRequest(0, {"ri": c}), np.zeros((4, 2)))
        with pytest.raises(PyscfIoError, match="NaN or infinite"):
            builder.build_on_points(ds, FieldRequest(0, {"ri": c}), np.full((4, 3), np.nan))
        with pytest.raises(PyscfIoError, match="coefficients 'ri' have 3 values"):
            builder.build_on_points(ds, FieldRequest(0, {"ri": c[:3]}), np.zeros((4, 3)))
        with pytest.raises(PyscfIoError, match="may not be named 'scf'"):
            builder.build_on_points(ds, FieldRequest(0, {"scf": c}), np.zeros((4, 3)))


@pytest.mark.skipif(RHO_EVAL is None, reason="rho-eval is not installed")
def test_rho_eval_writes_cube_files(tmp_path):
    """``rho-eval PRED --reference DATA -o report --cubes 0`` on a water dataset made by our CLI;
    the cube files read back with ASE hold build_on_points' values on the cube's grid."""
    import ase.io
    from ase.io.cube import read_cube
    from ase.units import Bohr as ASE_BOHR

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    xyz = write_xyz(tmp_path / "w.xyz", [("water", MOLECULES["water"])])
    data, pred, report = tmp_path / "d.h5", tmp_path / "p.h5", tmp_path / "report"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pyscf_io",
            "run",
            str(xyz),
            "-o",
            str(data),
            "--basis",
            "sto-3g",
            "--aux-basis",
            "def2-universal-jkfit",
            "--grid-level",
            "1",
            "-q",
        ],
        check=True,
        env=env,
        capture_output=True,
    )
    with open_dataset(data) as ds:
        writer = create_predictions(pred, ds.basis, dataset_id=ds.dataset_id)
        s = ds[0]
        predicted = s.coefficients * 1.01
        writer.append(Structure(s.numbers, s.positions, label=s.label, coefficients=predicted, dataset_index=0))
        writer.close()
    result = subprocess.run(
        [RHO_EVAL, str(pred), "--reference", str(data), "-o", str(report), "--cubes", "0"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (report / "plots" / "density_difference_slice.png").stat().st_size > 0
    cubes = {p.name.split("water_")[1][: -len(".cube")]: p for p in (report / "cubes").glob("*.cube")}
    assert set(cubes) == {"predicted", "ri", "scf", "diff_predicted_minus_ri", "diff_predicted_minus_scf"}
    atoms = ase.io.read(cubes["ri"])
    np.testing.assert_allclose(atoms.positions, s.positions, atol=1e-5)
    with open_dataset(data) as ds:
        builder = load_field_builder("pyscf-io")
        for name, expect in (
            ("ri", lambda v: v["ri"]),
            ("predicted", lambda v: v["p"]),
            ("scf", lambda v: v["scf"]),
            ("diff_predicted_minus_ri", lambda v: v["p"] - v["ri"]),
        ):
            with cubes[name].open() as fh:
                cube = read_cube(fh)
            values = cube["data"]
            # the cube's grid: origin + spacing * (i, j, k), z fastest (cube files store bohr; ASE gives angstrom)
            origin, spacing = cube["origin"] / ASE_BOHR, cube["spacing"] / ASE_BOHR
            assert np.count_nonzero(spacing - np.diag(np.diag(spacing))) == 0
            axes = [origin[k] + spacing[k, k] * np.arange(values.shape[k]) for k in range(3)]
            points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
            fields = builder.build_on_points(ds, FieldRequest(0, {"ri": s.coefficients, "p": predicted}), points)
            assert np.abs(values).max() > 1e-3
            np.testing.assert_allclose(values.reshape(-1), expect(fields), rtol=1e-4, atol=1e-9)


# ---- PropertyBuilder: integrals for properties from coefficients -------------------------------


def test_property_builder_against_pyscf(small_dataset):
    """J is symmetric positive definite; 1/2 d^T J d and -v^T d of the RI coefficients equal the
    SCF density's Hartree and electron-nuclear energies within the fit error; the dipole and
    the electron count are PySCF's; v agrees with a grid integral of phi_P sum Z/|r-R|."""
    from pyscf import dft, scf

    from pyscf_io.basis import canonical_permutation

    with open_dataset(small_dataset) as ds:
        builder = load_field_builder(ds.provenance.producer)
        for i in range(len(ds)):
            s = ds[i]
            j = builder.coulomb_matrix(ds, i)
            v = builder.nuclear_potential(ds, i)
            props = builder.scf_properties(ds, i)
            assert np.array_equal(j, j.T) and np.linalg.eigvalsh(j).min() > 0
            _, mol, auxmol = builder.molecules(ds, i)
            nao = mol.nao_nr()
            dm = s.extras["density_matrix"].reshape(nao, nao)
            mf = scf.RHF(mol)
            assert props["hartree_energy_ha"] == pytest.approx(0.5 * np.einsum("ij,ji", mf.get_j(mol, dm), dm), rel=1e-12)
            assert props["electron_nuclear_energy_ha"] == pytest.approx(np.einsum("ij,ji", mol.intor("int1e_nuc"), dm), rel=1e-12)
            assert props["n_electrons"] == pytest.approx(mol.nelectron, abs=1e-8)
            np.testing.assert_allclose(props["dipole_au"], scf.hf.dip_moment(mol, dm, unit="AU", verbose=0), atol=1e-10)
            d = s.coefficients
            # Coulomb-metric fit: the RI Hartree energy is a lower bound within the fit error (jkfit, STO-3G)
            assert 0 < props["hartree_energy_ha"] - 0.5 * d @ j @ d < 1e-3 * props["hartree_energy_ha"]
            # the Coulomb metric fits the Hartree potential, not the density at the nuclei: 1 % here
            assert -v @ d == pytest.approx(props["electron_nuclear_energy_ha"], rel=1e-2)
            grids = dft.gen_grid.Grids(mol)
            grids.level = 4
            grids.build()
            phi = auxmol.eval_gto("GTOval_sph", grids.coords)[:, canonical_permutation(auxmol)]
            pot = sum(z / np.linalg.norm(grids.coords - r, axis=1) for z, r in zip(mol.atom_charges(), mol.atom_coords()))
            np.testing.assert_allclose(v, (grids.weights * pot) @ phi, rtol=1e-3, atol=1e-4)


def test_property_builder_canonical_order_on_p_and_d_functions(small_dataset):
    """Moving one p_y (m = -1) and one d function: J and v follow the canonical order, not PySCF's."""
    from pyscf_io.basis import canonical_permutation

    with open_dataset(small_dataset) as ds:
        builder = load_field_builder(ds.provenance.producer)
        _, mol, auxmol = builder.molecules(ds, 0)
        perm = canonical_permutation(auxmol)
        j_pyscf = auxmol.intor("int2c2e")
        j = builder.coulomb_matrix(ds, 0)
        names = [auxmol.ao_labels()[k].split()[-1] for k in perm]  # e.g. '2py', '3dxy', in canonical order
        p_y = next(k for k, name in enumerate(names) if "p" in name)
        d_first = next(k for k, name in enumerate(names) if "d" in name)
        assert [n[-2:] for n in names[p_y : p_y + 3]] == ["py", "pz", "px"]  # m = -1, 0, 1
        assert names[d_first].endswith("dxy") and names[d_first + 4].endswith("x2-y2")  # m = -2 .. 2
        assert perm[p_y] != p_y  # PySCF's order puts p_x first
        np.testing.assert_allclose(j[p_y], j_pyscf[perm[p_y]][perm], rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(j[d_first], j_pyscf[perm[d_first]][perm], rtol=1e-13, atol=1e-14)
        assert not np.allclose(j[p_y], j_pyscf[p_y][perm])  # PySCF's own order would differ
        v = builder.nuclear_potential(ds, 0)
        assert np.abs(v[[p_y, p_y + 1, p_y + 2]]).max() > 0  # the H atoms make the O p functions feel a potential


@pytest.mark.skipif(RHO_EVAL is None, reason="rho-eval is not installed")
def test_rho_eval_properties_with_this_builder_equal_pyscf(tmp_path, small_dataset):
    """End to end: ``rho-eval PRED --reference DATA`` with this field builder writes property
    columns equal to PySCF's, computed another way: the SCF dipole from ``dip_moment`` (nuclear
    minus electronic, debye, origin 0), its Hartree energy from ``get_j``, and for coefficient
    densities the electron count, dipole, Hartree energy (1/2 int rho V_H with V_H at the grid
    points from point-charge integrals) and electron-nuclear energy integrated on a DFT grid."""
    import csv
    import json

    from pyscf import dft, gto, scf

    from pyscf_io.basis import canonical_permutation

    kcal, debye = 627.509474, 2.541746473
    pred, report = tmp_path / "p.h5", tmp_path / "report"
    rng = np.random.default_rng(1)
    with open_dataset(small_dataset) as ds:
        predicted = {}
        writer = create_predictions(pred, ds.basis, dataset_id=ds.dataset_id)
        for i in range(len(ds)):
            s = ds[i]
            predicted[i] = 1.01 * s.coefficients + 1e-3 * rng.normal(size=s.coefficients.shape)
            writer.append(Structure(s.numbers, s.positions, label=s.label, coefficients=predicted[i], dataset_index=i))
        writer.close()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [RHO_EVAL, str(pred), "--reference", str(small_dataset), "-o", str(report), "--no-plots"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {int(r["dataset_index"]): r for r in csv.DictReader((report / "metrics.csv").read_text().splitlines())}
    assert set(rows) == {0, 1}
    with open_dataset(small_dataset) as ds:
        builder = load_field_builder("pyscf-io")
        for i, row in rows.items():
            s = ds[i]
            _, mol, auxmol = builder.molecules(ds, i)
            nao = mol.nao_nr()
            dm = s.extras["density_matrix"].reshape(nao, nao)
            grids = dft.gen_grid.Grids(mol)
            grids.level = 4
            grids.build()
            phi = auxmol.eval_gto("GTOval_sph", grids.coords)[:, canonical_permutation(auxmol)]
            points = gto.fakemol_for_charges(grids.coords)
            hartree_potential = gto.mole.intor_cross("int2c2e", points, auxmol)[:, canonical_permutation(auxmol)]
            nuclei = sum(z / np.linalg.norm(grids.coords - r, axis=1) for z, r in zip(mol.atom_charges(), mol.atom_coords()))
            nuclear_dipole = mol.atom_charges() @ mol.atom_coords()
            mu, e_h, e_es = {}, {}, {}
            for name, c in (("pred", predicted[i]), ("ri", s.coefficients)):
                rho = phi @ c
                if name == "pred":
                    assert float(row["n_electrons_coef_pred"]) == pytest.approx(grids.weights @ rho, abs=1e-5)
                    n_error = grids.weights @ rho - mol.nelectron
                    assert abs(n_error) > 1e-2 and float(row["n_electrons_error_scf"]) == pytest.approx(n_error, abs=1e-5)
                mu[name] = debye * (nuclear_dipole - (grids.weights * rho) @ grids.coords)
                e_h[name] = 0.5 * (grids.weights * rho) @ (hartree_potential @ c)
                e_es[name] = e_h[name] - (grids.weights * rho) @ nuclei
            mu["scf"] = scf.hf.dip_moment(mol, dm, unit="Debye", verbose=0)
            e_h["scf"] = 0.5 * np.einsum("ij,ji", scf.RHF(mol).get_j(mol, dm), dm)
            e_es["scf"] = e_h["scf"] + np.einsum("ij,ji", mol.intor("int1e_nuc"), dm)
            assert float(row["dipole_pred_debye"]) == pytest.approx(np.linalg.norm(mu["pred"]), abs=1e-4)
            assert float(row["hartree_energy_pred_ha"]) == pytest.approx(e_h["pred"], rel=1e-5)
            assert float(row["electrostatic_energy_pred_ha"]) == pytest.approx(e_es["pred"], rel=1e-5)
            for ref in ("ri", "scf"):
                assert float(row[f"dipole_{ref}_debye"]) == pytest.approx(np.linalg.norm(mu[ref]), abs=1e-4)
                assert float(row[f"dipole_error_{ref}_debye"]) == pytest.approx(np.linalg.norm(mu["pred"] - mu[ref]), abs=1e-4)
                hartree_error = kcal * (e_h["pred"] - e_h[ref])
                electrostatic_error = kcal * (e_es["pred"] - e_es[ref])
                assert abs(hartree_error) > 10 and abs(electrostatic_error) > 1  # the 1 % scaling is seen
                assert float(row[f"hartree_error_{ref}_kcal_mol"]) == pytest.approx(hartree_error, abs=0.05)
                assert float(row[f"electrostatic_error_{ref}_kcal_mol"]) == pytest.approx(electrostatic_error, abs=0.05)
    summary = json.loads((report / "summary.json").read_text())
    assert "property_errors" in summary
