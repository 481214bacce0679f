"""Fields beyond the density through the FHI-aims route, driven with the stand-in executable."""

import json

import numpy as np
import pytest
from conftest import CH4, settings_for, standin_command
from test_local_runs import write_structures
from typer.testing import CliRunner

from aims_io.cli import app
from aims_io.control import read_keywords
from aims_io.errors import AimsIOError
from aims_io.floats import read_floats
from aims_io.kso import WEIGHTS_FILE
from aims_io.layout import RUN_INFO, read_json
from aims_io.settings import dump, load_settings
from rho_data import open_dataset


def test_fields_setting_is_canonical_and_checked(ch4):
    settings = settings_for(ch4, max_parallel=1)
    assert settings["dft"]["fields"] == ["density"] and settings["dft"]["degeneracy_ev"] == 1e-3
    s = load_settings([], ["dft.fields=[electron_density, orbital:homo-1, LUMO]"])
    assert s["dft"]["fields"] == ["density", "homo-1", "lumo"]
    for bad, words in (
        ("dft.fields=[homo, homo]", "names homo twice"),
        ("dft.fields=[]", "non-empty list"),
        ("dft.fields=[nonsense]", "unknown field 'nonsense'"),
        ("dft.fields=[density, spin_density]", "spin_density but 'dft.spin' is none"),
    ):
        with pytest.raises(AimsIOError, match=words) as err:
            load_settings([], [bad])
        assert "\n" not in str(err.value)


def _cli_settings(tmp_path, fields):
    cfg = tmp_path / "user.yaml"
    dump(
        {
            "dft": {"species_defaults": str(CH4.parent / "species_defaults" / "tight"), "fields": fields},
            "hpc": {"aims_command": standin_command()},
        },
        cfg,
    )
    return cfg


def test_density_homo_lumo_end_to_end(tmp_path, standin_env):
    work, structures = tmp_path / "work", tmp_path / "s.xyz"
    work.mkdir()
    write_structures(structures, CH4)
    cfg = _cli_settings(tmp_path, ["density", "homo", "lumo"])
    cli = CliRunner()
    r = cli.invoke(app, ["prepare", "scf", str(structures), "-w", str(work), "-c", str(cfg)])
    assert r.exit_code == 0, r.output
    assert read_keywords(work / "scf" / "000000" / "control.in")["ri_fit_write_orbital_info"] == ".true."
    r = cli.invoke(app, ["run", "scf", "-w", str(work)])
    assert r.exit_code == 1  # the water is not recorded: it fails
    info = np.loadtxt(work / "scf" / "000000" / "ks_orbital_info.out")
    assert info.shape == (14, 7) and info[4, 5] == 2.0 and info[5, 5] == 0.0
    r = cli.invoke(app, ["prepare", "ri", "-w", str(work)])
    assert "prepared 6 RI-fit runs" in r.output, r.output
    ri = work / "ri"
    assert sorted(p.name for p in ri.iterdir()) == [
        "000000",
        "000000.field-1",
        "000000.field-2",
        "000002",
        "000002.field-1",
        "000002.field-2",
    ]
    main, homo, lumo = ri / "000000", ri / "000000.field-1", ri / "000000.field-2"
    assert "ri_fit_field_from_kso_weights" not in read_keywords(main / "control.in")
    assert not (main / WEIGHTS_FILE).exists()
    for run_dir, field, state in ((homo, "homo", 4), (lumo, "lumo", 5)):
        assert read_keywords(run_dir / "control.in")["ri_fit_field_from_kso_weights"] == ".true."
        record = read_json(run_dir / RUN_INFO)
        assert record["field"] == field and record["label"] == "000000" and record["index"] == 0
        weights = np.loadtxt(run_dir / WEIGHTS_FILE)
        assert weights.shape == (14,)
        # the recorded t2 levels of CH4 differ by more than dft.degeneracy_ev: the HOMO is state 5, the LUMO state 6
        expected = np.zeros(14)
        expected[state] = 1.0
        np.testing.assert_allclose(weights, expected)
        assert record["field_integral"] == pytest.approx(expected.sum())
    r = cli.invoke(app, ["status", "ri", "-w", str(work), "--json"])
    assert r.output.count('"state": "not started"') == 6, r.output
    r = cli.invoke(app, ["run", "ri", "-w", str(work)])
    assert r.exit_code == 0, r.output
    d = read_floats(main / "ri_restart_coeffs.out")
    c_homo = read_floats(homo / "ri_restart_coeffs.out")
    np.testing.assert_allclose(c_homo, d * 5.0 / 10.0, rtol=1e-12)  # the stand-in's SYNTHETIC field
    np.testing.assert_allclose(read_floats(lumo / "ri_restart_coeffs.out"), d * 6.0 / 10.0, rtol=1e-12)
    r = cli.invoke(app, ["status", "ri", "-w", str(work), "--json"])
    assert r.output.count('"state": "finished"') == 6
    r = cli.invoke(app, ["import", str(ri), str(tmp_path / "ds.h5")])
    assert r.exit_code == 0, r.output
    with open_dataset(tmp_path / "ds.h5") as ds:
        assert ds.targets == ["electron_density", "homo", "lumo"]
        assert ds.labels() == ["000000", "000002"]
        s = ds[0]
        np.testing.assert_allclose(s.coefficients, ds[1].coefficients)
        for name, factor in (("homo", 0.5), ("lumo", 0.6)):
            np.testing.assert_allclose(s.targets[name].coefficients, factor * s.coefficients, rtol=1e-12)
            np.testing.assert_allclose(s.targets[name].projections, factor * s.projections, rtol=1e-9, atol=1e-12)
            assert s.metadata[f"field_integral@{name}"] == pytest.approx(1.0)
            assert s.metadata[f"n_fit@{name}"] == pytest.approx(factor * s.metadata["n_electrons_fit"], rel=1e-9)
        assert s.metadata["homo_energy"] < s.metadata["lumo_energy"] < 0.1
    # a failed field run fails its structure, reported like any failed run
    (ri / "000002.field-2" / "aims.out").write_text("truncated\n")
    r = cli.invoke(app, ["import", str(ri), str(tmp_path / "ds2.h5")])
    assert "000002" in r.output and "field 'lumo'" in r.output, r.output
    with open_dataset(tmp_path / "ds2.h5") as ds:
        assert ds.labels() == ["000000"]


def test_field_run_without_weights_fails_like_a_run(tmp_path, standin_env):
    from aims_io.geometry import read_geometry
    from aims_io.prepare import prepare_ri, prepare_scf, run_dirs_now

    settings = settings_for(tmp_path)
    settings["dft"]["fields"] = ["density", "lumo"]
    work = tmp_path / "w"
    run_dirs_now(prepare_scf(work, [read_geometry(CH4 / "geometry.in")], settings), work, settings, "scf")
    ri, _ = prepare_ri(work, settings)
    (ri[1] / WEIGHTS_FILE).unlink()
    run_dirs_now(ri, work, settings, "ri")
    assert "ks_orbital_weights.in: not found" in read_json(ri[1] / "aims-io-failed.json")["reason"]


def test_field_the_scf_cannot_give_is_one_line(tmp_path, standin_env):
    from aims_io.geometry import read_geometry
    from aims_io.prepare import prepare_ri, prepare_scf, run_dirs_now

    settings = settings_for(tmp_path)
    work = tmp_path / "w"
    run_dirs_now(prepare_scf(work, [read_geometry(CH4 / "geometry.in")], settings), work, settings, "scf")
    settings["dft"]["fields"] = ["density", "homo"]  # the SCF ran without ri_fit_write_orbital_info
    with pytest.raises(AimsIOError, match=r"000000\.field-1: field 'homo': .*ks_orbital_info\.out") as err:
        prepare_ri(work, settings)
    assert "\n" not in str(err.value)
    settings["dft"]["fields"] = ["density", "lumo+20"]
    (work / "scf" / "000000" / "ks_orbital_info.out").write_text(
        "".join(f"{i} {i} 1 1 1.0 {2.0 if i < 6 else 0.0} {float(i)}\n" for i in range(1, 15))
    )
    with pytest.raises(AimsIOError, match=r"field-1: field 'lumo\+20'") as err:
        prepare_ri(work, settings)
    assert "\n" not in str(err.value)


def test_bad_field_on_the_command_line_is_one_line(tmp_path, standin_env):
    structures = tmp_path / "s.xyz"
    write_structures(structures, CH4)
    cfg = _cli_settings(tmp_path, ["density"])
    r = CliRunner().invoke(
        app, ["prepare", "scf", str(structures), "-w", str(tmp_path / "w"), "-c", str(cfg), "--set", "dft.fields=[spin_density]"]
    )
    assert r.exit_code != 0 and "spin_density" in r.output and "Traceback" not in r.output
    assert len([line for line in r.output.splitlines() if line.strip()]) == 1, r.output
    json.dumps(r.output)


def test_slurm_array_counts_the_field_runs(tmp_path, standin_env, fake_sbatch):
    from aims_io.geometry import read_geometry
    from aims_io.prepare import prepare_ri, prepare_scf, run_dirs_now

    settings = settings_for(tmp_path)
    settings["dft"]["fields"] = ["density", "homo", "lumo"]
    work = tmp_path / "w"
    run_dirs_now(prepare_scf(work, [read_geometry(CH4 / "geometry.in")] * 2, settings), work, settings, "scf")
    ri, _ = prepare_ri(work, settings)
    settings["hpc"]["backend"] = "slurm"
    started, job = run_dirs_now(ri, work, settings, "ri")
    assert len(started) == 6 and job == "4242"
    assert "--array=1-6" in fake_sbatch.read_text()


def test_main_target_other_than_the_density(tmp_path, standin_env):
    from aims_io.geometry import read_geometry
    from aims_io.importer import import_tree
    from aims_io.prepare import prepare_ri, prepare_scf, run_dirs_now

    settings = settings_for(tmp_path)
    settings["dft"]["fields"] = ["lumo"]
    work = tmp_path / "w"
    run_dirs_now(prepare_scf(work, [read_geometry(CH4 / "geometry.in")], settings), work, settings, "scf")
    ri, _ = prepare_ri(work, settings)
    assert [p.name for p in ri] == ["000000"]
    assert read_keywords(ri[0] / "control.in")["ri_fit_field_from_kso_weights"] == ".true."
    run_dirs_now(ri, work, settings, "ri")
    report = import_tree(work / "ri", tmp_path / "ds.h5")
    assert report.failed == [] and report.imported == ["000000"]
    with open_dataset(tmp_path / "ds.h5") as ds:
        assert ds.targets == ["lumo"]
        assert ds[0].metadata["field_integral"] == pytest.approx(1.0)
        np.testing.assert_allclose(ds[0].coefficients, 0.6 * read_floats(CH4 / "ri_restart_coeffs.out"), rtol=1e-12)
