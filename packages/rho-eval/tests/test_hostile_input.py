"""Hostile and careless input to rho-eval through its command line: exit 1, one line on stderr, no traceback."""

from __future__ import annotations

import shutil
import subprocess
from importlib.metadata import EntryPoint

import h5py
import numpy as np
import pytest
from rho_data import field_builders
from typer.testing import CliRunner

from rho_eval.cli import app

BILLION_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{n}: &{n} [{', '.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi")
)


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    ep = EntryPoint(name="gaussian-test", value="gaussian_builder:GaussianFieldBuilder", group=field_builders.ENTRY_POINT_GROUP)
    monkeypatch.setattr(field_builders, "available_builders", lambda: {"gaussian-test": ep})


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_line(result) -> str:
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def poison(path, rows_and_values) -> None:
    """Write non-finite values into the stored coefficients of some rows (the writer itself refuses them)."""
    with h5py.File(path, "r+") as h5:
        index = h5["structures/index"]
        columns = [str(c) for c in index.attrs["columns"]]
        start = columns.index("coefficients_start")
        for row, value in rows_and_values:
            h5["structures/coefficients"][int(index[row, start]) + 1] = value


def test_non_finite_predictions_are_refused_naming_each_structure(dataset_path, make_predictions, tmp_path):
    pred = make_predictions(lambda i, d: d)
    poison(pred, [(0, np.nan), (3, np.inf)])
    out = tmp_path / "report"
    line = one_line(run(pred, "-r", dataset_path, "-o", out, "--no-plots"))
    assert "2 of 4 structures cannot be evaluated" in line
    assert f"{pred}: structure 0: predicted coefficients hold 1 non-finite value(s) (entry 1 = nan)" in line
    assert f"{pred}: structure 3: predicted coefficients hold 1 non-finite value(s) (entry 1 = inf)" in line
    assert not (out / "summary.json").exists()
    # the finite structures alone are evaluated and counted as what they are
    result = run(pred, "-r", dataset_path, "-o", tmp_path / "finite", "--no-plots", "--select", "1:3")
    assert result.exit_code == 0, result.output
    assert "predictions, 2 structures" in result.output


def test_non_finite_reference_data_is_refused(dataset_path, make_predictions, tmp_path):
    reference = tmp_path / "reference.h5"
    shutil.copy(dataset_path, reference)
    poison(reference, [(2, -np.inf)])
    pred = make_predictions(lambda i, d: np.where(np.isfinite(d), d, 0.0), dataset=reference)
    for args in ((pred, "-r", reference), ("--fit-only", "-r", reference)):
        line = one_line(run(*args, "-o", tmp_path / "r", "--no-plots"))
        assert f"{reference}: structure 2: reference coefficients hold 1 non-finite value(s) (entry 1 = -inf)" in line


@pytest.mark.parametrize(
    "text, expected",
    [
        (BILLION_LAUGHS, "aliases (*name) are not allowed"),
        ("wokers: 2\n", "unknown setting(s) ['wokers']"),
        ("workers: two\n", "setting 'workers' must be a positive number, got 'two'"),
        ("plots: 'yes'\n", "setting 'plots' must be true or false, got 'yes'"),
        ("backend: [1, 2]\n", "setting 'backend' must be a mapping"),
        ("select: {a: 1}\n", "setting 'select' must be text"),
        ("cube_spacing_bohr: " + "9" * 5000 + "\n", "not valid YAML"),
        ("[" * 200 + "]" * 200, "nesting deeper than 32 levels"),
        ("- 1\n- 2\n", "a settings file must hold a mapping"),
    ],
)
def test_bad_settings_files(dataset_path, tmp_path, text, expected):
    config = tmp_path / "eval.yaml"
    config.write_text(text)
    line = one_line(run("--fit-only", "-r", dataset_path, "-o", tmp_path / "r", "-c", config))
    assert expected in line and str(config) in line, line
    assert len(line) < 400


def test_unreadable_settings_files(dataset_path, tmp_path):
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("select: 'Méthane'\n".encode("latin-1"))
    assert "is not UTF-8 text" in one_line(run("--fit-only", "-r", dataset_path, "-o", tmp_path / "r", "-c", latin))
    assert "is a directory" in one_line(run("--fit-only", "-r", dataset_path, "-o", tmp_path / "r", "-c", tmp_path))
    assert "settings file not found" in one_line(run("--fit-only", "-r", dataset_path, "-o", tmp_path / "r", "-c", tmp_path / "no.yaml"))


def test_bad_backend_options(dataset_path, tmp_path):
    base = ("--fit-only", "-r", dataset_path, "-o", tmp_path / "r", "--no-plots", "--select", "0")
    line = one_line(run(*base, "-b", "grid_lvl=3"))
    assert "refused the backend options ['grid_lvl']" in line and "grid_lvl" in line
    line = one_line(run(*base, "-b", "spacing=fine"))
    assert "the field builder failed" in line and "spacing='fine'" in line
    assert "must look like key=value" in one_line(run(*base, "-b", "spacing"))
    assert "aliases" in one_line(run(*base, "-b", "spacing=[&a 1, *a]"))


def test_unknown_backend(tmp_path, dataset_path):
    other = tmp_path / "other-producer.h5"
    shutil.copy(dataset_path, other)
    with h5py.File(other, "r+") as h5:
        h5["provenance"].attrs["producer"] = "no-such-code"
    line = one_line(run("--fit-only", "-r", other, "-o", tmp_path / "r"))
    assert "no field builder is installed for producer 'no-such-code'" in line


def test_report_in_a_read_only_or_impossible_directory(dataset_path, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    line = one_line(run("--fit-only", "-r", dataset_path, "-o", blocker / "report", "--no-plots", "--select", "0"))
    assert str(blocker) in line
    folder = tmp_path / "ro"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M,ro", "tmpfs", str(folder)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        line = one_line(run("--fit-only", "-r", dataset_path, "-o", folder / "report", "--no-plots", "--select", "0"))
        assert str(folder) in line and "read-only" in line.lower()
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)
