"""SCF from predicted coefficients against FHI-aims's default guess: prepare, run (local and mocked SLURM), compare.

FHI-aims is not available here: the runs are made by the stand-in (tests/standin/aims_standin.py),
whose SCF cycle count is SYNTHETIC: 4 + ceil(20 sqrt(e)) cycles from coefficients with relative
overlap-norm error e against the recorded RI coefficients, 12 from the default guess. The
aims.out parser is checked on a real aims.out (aims-out-h4).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import CH4, FIXTURES, H4_AIMS_OUT, make_ri_run, need, settings_for, standin_command
from test_hostile_input import assert_one_line_error, invoke

from aims_io.aimsout import parse_aims_out
from aims_io.floats import read_floats
from aims_io.importer import import_tree
from aims_io.settings import dump
from rho_data import Provenance, Structure, create_predictions, open_dataset

STANDIN_DEFAULT_CYCLES = 12


@pytest.fixture(scope="session")
def reference(tmp_path_factory) -> Path:
    """A CH4 dataset whose provenance records the aims-io settings of its runs (as `aims-io import` of a work dir does)."""
    work = tmp_path_factory.mktemp("reference")
    dump(settings_for(work), work / "aims-io.yaml")
    make_ri_run(work / "ri" / "000000", need(CH4))
    report = import_tree(work / "ri", work / "ch4.h5")
    assert report.imported == ["000000"]
    return work / "ch4.h5"


def predictions(path: Path, dataset: Path, coefficients: np.ndarray, *, dataset_id: str | None = None, copies: int = 1) -> Path:
    with open_dataset(dataset) as ds:
        s = ds[0]
        pred = create_predictions(
            path, ds.basis, dataset_id=ds.dataset_id if dataset_id is None else dataset_id, provenance=Provenance(producer="t")
        )
        for _ in range(copies):
            pred.append(Structure(s.numbers, s.positions, label=s.label, coefficients=coefficients, dataset_index=0))
        pred.close()
    return path


def user_config(tmp_path: Path, **hpc) -> Path:
    cfg = tmp_path / "user.yaml"
    dump({"hpc": {"aims_command": standin_command(), **hpc}}, cfg)
    return cfg


def standin_cycles(c: np.ndarray) -> int:
    """What the stand-in's model gives (independent re-computation from the fixture files)."""
    d = read_floats(CH4 / "ri_restart_coeffs.out")
    n = d.size
    s = np.zeros((n, n))
    s[np.triu_indices(n)] = read_floats(CH4 / "ri_ovlp.out")
    s = s + np.triu(s, 1).T
    e = (c - d) @ s @ (c - d) / (d @ s @ d)
    return min(STANDIN_DEFAULT_CYCLES, 4 + int(np.ceil(20 * np.sqrt(e) - 1e-12)))


def test_guess_prepare_run_compare_local(reference, tmp_path, standin_env):
    d_ml = read_floats(CH4 / "ml_coeffs.out")
    pred = predictions(tmp_path / "pred.h5", reference, d_ml)
    work, cfg = tmp_path / "w", user_config(tmp_path)
    r = invoke("prepare", "guess", pred, "--reference", reference, "--name", "model-a", "-w", work, "-c", cfg)
    assert r.exit_code == 0, r.output + r.stderr
    ml, default = work / "guess" / "model-a" / "ml-000000", work / "guess" / "model-a" / "default-000000"
    ml_control, default_control = (ml / "control.in").read_text(), (default / "control.in").read_text()
    assert "ri_density_restart       read\n" in ml_control and "ri_density_restart" not in default_control
    for text in (ml_control, default_control):
        assert "sc_iter_limit            1000\n" in text and "default_prodbas_acc      1e-05\n" in text
        assert "xc                       pbe0\n" in text and "elsi_restart" not in text and "ri_skip_scf" not in text
    # the species sections are the reference RI run's, verbatim
    ref_lines = (reference.parent / "ri" / "000000" / "control.in").read_text().splitlines()
    species = ref_lines[[line.split()[:1] for line in ref_lines].index(["species"]) :]
    assert len(species) > 10
    assert ml_control.splitlines()[-len(species) :] == species and default_control.splitlines()[-len(species) :] == species
    np.testing.assert_array_equal(read_floats(ml / "ri_restart_coeffs.out"), d_ml)
    assert not (default / "ri_restart_coeffs.out").exists()

    assert invoke("run", "guess/model-a", "-w", work, "-c", cfg).exit_code == 0
    r = invoke("status", "guess/model-a", "-w", work, "--json")
    assert r.output.count('"state": "finished"') == 2
    r = invoke("compare", "guess/model-a", "-w", work)
    assert r.exit_code == 0, r.output + r.stderr
    report = json.loads((work / "guess" / "model-a" / "comparison.json").read_text())
    (row,) = report["rows"]
    expected = standin_cycles(d_ml)
    assert 4 < expected < STANDIN_DEFAULT_CYCLES
    assert row["cycles_ml"] == expected and row["cycles_default"] == STANDIN_DEFAULT_CYCLES
    assert row["converged_ml"] and row["converged_default"] and row["energy_difference_ev"] == 0.0
    assert row["wall_ml_s"] == pytest.approx(0.5 + 0.25 * expected)
    summary = report["summary"]
    assert summary["converged_both"] == 1
    assert summary["fraction_cycles_saved"] == pytest.approx(1 - expected / STANDIN_DEFAULT_CYCLES)
    assert f"{100 * (1 - expected / STANDIN_DEFAULT_CYCLES):.1f} % of cycles saved" in r.output
    # the report is not replaced without --overwrite; preparing again leaves finished runs alone
    assert_one_line_error(invoke("compare", "guess/model-a", "-w", work), "already exists", "--overwrite")
    mtime = (ml / "aims.out").stat().st_mtime_ns
    assert invoke("prepare", "guess", pred, "--reference", reference, "--name", "model-a", "-w", work, "-c", cfg).exit_code == 0
    assert (ml / "aims.out").stat().st_mtime_ns == mtime
    # other coefficients: the old run is kept as aims.out.previous and runs again
    d_ri = read_floats(CH4 / "ri_restart_coeffs.out")
    pred_ri = predictions(tmp_path / "pred-ri.h5", reference, d_ri)
    assert invoke("prepare", "guess", pred_ri, "--reference", reference, "--name", "model-a", "-w", work).exit_code == 0
    assert (ml / "aims.out.previous").is_file() and not (ml / "aims.out").exists()
    assert (default / "aims.out").stat().st_mtime_ns  # same control.in: the default run is kept
    assert invoke("run", "guess/model-a", "-w", work, "-c", cfg).exit_code == 0
    r = invoke("compare", "guess/model-a", "-w", work, "--overwrite")
    assert r.exit_code == 0, r.output + r.stderr
    (row,) = json.loads((work / "guess" / "model-a" / "comparison.json").read_text())["rows"]
    assert row["cycles_ml"] == 4  # the reference's own RI density: the best a model can do


def test_stand_in_cycles_depend_on_the_restart(reference, tmp_path, standin_env):
    """The stand-in's count really depends on `ri_density_restart read` and the file (else the tests above prove nothing)."""
    from aims_io.prepare import run_dirs_now

    pred = predictions(tmp_path / "p.h5", reference, read_floats(CH4 / "ri_restart_coeffs.out"))
    work, cfg = tmp_path / "w", user_config(tmp_path)
    assert invoke("prepare", "guess", pred, "--reference", reference, "-w", work, "-c", cfg).exit_code == 0
    ml = work / "guess" / "predicted" / "ml-000000"
    (ml / "ri_restart_coeffs.out").unlink()
    settings = settings_for(tmp_path)
    run_dirs_now([ml], work, settings, "guess/predicted")
    assert "ri_restart_coeffs.out not found" in (ml / "aims.out").read_text()
    assert not parse_aims_out(ml / "aims.out").finished
    r = invoke("compare", "guess/predicted", "-w", work)
    assert_one_line_error(r, "ml-000000")


def test_guess_runs_through_slurm(reference, tmp_path, standin_env, fake_sbatch):
    """Both runs go into one SLURM array; the job script, run as SLURM would, makes the aims.out files compare reads."""
    pred = predictions(tmp_path / "pred.h5", reference, read_floats(CH4 / "ml_coeffs.out"))
    work, cfg = tmp_path / "w", user_config(tmp_path, backend="slurm")
    assert invoke("prepare", "guess", pred, "--reference", reference, "--name", "m", "-w", work, "-c", cfg).exit_code == 0
    r = invoke("run", "guess/m", "-w", work, "-c", cfg)
    assert r.exit_code == 0, r.output + r.stderr
    assert "submitted SLURM array 4242 with 2 runs" in r.output
    (argv,) = [json.loads(line) for line in fake_sbatch.read_text().splitlines()]
    assert "--array=1-2" in argv and "--job-name=guess-m" in argv
    script = Path(argv[-1])
    listed = script.with_suffix(".list").read_text().splitlines()
    assert [Path(p).name for p in listed] == ["default-000000", "ml-000000"]
    assert_one_line_error(invoke("compare", "guess/m", "-w", work), "has not finished")
    for task in ("1", "2"):
        env = {**os.environ, "SLURM_ARRAY_TASK_ID": task}
        done = subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
    r = invoke("compare", "guess/m", "-w", work, "-o", tmp_path / "report.json")
    assert r.exit_code == 0, r.output + r.stderr
    (row,) = json.loads((tmp_path / "report.json").read_text())["rows"]
    assert row["cycles_ml"] == standin_cycles(read_floats(CH4 / "ml_coeffs.out"))
    assert row["cycles_default"] == STANDIN_DEFAULT_CYCLES


def test_not_converged_runs_are_reported_not_averaged(reference, tmp_path, standin_env):
    pred = predictions(tmp_path / "pred.h5", reference, read_floats(CH4 / "ml_coeffs.out"))
    work, cfg = tmp_path / "w", user_config(tmp_path)
    args = ("--reference", reference, "-w", work, "-c", cfg, "--set", "dft.sc_iter_limit=8")
    assert invoke("prepare", "guess", pred, *args).exit_code == 0
    assert invoke("run", "guess/predicted", "-w", work, "-c", cfg).exit_code == 0
    r = invoke("compare", "guess/predicted", "-w", work)
    assert r.exit_code == 0, r.output + r.stderr
    assert "default-000000: the SCF did not converge in 8 cycles" in r.stderr
    summary = json.loads((work / "guess" / "predicted" / "comparison.json").read_text())["summary"]
    assert summary["converged_both"] == 0 and summary["mean_cycles_ml"] is None and summary["fraction_cycles_saved"] is None


# ---- refused input: one line, nothing written ------------------------------------------------


def test_predictions_of_another_dataset_are_refused(reference, tmp_path):
    pred = predictions(tmp_path / "p.h5", reference, read_floats(CH4 / "ml_coeffs.out"), dataset_id="another-dataset")
    r = invoke("prepare", "guess", pred, "--reference", reference, "-w", tmp_path / "w")
    assert_one_line_error(r, str(pred), "belongs to dataset another-dataset")
    assert not (tmp_path / "w" / "guess").exists()


def test_predictions_in_another_basis_are_refused(reference, tmp_path):
    from rho_data import AuxiliaryBasis

    with open_dataset(reference) as ds:
        s = ds[0]
        counts = {sym: list(ds.basis[sym].n_radial) for sym in ds.basis.symbols}
    counts["H"][0] += 1  # one more s function on H: another product basis
    other = AuxiliaryBasis.from_counts(counts)
    n = other.n_functions(s.numbers)
    pred = create_predictions(tmp_path / "p.h5", other, dataset_id="", provenance=Provenance(producer="t"))
    pred.append(Structure(s.numbers, s.positions, coefficients=np.zeros(n), dataset_index=0))
    pred.close()
    r = invoke("prepare", "guess", tmp_path / "p.h5", "--reference", reference, "-w", tmp_path / "w")
    assert_one_line_error(r, str(tmp_path / "p.h5"), "auxiliary basis differs")
    assert not (tmp_path / "w" / "guess").exists()


def test_a_structure_predicted_twice_is_refused(reference, tmp_path):
    pred = predictions(tmp_path / "p.h5", reference, read_floats(CH4 / "ml_coeffs.out"), copies=2)
    r = invoke("prepare", "guess", pred, "--reference", reference, "-w", tmp_path / "w")
    assert_one_line_error(r, "predicts dataset structure 0 twice")


def test_reference_without_recorded_settings_is_refused(ch4_dataset, tmp_path):
    """The session dataset was imported from a tree without aims-io.yaml: its SCF settings cannot be rebuilt."""
    pred = predictions(tmp_path / "p.h5", ch4_dataset, read_floats(CH4 / "ml_coeffs.out"))
    r = invoke("prepare", "guess", pred, "--reference", ch4_dataset, "-w", tmp_path / "w")
    assert_one_line_error(r, str(ch4_dataset), "cannot be rebuilt")
    assert not (tmp_path / "w" / "guess").exists()


def test_recorded_settings_that_disagree_with_the_ri_runs_are_refused(tmp_path):
    work = tmp_path / "ref"
    make_ri_run(work / "ri" / "000000", need(CH4))
    settings = settings_for(work)
    settings["dft"]["xc"] = "pbe"  # the control.in of the RI run says pbe0
    dump(settings, work / "aims-io.yaml")
    import_tree(work / "ri", work / "ch4.h5")
    pred = predictions(tmp_path / "p.h5", work / "ch4.h5", read_floats(CH4 / "ml_coeffs.out"))
    r = invoke("prepare", "guess", pred, "--reference", work / "ch4.h5", "-w", tmp_path / "w")
    assert_one_line_error(r, "xc", "cannot be rebuilt")


def test_user_scf_settings_other_than_the_reference_are_refused(reference, tmp_path):
    pred = predictions(tmp_path / "p.h5", reference, read_floats(CH4 / "ml_coeffs.out"))
    r = invoke("prepare", "guess", pred, "--reference", reference, "-w", tmp_path / "w", "--set", "dft.xc=pbe")
    assert_one_line_error(r, "setting 'dft.xc'", "differs from the reference")
    assert not (tmp_path / "w" / "guess").exists()


def test_prepare_guess_needs_a_reference(tmp_path):
    assert_one_line_error(invoke("prepare", "guess", tmp_path / "p.h5", "-w", tmp_path), "--reference")


def test_compare_refuses_a_mislabelled_run(reference, tmp_path, standin_env):
    pred = predictions(tmp_path / "p.h5", reference, read_floats(CH4 / "ml_coeffs.out"))
    work, cfg = tmp_path / "w", user_config(tmp_path)
    assert invoke("prepare", "guess", pred, "--reference", reference, "-w", work, "-c", cfg).exit_code == 0
    assert invoke("run", "guess/predicted", "-w", work, "-c", cfg).exit_code == 0
    root = work / "guess" / "predicted"
    shutil.copyfile(root / "default-000000" / "control.in", root / "ml-000000" / "control.in")  # no restart any more
    assert_one_line_error(invoke("compare", "guess/predicted", "-w", work), "ml-000000", "is not an ML-guess run")
    assert not (root / "comparison.json").exists()


def test_compare_without_runs(tmp_path):
    assert_one_line_error(invoke("compare", "guess/none", "-w", tmp_path), "no guess runs")
    assert_one_line_error(invoke("compare", "rebuild/x", "-w", tmp_path), "expected guess/<name>")


# ---- the parser on real FHI-aims output ------------------------------------------------------


def test_cycle_count_of_a_real_aims_out():
    out = parse_aims_out(need(H4_AIMS_OUT))
    assert out.scf_cycles == 15 and out.scf_iterations_seen == 15 and out.scf_converged


def test_compare_reads_real_aims_out_files(tmp_path):
    """Two runs holding the real H4 aims.out: 15 cycles each, nothing saved, the real wall time."""
    need(H4_AIMS_OUT)
    root = tmp_path / "w" / "guess" / "real"
    for kind, restart in (("ml", "ri_density_restart read\n"), ("default", "")):
        run = root / f"{kind}-000000"
        run.mkdir(parents=True)
        (run / "control.in").write_text(f"xc pbe\n{restart}sc_iter_limit 1000\n")
        shutil.copyfile(H4_AIMS_OUT, run / "aims.out")
        if restart:
            (run / "ri_restart_coeffs.out").write_text("1.0\n")
    r = invoke("compare", "guess/real", "-w", tmp_path / "w")
    assert r.exit_code == 0, r.output + r.stderr
    report = json.loads((root / "comparison.json").read_text())
    (row,) = report["rows"]
    assert row["cycles_ml"] == row["cycles_default"] == 15 and row["cycles_saved"] == 0
    assert row["energy_ml_ev"] == pytest.approx(-63.484026439, abs=1e-12) and row["wall_default_s"] == 3.580
    assert report["summary"]["fraction_cycles_saved"] == 0.0
    # the real qm7 fixtures record (in calc_info.json, parsed from their aims.out) the RI-fit run's 0 cycles
    info = json.loads((FIXTURES / "qm7-0-CH4" / "calc_info.json").read_text())
    assert info["scf"]["num_cycles"] == 0 and info["scf"]["converged"]
