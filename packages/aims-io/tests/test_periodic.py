"""Periodic structures: geometry.in with lattice vectors, k-points, bad cells, and prepare -> run ->
import end to end with the stand-in (FHI-aims itself cannot run here).

The periodic recording is CH4 in a 20 A cubic box: tight species are confined within 6 A, so no
auxiliary function overlaps one of another image and the recorded overlap is the Gamma-point
lattice-summed one of that cell (see tests/standin/aims_standin.py)."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase import Atoms
from conftest import CH4, FIXTURES, standin_command
from typer.testing import CliRunner

from aims_io.cli import app
from aims_io.control import control_text, read_keywords
from aims_io.errors import AimsIOError
from aims_io.floats import read_floats
from aims_io.geometry import Geometry, read_geometry, write_geometry
from aims_io.periodic import closest_pair, grid_from_density
from aims_io.settings import dump, load_settings
from rho_data import open_dataset

BOX = 20.0


@pytest.fixture
def cell_recording(tmp_path, monkeypatch):
    """The CH4 recording with lattice vectors: a 20 A cubic cell."""
    data = tmp_path / "rec"
    shutil.copytree(CH4, data, ignore=shutil.ignore_patterns("rholearn-processed"))
    text = (CH4 / "geometry.in").read_text()
    lattice = "".join(f"lattice_vector {' '.join(f'{BOX if k == i else 0.0:.6f}' for k in range(3))}\n" for i in range(3))
    (data / "geometry.in").write_text(lattice + text)
    monkeypatch.setenv("AIMS_STANDIN_DATA", str(data))
    for knob in ("AIMS_STANDIN_SLEEP", "AIMS_STANDIN_VERSION", "AIMS_STANDIN_SHUFFLE", "AIMS_STANDIN_LEGACY_FILES"):
        monkeypatch.delenv(knob, raising=False)
    return data


def cell_atoms() -> Atoms:
    g = read_geometry(CH4 / "geometry.in")
    return Atoms(numbers=g.numbers, positions=g.positions, cell=np.eye(3) * BOX, pbc=True)


def config(tmp_path, **dft) -> Path:
    cfg = tmp_path / "user.yaml"
    dft = {"species_defaults": str(FIXTURES / "species_defaults" / "tight"), **dft}
    dump({"dft": dft, "hpc": {"aims_command": standin_command()}}, cfg)
    return cfg


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_line(r, *parts):
    assert r.exit_code == 1, r.output
    lines = [x for x in r.output.strip().splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in r.output, r.output
    for part in parts:
        assert part in lines[0], lines[0]


def test_periodic_geometry_round_trip_and_atom_frac(tmp_path):
    cell = np.array([[5.43, 0, 0], [0.2, 5.43, 0], [0.1, 0.3, 5.43]])
    g = Geometry([14, 14], [[0, 0, 0], [1.3575, 1.3575, 1.3575]], cell, True)
    write_geometry(g, tmp_path / "geometry.in")
    back = read_geometry(tmp_path / "geometry.in")
    np.testing.assert_allclose(back.cell, cell, atol=1e-9)
    np.testing.assert_allclose(back.positions, g.positions, atol=1e-9)
    assert back.pbc.tolist() == [True] * 3
    frac = "".join(f"lattice_vector {' '.join(map(str, v))}\n" for v in cell) + "atom_frac 0.25 0.25 0.25 Si\natom 0 0 0 Si\n"
    (tmp_path / "frac.in").write_text(frac)
    np.testing.assert_allclose(read_geometry(tmp_path / "frac.in").positions[0], np.full(3, 0.25) @ cell)


@pytest.mark.parametrize(
    ("cell", "pbc", "positions", "message"),
    [
        (np.diag([5.0, 5.0, 20.0]), [True, True, False], [[0, 0, 0]], "pbc T T F"),
        (np.eye(3) * 5, False, [[0, 0, 0]], "has a cell but pbc F F F"),
        (np.zeros((3, 3)), True, [[0, 0, 0]], "no cell"),
        ([[5, 0, 0], [0, 5, 0], [5, 5, 0]], True, [[0, 0, 0]], "zero volume"),
        (np.eye(3) * 5, True, [[0.1, 2, 2], [4.9, 2, 2]], "0.200 A apart (through the cell boundary)"),
        (np.eye(3) * 0.3, True, [[0, 0, 0]], "atoms 1 and 1 are 0.300 A apart"),
    ],
)
def test_bad_cells_are_one_line(tmp_path, cell, pbc, positions, message):
    g = Geometry([1] * len(positions), positions, cell, pbc)
    with pytest.raises(AimsIOError, match="geometry.in") as err:
        write_geometry(g, tmp_path / "geometry.in")
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "geometry.in").exists()


def test_bad_cell_read_back_is_one_line(tmp_path):
    (tmp_path / "geometry.in").write_text("lattice_vector 5 0 0\nlattice_vector 0 5 0\nlattice_vector 5 5 0\natom 0 0 0 H\n")
    with pytest.raises(AimsIOError, match="zero volume"):
        read_geometry(tmp_path / "geometry.in")


def test_minimum_image_distance_of_a_skewed_cell():
    cell = np.array([[4.0, 0, 0], [2.0, 3.4641016, 0], [0, 0, 10.0]])  # hexagonal, 60 degrees
    i, j, d = closest_pair(cell, [[0.05, 0, 0], [3.95, 0, 0]])
    assert (i, j) == (0, 1) and d == pytest.approx(0.1)
    assert grid_from_density(np.eye(3) * 5.0, 3.5) == [5, 5, 5]  # ceil(2 pi / 5 * 3.5) = ceil(4.398)


def test_k_settings_checked_and_written_for_cells_only(tmp_path):
    for bad, message in (
        ("dft.k_grid=[2, 2]", "3 integers >= 1"),
        ("dft.k_grid=[2, 0, 1]", "3 integers >= 1"),
        ("dft.k_grid=2", "must be a list"),
        ("dft.k_grid_density=-1", "> 0"),
    ):
        with pytest.raises(AimsIOError, match="--set") as err:
            load_settings([], [bad])
        assert message in str(err.value)
    with pytest.raises(AimsIOError, match="both set"):
        load_settings([], ["dft.k_grid=[2, 2, 2]", "dft.k_grid_density=3.0"])
    species = "species H\n"
    cell = Geometry.from_ase(cell_atoms())
    molecule = read_geometry(CH4 / "geometry.in")
    dft = load_settings()["dft"]
    assert "k_grid" not in control_text("scf", dft, molecule, species)
    assert "k_grid                   1 1 1\n" in control_text("scf", dft, cell, species)
    dft = load_settings([], ["dft.k_grid_density=3.5"])["dft"]
    assert "k_grid_density           3.5\n" in control_text("ri", dft, cell, species)
    with pytest.raises(AimsIOError, match="is a molecule"):
        control_text("scf", dft, molecule, species)


def test_prepare_scf_refuses_bad_structures_naming_file_and_structure(tmp_path):
    cfg = config(tmp_path)
    molecule = Atoms(numbers=[1, 1], positions=[[0, 0, 0], [0.74, 0, 0]])
    slab = Atoms("H", positions=[[0, 0, 0]], cell=[5, 5, 20], pbc=[True, True, False])
    overlap = Atoms("H2", positions=[[0.1, 2, 2], [4.9, 2, 2]], cell=[5, 5, 5], pbc=True)
    flat = Atoms("H", positions=[[0, 0, 0]], cell=[[5, 0, 0], [0, 5, 0], [5, 5, 0]], pbc=True)
    boxed = Atoms("H2", positions=[[0, 0, 0], [0.74, 0, 0]], cell=[5, 5, 5], pbc=False)
    cases = [
        ([molecule, slab], [], "structure 1: pbc T T F"),
        ([overlap], [], "structure 0: atoms 1 and 2 are 0.200 A apart (through the cell boundary)"),
        ([flat], [], "structure 0: periodic structure with a cell of zero volume"),
        ([boxed], [], "structure 0: has a cell but pbc F F F"),
        ([molecule], ["--set", "dft.k_grid=[2,2,2]"], "structure 0: setting 'dft.k_grid' is set but this structure is a mol"),
        ([molecule, cell_atoms()], [], "structure 1: holds molecules and periodic structures"),
    ]
    for k, (frames, extra, message) in enumerate(cases):
        path = tmp_path / f"s{k}.xyz"
        ase.io.write(path, frames, format="extxyz")
        work = tmp_path / f"w{k}"
        one_line(invoke("prepare", "scf", path, "-w", work, "-c", cfg, *extra), str(path), message)
        assert not (work / "scf").exists()  # nothing written


def test_cell_prepare_run_import_end_to_end(tmp_path, cell_recording):
    structures = tmp_path / "cells.xyz"
    ase.io.write(structures, [cell_atoms(), cell_atoms()], format="extxyz")
    work, cfg = tmp_path / "w", config(tmp_path, k_grid=[2, 2, 1])
    r = invoke("prepare", "scf", structures, "-w", work, "-c", cfg)
    assert r.exit_code == 0, r.output
    scf = work / "scf" / "000000"
    assert read_keywords(scf / "control.in")["k_grid"] == "2 2 1"
    np.testing.assert_allclose(read_geometry(scf / "geometry.in").cell, np.eye(3) * BOX)
    assert invoke("run", "scf", "-w", work).exit_code == 0
    assert sorted(p.name for p in scf.glob("D_spin_*")) == [f"D_spin_01_kpt_00000{k}.csc" for k in (1, 2, 3, 4)]
    # the RI fit must use the SCF's k-points
    one_line(invoke("prepare", "ri", "-w", work, "--set", "dft.k_grid=[3,3,3]"), "the SCF ran with k-points", "3 3 3")
    r = invoke("prepare", "ri", "-w", work)
    assert r.exit_code == 0 and "prepared 2 RI-fit runs" in r.output, r.output
    ri = work / "ri" / "000000"
    assert len(list(ri.glob("D_spin_*"))) == 4 and read_keywords(ri / "control.in")["k_grid"] == "2 2 1"
    (ri / "D_spin_01_kpt_000003.csc").unlink()  # a missing k-point restart file fails that run only
    r = invoke("run", "ri", "-w", work)
    assert r.exit_code == 1 and "D_spin_01_kpt_000003.csc not found" in r.output
    r = invoke("import", work / "ri", tmp_path / "cells.h5")
    assert r.exit_code == 1 and "000000" in r.output  # the failed run is reported, the other imported
    with open_dataset(tmp_path / "cells.h5") as ds:
        assert ds.labels() == ["000001"]
        s = ds[0]
        np.testing.assert_allclose(s.cell, np.eye(3) * BOX)
        assert s.pbc.tolist() == [True] * 3
        assert s.metadata["n_k_points"] == 4
        extra = ds.provenance.extra
        assert extra["periodic"] is True and extra["kmesh"] == [2, 2, 1] and extra["k_points"] == "k_grid 2 2 1"
        assert extra["pseudo"] is None and "species        C" in extra["species_sections"]
        np.testing.assert_array_equal(s.coefficients, read_floats(CH4 / "ri_restart_coeffs.out"))  # the recorded ones
        w = s.overlap.matvec(s.coefficients)  # S d = w with the (lattice-summed) overlap
        np.testing.assert_allclose(w, s.projections, rtol=0, atol=1e-12 * np.abs(s.projections).max())


def test_k_grid_density_and_aims_out_count(tmp_path, cell_recording):
    from aims_io.prepare import prepare_ri, prepare_scf, run_dirs_now

    settings = load_settings([config(tmp_path, k_grid_density=0.3)])
    work = tmp_path / "w"
    run_dirs_now(prepare_scf(work, [Geometry.from_ase(cell_atoms())], settings), work, settings, "scf")
    ri, _ = prepare_ri(work, settings)
    run_dirs_now(ri, work, settings, "ri")
    assert read_keywords(ri[0] / "control.in")["k_grid_density"] == "0.3"
    # ceil(2 pi / 20 * 0.3) = 1 per direction in the stand-in's convention
    assert "| k-points reduced from:   1 to   1" in (ri[0] / "aims.out").read_text()
    # an aims.out whose k-point count disagrees with k_grid is refused at import
    from aims_io.importer import import_tree

    control = ri[0] / "control.in"
    control.write_text(control.read_text().replace("k_grid_density           0.3", "k_grid 2 2 2"))
    report = import_tree(work / "ri", tmp_path / "bad.h5")
    assert report.imported == [] and "reports 1 k-points, control.in has k_grid 2 2 2" in report.failed[0][1]


def test_molecule_run_with_k_grid_and_mixed_datasets_refused(tmp_path, standin_env, ch4_ri_tree):
    from aims_io.importer import import_tree

    run = tmp_path / "ri" / "mol"
    shutil.copytree(ch4_ri_tree / "000000", run, symlinks=True)
    control = run / "control.in"
    control.write_text(control.read_text().replace("xc ", "k_grid 1 1 1\nxc ", 1))
    report = import_tree(tmp_path / "ri", tmp_path / "m.h5")
    assert report.imported == [] and "but geometry.in is a molecule" in report.failed[0][1]


def test_slurm_array_of_cells(tmp_path, cell_recording, fake_sbatch):
    """Cells go into one SLURM array like molecules; the job script, run as SLURM would, runs the stand-in."""
    structures = tmp_path / "cells.xyz"
    ase.io.write(structures, [cell_atoms()] * 3, format="extxyz")
    work, cfg = tmp_path / "w", config(tmp_path, k_grid=[1, 1, 2])
    assert invoke("prepare", "scf", structures, "-w", work, "-c", cfg).exit_code == 0
    r = invoke("run", "scf", "-w", work, "--set", "hpc.backend=slurm")
    assert r.exit_code == 0 and "submitted SLURM array 4242 with 3 runs" in r.output, r.output
    (argv,) = [json.loads(line) for line in fake_sbatch.read_text().splitlines()]
    assert "--array=1-3" in argv
    for task in ("1", "2", "3"):
        env = {**os.environ, "SLURM_ARRAY_TASK_ID": task}
        done = subprocess.run(["bash", argv[-1]], cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
    assert all(len(list((work / "scf" / f"00000{k}").glob("D_spin_*"))) == 2 for k in range(3))
    assert invoke("prepare", "ri", "-w", work).exit_code == 0
    r = invoke("run", "ri", "-w", work, "--set", "hpc.backend=slurm")
    assert r.exit_code == 0 and "submitted SLURM array 4242 with 3 runs" in r.output, r.output


def test_rebuild_of_a_periodic_dataset_uses_its_k_points(tmp_path, cell_recording):
    from aims_io.importer import import_tree
    from aims_io.prepare import prepare_ri, prepare_scf, run_dirs_now
    from aims_io.runstate import aims_finished
    from rho_data import Provenance, Structure, create_predictions

    settings = load_settings([config(tmp_path, k_grid=[2, 1, 1])])
    work = tmp_path / "w"
    run_dirs_now(prepare_scf(work, [Geometry.from_ase(cell_atoms())], settings), work, settings, "scf")
    ri, _ = prepare_ri(work, settings)
    run_dirs_now(ri, work, settings, "ri")
    assert import_tree(work / "ri", tmp_path / "ds.h5").imported == ["000000"]
    with open_dataset(tmp_path / "ds.h5") as ds:
        s = ds[0]
        for path, cell in ((tmp_path / "pred.h5", s.cell), (tmp_path / "moved.h5", s.cell * 1.01)):
            pred = create_predictions(path, ds.basis, dataset_id=ds.dataset_id, provenance=Provenance(producer="t"))
            pred.append(Structure(s.numbers, s.positions, cell=cell, pbc=s.pbc, coefficients=s.coefficients, dataset_index=0))
            pred.close()
    cfg = config(tmp_path, k_grid=[3, 3, 3])  # the settings now differ: the dataset's k-points win
    r = invoke("export", tmp_path / "pred.h5", tmp_path / "ds.h5", "--name", "m", "-w", work, "-c", cfg)
    assert r.exit_code == 0, r.output
    rebuild = work / "rebuild" / "m" / "000000"
    assert read_keywords(rebuild / "control.in")["k_grid"] == "2 1 1"
    r = invoke("run", "rebuild/m", "-w", work, "-c", cfg)
    assert r.exit_code == 0 and aims_finished(rebuild), r.output
    r = invoke("export", tmp_path / "moved.h5", tmp_path / "ds.h5", "--name", "x", "-w", work, "-c", cfg)
    one_line(r, "moved.h5", "structure 0: geometry differs from dataset structure 0")
