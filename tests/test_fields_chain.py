"""Each field beyond the total density through the whole chain by the command lines:
pyscf-io run --field -> rho-data split -> rho-train train --target -> predict -> rho-eval."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from test_chain import BIN, ENV, ROOT, run, validate

FIELDS = ["density", "homo", "lumo", "ildos:-3:0", "ldos:-1:0.5"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    work = tmp_path_factory.mktemp("fields")
    make = ROOT / "examples" / "make_molecules.py"
    run(sys.executable, make, "-o", "m.xyz", "--conformers", "4", "--molecules", "H2O", "NH3", cwd=work)
    fields = [a for f in FIELDS for a in ("--field", f)]
    run("pyscf-io", "run", "m.xyz", "-o", "data.h5", "--workers", "2", "--basis", "sto-3g", "-q", *fields, cwd=work)
    validate(work / "data.h5", work)
    run("rho-data", "split", "data.h5", "-s", "6", "-s", "0", "-s", "2", "--seed", "1", "-o", "splits", cwd=work)
    return work


@pytest.mark.parametrize("field", FIELDS[1:])
def test_field_through_the_chain(data, field):
    from rho_data import open_dataset, open_predictions

    name = field.replace(":", "_")
    common = ["--set", "fit.alpha=1.0e-6", "--set", "descriptor.max_radial=4"]
    splits = ["--set", "data.train=splits/train.idx", "--set", "data.test=splits/test.idx"]
    run("rho-train", "train", "data.h5", "-o", f"model-{name}", "--target", field, *splits, *common, cwd=data)
    test = ["--indices", "splits/test.idx"]
    run("rho-train", "predict", f"model-{name}/model.pt", "data.h5", *test, "-o", f"p-{name}.h5", cwd=data)
    validate(data / f"p-{name}.h5", data)
    with open_predictions(data / f"p-{name}.h5") as p, open_dataset(data / "data.h5") as ds:
        assert p.target == field
        row = 0
        assert not np.allclose(p.coefficients(row), ds.coefficients(p.dataset_index(row)))  # not the density
    run("rho-eval", f"p-{name}.h5", "--reference", "data.h5", "-o", f"report-{name}", "--no-plots", cwd=data)
    summary = json.loads((data / f"report-{name}" / "summary.json").read_text())
    assert summary["target"] == field
    assert summary["nmae_normalisation"] == "integral of |rho_ref|"
    nmae = summary["metrics"]["nmae_ri_percent"]["mean"]
    assert np.isfinite(nmae) and 0 < nmae < 100  # better than predicting nothing (100 %)
    assert np.isfinite(summary["metrics"]["nmae_scf_percent"]["mean"])


def test_evaluating_a_field_against_another_is_refused(data):
    import subprocess

    run("rho-train", "train", "data.h5", "-o", "model-h", "--target", "homo", "--set", "fit.alpha=1.0e-6", cwd=data)
    run("rho-train", "predict", "model-h/model.pt", "data.h5", "-o", "p-h.h5", cwd=data)
    command = [str(BIN / "rho-eval"), "p-h.h5", "--reference", "data.h5", "-o", "r-h", "--target", "lumo", "--no-plots"]
    result = subprocess.run(command, cwd=data, env=ENV, capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "the predictions are of the target 'homo', the evaluation compares 'lumo'" in result.stderr


def test_cube_files_and_slice_of_a_field(data):
    import ase.io.cube

    run("rho-train", "train", "data.h5", "-o", "model-c", "--target", "homo", "--set", "fit.alpha=1.0e-6", cwd=data)
    run("rho-train", "predict", "model-c/model.pt", "data.h5", "-o", "p-c.h5", "--indices", "splits/test.idx", cwd=data)
    run("rho-eval", "p-c.h5", "--reference", "data.h5", "-o", "r-c", "--cubes", "worst", "--cube-spacing", "0.3", cwd=data)
    cubes = sorted((data / "r-c" / "cubes").glob("*.cube"))
    assert cubes and all("_homo_" in c.name for c in cubes)
    scf = next(c for c in cubes if c.name.endswith("_homo_scf.cube"))
    values = ase.io.cube.read_cube_data(str(scf))[0]
    assert abs(values.sum() * 0.3**3 - 1.0) < 0.05  # the SCF HOMO density (one orbital), not the total density
    assert (data / "r-c" / "plots" / "density_difference_slice.png").exists()


def test_spin_density_through_the_chain(tmp_path):
    make = ROOT / "examples" / "make_molecules.py"
    run(sys.executable, make, "-o", "r.xyz", "--conformers", "4", "--molecules", "OH", "NH2", cwd=tmp_path)
    fields = ["--field", "spin_density", "--field", "density"]
    run("pyscf-io", "run", "r.xyz", "-o", "r.h5", "--workers", "2", "--basis", "sto-3g", "-q", *fields, cwd=tmp_path)
    run("rho-data", "split", "r.h5", "-s", "6", "-s", "0", "-s", "2", "--seed", "1", "-o", "splits", cwd=tmp_path)
    splits = ["--set", "data.train=splits/train.idx", "--set", "data.test=splits/test.idx", "--set", "fit.alpha=1.0e-6"]
    run("rho-train", "train", "r.h5", "-o", "m", *splits, cwd=tmp_path)  # the main target: the spin density
    run("rho-train", "predict", "m/model.pt", "r.h5", "--indices", "splits/test.idx", "-o", "p.h5", cwd=tmp_path)
    run("rho-eval", "p.h5", "--reference", "r.h5", "-o", "report", "--no-plots", cwd=tmp_path)
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["target"] == "spin_density" and summary["nmae_normalisation"] == "integral of |rho_ref|"
    assert 0 < summary["metrics"]["nmae_ri_percent"]["mean"] < 100
