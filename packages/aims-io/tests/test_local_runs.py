"""Run orchestration with the local backend and the stand-in executable."""

import ase.io
import numpy as np
from ase import Atoms
from conftest import CH4, settings_for, standin_command
from typer.testing import CliRunner

from aims_io.cli import app
from aims_io.layout import FAILED_FILE, read_json
from aims_io.settings import dump
from rho_data import open_dataset


def write_structures(path, ch4_dir):
    from aims_io.geometry import read_geometry

    geometry = read_geometry(ch4_dir / "geometry.in")
    g = Atoms(numbers=geometry.numbers, positions=geometry.positions)
    water = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])  # not recorded: the stand-in crashes
    ase.io.write(path, [g, water, g.copy()], format="extxyz")


def test_prepare_run_status_resume_import(tmp_path, standin_env):
    work = tmp_path / "work"
    work.mkdir()
    structures = tmp_path / "s.xyz"
    write_structures(structures, CH4)
    cfg = tmp_path / "user.yaml"
    dump(
        {
            "dft": {"species_defaults": str(CH4.parent / "species_defaults" / "tight")},
            "hpc": {"aims_command": standin_command(), "max_parallel": 2},
        },
        cfg,
    )
    cli = CliRunner()
    r = cli.invoke(app, ["prepare", "scf", str(structures), "-w", str(work), "-c", str(cfg)])
    assert r.exit_code == 0, r.output
    assert (work / "aims-io.yaml").is_file()
    r = cli.invoke(app, ["status", "scf", "-w", str(work), "--json"])
    assert r.output.count('"state": "not started"') == 3
    r = cli.invoke(app, ["run", "scf", "-w", str(work)])
    assert r.exit_code == 1  # one run failed ...
    assert "000001" in r.output and "stand-in" in r.output  # ... with the end of its aims.out as reason
    r = cli.invoke(app, ["status", "scf", "-w", str(work), "--json"])
    assert r.output.count('"state": "finished"') == 2 and r.output.count('"state": "failed"') == 1
    assert "not the recorded one" in read_json(work / "scf" / "000001" / FAILED_FILE)["reason"]
    # resume: finished runs are not run again, the failed one is
    mtime = (work / "scf" / "000000" / "aims.out").stat().st_mtime_ns
    r = cli.invoke(app, ["run", "scf", "-w", str(work)])
    assert "ran 1 runs (2 already finished or running)" in r.output
    assert (work / "scf" / "000000" / "aims.out").stat().st_mtime_ns == mtime
    assert (work / "scf" / "000001" / "aims.out.previous").is_file()
    # RI fits for the finished SCF runs, reusing their restart files
    r = cli.invoke(app, ["prepare", "ri", "-w", str(work)])
    assert "prepared 2 RI-fit runs" in r.output and "1 SCF runs have not finished" in r.output
    link = work / "ri" / "000000" / "D_spin_01_kpt_000001.csc"
    assert link.is_symlink() and link.resolve() == (work / "scf" / "000000" / "D_spin_01_kpt_000001.csc").resolve()
    r = cli.invoke(app, ["run", "ri", "-w", str(work)])
    assert r.exit_code == 0, r.output
    r = cli.invoke(app, ["import", str(work / "ri"), str(tmp_path / "ds.h5")])
    assert r.exit_code == 0, r.output
    with open_dataset(tmp_path / "ds.h5") as ds:
        assert ds.labels() == ["000000", "000002"]
        assert ds[0].metadata["scf_cycles"] == 0  # from the SCF run's aims.out (recorded RI run: 0 cycles)
        assert "species_defaults" in ds.provenance.extra["settings"]
        np.testing.assert_array_equal(ds[0].coefficients, ds[1].coefficients)


def test_missing_restart_file_fails_the_ri_run(tmp_path, standin_env):
    from aims_io.geometry import read_geometry
    from aims_io.prepare import prepare_ri, prepare_scf, run_dirs_now

    settings = settings_for(tmp_path)
    work = tmp_path / "w"
    dirs = prepare_scf(work, [read_geometry(CH4 / "geometry.in")], settings)
    run_dirs_now(dirs, work, settings, "scf")
    ri, _ = prepare_ri(work, settings)
    (ri[0] / "D_spin_01_kpt_000001.csc").unlink()
    run_dirs_now(ri, work, settings, "ri")
    assert "restart file D_spin_01_kpt_000001.csc not found" in read_json(ri[0] / FAILED_FILE)["reason"]


def test_aims_command_is_not_a_shell(tmp_path, standin_env):
    from aims_io.geometry import read_geometry
    from aims_io.prepare import prepare_scf, run_dirs_now

    marker = tmp_path / "pwned"
    settings = settings_for(tmp_path, aims_command=f"'true; touch {marker}'")
    work = tmp_path / "w"
    dirs = prepare_scf(work, [read_geometry(CH4 / "geometry.in")], settings)
    run_dirs_now(dirs, work, settings, "scf")
    assert not marker.exists()
    assert "cannot start" in read_json(dirs[0] / FAILED_FILE)["reason"]
