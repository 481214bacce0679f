"""Several fields from one SCF (setting ``fields``): fitted on one overlap, stored as targets."""

import numpy as np
import pytest
from conftest import FAST
from test_compute import context, structure

from pyscf_io.compute import compute_structure
from pyscf_io.errors import PyscfIoError
from pyscf_io.geometry import InputStructure
from pyscf_io.task import append_to_part
from rho_data import RhoDataError, open_dataset
from rho_data.field_builders import FieldRequest, load_field_builder


@pytest.fixture(scope="module")
def water_fields():
    ctx = context(**FAST, fields=["density", "HOMO", "lumo", "ildos:-1:0"])
    return ctx, compute_structure(structure("water"), ctx)


def test_fields_are_fitted_on_the_one_overlap(water_fields):
    ctx, s = water_fields
    assert set(s.targets) == {"homo", "lumo", "ildos:-1:0"}
    dense = s.overlap.to_dense()
    for values in s.targets.values():
        np.testing.assert_allclose(values.projections, dense @ values.coefficients, atol=1e-12)
        assert not np.allclose(values.coefficients, s.coefficients)
    m = s.metadata
    assert m["field_integral@homo"] == m["field_integral@lumo"] == 1.0
    assert m["field_integral@ildos:-1:0"] == 2.0  # only the HOMO (a non-degenerate level) lies in the window
    for name in ("homo", "lumo"):
        assert abs(m[f"n_fit@{name}"] - 1.0) < 5e-2  # the Coulomb metric keeps the charge closely
        assert 0 < m[f"fit_nmae_percent@{name}"] < 25.0
    # the density is what a run without further fields gives (two SCFs agree to their convergence, ~1e-9)
    alone = compute_structure(structure("water"), context(**FAST))
    assert np.linalg.norm(s.coefficients - alone.coefficients) < 1e-6 * np.linalg.norm(alone.coefficients)
    assert s.metadata["fit_nmae_percent"] == pytest.approx(alone.metadata["fit_nmae_percent"], rel=1e-5)


def test_dataset_holds_targets_and_rebuilds_their_scf_fields(tmp_path, water_fields):
    ctx, s = water_fields
    append_to_part(tmp_path / "d.h5", ctx, s)
    with open_dataset(tmp_path / "d.h5") as ds:
        assert ds.targets == ["electron_density", "homo", "lumo", "ildos:-1:0"]
        assert "density_matrix@homo" in ds.extra_names and "fit_nmae_percent@lumo" in ds.metadata_names
        builder = load_field_builder(ds.provenance.producer)
        ri = ds.coefficients(0, "homo")
        [(_, grid)] = list(builder.build(ds, [FieldRequest(0, {"ri": ri}, target="homo")]))
        assert grid.integrate("scf") == pytest.approx(1.0, abs=1e-4)
        nmae = 100 * grid.weights @ np.abs(grid.values["ri"] - grid.values["scf"]) / (grid.weights @ np.abs(grid.values["scf"]))
        assert nmae == pytest.approx(s.metadata["fit_nmae_percent@homo"], rel=1e-8)
        with pytest.raises(PyscfIoError, match="no target 'spin_density'"):
            list(builder.build(ds, [FieldRequest(0, {"ri": ri}, target="spin_density")]))


def test_spin_density_of_a_radical_and_refusals():
    radical = InputStructure("f.xyz", 0, "oh", (8, 1), ((0, 0, 0), (0, 0, 0.97)))
    s = compute_structure(radical, context(**{**FAST, "spin": 1}, fields=["spin_density", "density"]))
    assert s.metadata["field_integral"] == pytest.approx(1.0)
    assert abs(s.metadata["n_electrons_fit"] - 1.0) < 5e-2  # the main target is the spin density
    assert set(s.targets) == {"electron_density"}
    with pytest.raises(PyscfIoError, match="a singlet .* whose spin density is zero"):
        compute_structure(structure("water"), context(**FAST, fields=["spin_density"]))
    with pytest.raises(RhoDataError, match="unoccupied"):
        compute_structure(structure("water"), context(**FAST, fields=["lumo+40"]))
    with pytest.raises(PyscfIoError, match="names a field twice"):
        context(fields=["homo", "HOMO-0"])
    with pytest.raises(PyscfIoError, match="unknown field 'homo+1'|counted down"):
        context(fields=["homo+1"])


def test_field_option_of_run(tmp_path):
    import subprocess
    import sys

    xyz = tmp_path / "w.xyz"
    xyz.write_text("3\n\nO 0 0 0.1173\nH 0 0.7572 -0.4692\nH 0 -0.7572 -0.4692\n")
    fast = ["--basis", "sto-3g", "--aux-basis", "def2-universal-jkfit", "--grid-level", "1", "-q"]
    run = [sys.executable, "-m", "pyscf_io", "run", str(xyz), "-o", str(tmp_path / "w.h5"), *fast]
    done = subprocess.run([*run, "--field", "density", "--field", "LUMO"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with open_dataset(tmp_path / "w.h5") as ds:
        assert ds.targets == ["electron_density", "lumo"]
    bad = subprocess.run([*run, "--field", "spin_density", "-o", str(tmp_path / "s.h5")], capture_output=True, text=True)
    assert bad.returncode == 1 and "whose spin density is zero" in bad.stdout + bad.stderr
    wrong = subprocess.run([*run, "--field", "homo+2", "-o", str(tmp_path / "x.h5")], capture_output=True, text=True)
    assert wrong.returncode != 0 and "counted down from the HOMO" in wrong.stderr and "Traceback" not in wrong.stderr
