"""``pyscf-io guess``: the SCF from a density given as coefficients converges to the default guess's
energy, the RI density saves cycles against minao, and bad predictions are refused or reported."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_compute import context, structure
from test_hostile_input import fails, invoke

from pyscf_io.compute import compute_structure
from pyscf_io.task import append_to_part
from rho_data import Structure, create_predictions, open_dataset

#: def2-SVP water and ammonia (the RI guess needs a basis where minao is not already converged),
#: SCF grid level 1 to keep it CI-sized.
SETTINGS = {"basis": "def2-SVP", "grid_level": 1}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("guess") / "data.h5"
    ctx = context(**SETTINGS)
    for name in ("water", "ammonia"):
        append_to_part(path, ctx, compute_structure(structure(name), ctx))
    return path


def write_predictions(path: Path, data: Path, change=lambda c, rng: c + 1e-3 * rng.normal(size=c.shape), dataset_id=None):
    """Predictions of every structure of ``data``: the RI coefficients changed by ``change``."""
    rng = np.random.default_rng(0)
    with open_dataset(data) as ds:
        writer = create_predictions(path, ds.basis, dataset_id=ds.dataset_id if dataset_id is None else dataset_id)
        for i in range(len(ds)):
            s = ds[i]
            c = change(s.coefficients, rng)
            writer.append(Structure(s.numbers, s.positions, label=s.label, coefficients=c, dataset_index=i))
        writer.close()
    return path


def report(out: Path) -> dict:
    return json.loads((out / "guess.json").read_text())


def rows_of(out: Path) -> dict[tuple[int, str], dict]:
    return {(r["dataset_index"], r["guess"]): r for r in report(out)["rows"]}


def test_ml_guess_converges_to_the_default_energy_and_ri_saves_cycles(tmp_path, dataset):
    pred = write_predictions(tmp_path / "pred.h5", dataset)
    out = tmp_path / "report"
    result = invoke(["guess", pred, "--reference", dataset, "-o", out, "--guesses", "ml,ri,minao"])
    assert result.exit_code == 0, result.output
    rows = rows_of(out)
    with open_dataset(dataset) as ds:
        tol = ds.provenance.extra["settings"]["scf_conv_tol"]
        for i in range(len(ds)):
            assert all(rows[(i, g)]["converged"] for g in ("ml", "ri", "minao"))
            assert abs(rows[(i, "ml")]["energy_ha"] - rows[(i, "minao")]["energy_ha"]) < tol
            assert abs(rows[(i, "ri")]["energy_ha"] - ds[i].metadata["energy"]) < tol
            assert rows[(i, "ml")]["build_s"] > 0
    assert rows[(0, "ri")]["cycles"] < rows[(0, "minao")]["cycles"]  # water
    summary = report(out)["summary"]
    assert summary["max_abs_e_ml_minus_minao_ha"] < tol
    assert (out / "guess.csv").read_text().splitlines()[0].startswith("dataset_index,label,n_atoms,guess,cycles")
    assert "cycles saved" in result.output


def test_a_rerun_resumes_and_a_changed_run_is_refused(tmp_path, dataset):
    pred = write_predictions(tmp_path / "pred.h5", dataset)
    out = tmp_path / "report"
    args = ["guess", pred, "--reference", dataset, "-o", out, "--guesses", "minao"]
    assert invoke(args).exit_code == 0
    (out / "structures" / "000001.json").unlink()  # as if killed before structure 1 finished
    again = invoke(args)
    assert again.exit_code == 0, again.output
    assert "1 structures already finished" in again.output
    assert len(report(out)["rows"]) == 2
    err = fails(["guess", pred, "--reference", dataset, "-o", out, "--guesses", "atom"])
    assert "another guess run" in err and "--overwrite" in err
    assert invoke(["guess", pred, "--reference", dataset, "-o", out, "--guesses", "atom", "--overwrite"]).exit_code == 0
    assert {r["guess"] for r in report(out)["rows"]} == {"atom"}


def test_a_wrong_electron_count_warns_and_is_renormalised(tmp_path, dataset):
    pred = write_predictions(tmp_path / "pred.h5", dataset, change=lambda c, rng: 1.05 * c)
    out = tmp_path / "report"
    water = _index(tmp_path, dataset)
    result = invoke(["guess", pred, "--reference", dataset, "-o", out, "--guesses", "ml,minao", "--indices", water])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if "electrons" in line]
    assert len(warnings) == 1 and "structure 0 (water)" in warnings[0] and "renormalised to 10" in warnings[0]
    rows = rows_of(out)
    assert rows[(0, "ml")]["renormalised"] and abs(rows[(0, "ml")]["n_electrons_guess"] - 10.5) < 1e-2
    assert rows[(0, "ml")]["converged"]
    assert abs(rows[(0, "ml")]["energy_ha"] - rows[(0, "minao")]["energy_ha"]) < 1e-9


def _index(tmp_path: Path, dataset: Path) -> Path:
    from rho_data.split import write_index_file

    with open_dataset(dataset) as ds:
        write_index_file(tmp_path / "water.idx", np.array([0]), dataset_id=ds.dataset_id)
    return tmp_path / "water.idx"


def test_exact_integral_scf_setting_is_stored_and_rebuilt(tmp_path):
    """scf_density_fit: false runs the SCF with four-centre integrals, and the guess rebuilds it."""
    from pyscf_io.guess import rebuild_molecule, scf_settings, structure_guesses

    path = tmp_path / "exact.h5"
    ctx = context(basis="sto-3g", aux_basis="def2-universal-jkfit", grid_level=1, scf_density_fit=False)
    append_to_part(path, ctx, compute_structure(structure("water"), ctx))
    fitted = compute_structure(structure("water"), context(basis="sto-3g", aux_basis="def2-universal-jkfit", grid_level=1))
    with open_dataset(path) as ds:
        settings = scf_settings(ds)
        assert settings["scf_density_fit"] is False
        exact = ds[0].metadata["energy"]
        assert abs(exact - fitted.metadata["energy"]) > 1e-7  # density fitting changes the energy: it was not used
        rows = structure_guesses(rebuild_molecule(ds, 0), settings, ["ri"], {"ri": ds[0].coefficients}, 1)
        assert abs(rows[0]["energy_ha"] - exact) < 1e-9
