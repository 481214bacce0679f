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
