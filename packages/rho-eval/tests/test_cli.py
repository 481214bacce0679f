"""The rho-eval command: report files, backend options through the entry point, red one-line errors."""

import csv
import json
from importlib.metadata import EntryPoint

import pytest
from rho_data import field_builders
from typer.testing import CliRunner

from rho_eval.cli import app

runner = CliRunner()


@pytest.fixture
def registered(monkeypatch):
    """Register the test-only Gaussian builder under the dataset's producer name."""
    ep = EntryPoint(name="gaussian-test", value="gaussian_builder:GaussianFieldBuilder", group=field_builders.ENTRY_POINT_GROUP)
    monkeypatch.setattr(field_builders, "available_builders", lambda: {"gaussian-test": ep})


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("rho-eval 0.1.0")


def test_report(registered, dataset_path, make_predictions, tmp_path):
    pred = make_predictions(lambda i, d: 1.01 * d)
    out = tmp_path / "report"
    result = runner.invoke(app, [str(pred), "--reference", str(dataset_path), "-o", str(out), "--select", "0:2", "-b", "spacing=0.35"])
    assert result.exit_code == 0, result.output
    assert "%NMAE vs RI" in result.output
    summary = json.loads((out / "summary.json").read_text())
    # 1.01 d: the error is 1 % of integral |rho_RI|, which is >= integral rho_RI (the fit dips below zero)
    assert summary["n_structures"] == 2 and 1.0 <= summary["metrics"]["nmae_ri_percent"]["mean"] < 1.2
    assert {p.name for p in (out / "plots").iterdir()} == {
        "error_distribution.png",
        "nmae_vs_size.png",
        "parity_by_l.png",
        "density_difference_slice.png",
    }
    config = (out / "config.yaml").read_text()
    assert "spacing: 0.35" in config
    with open(out / "metrics.csv") as fh:
        first = next(csv.DictReader(fh))
    default_points = runner.invoke(app, [str(pred), "-r", str(dataset_path), "-o", str(tmp_path / "default"), "--select", "0", "--no-plots"])
    assert default_points.exit_code == 0
    with open(tmp_path / "default" / "metrics.csv") as fh:
        assert int(next(csv.DictReader(fh))["n_grid_points"]) > int(first["n_grid_points"])  # the option reached the builder


def test_config_file_and_bad_option(registered, dataset_path, tmp_path):
    config = tmp_path / "eval.yaml"
    config.write_text("fit_only: true\nplots: false\nselect: '1'\n")
    result = runner.invoke(app, ["-r", str(dataset_path), "-o", str(tmp_path / "fit"), "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert "RI fit, 1 structures" in result.output
    result = runner.invoke(app, ["-r", str(dataset_path), "-o", str(tmp_path / "x"), "--fit-only", "-b", "grid_lvl=3"])
    assert result.exit_code == 1
    assert "refused the backend options ['grid_lvl']" in result.output and "Traceback" not in result.output


def test_errors_are_one_red_line(dataset_path, tmp_path):
    result = runner.invoke(app, [str(tmp_path / "missing.h5"), "-r", str(dataset_path), "-o", str(tmp_path / "r")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "error:" in result.output and "missing.h5" in result.output
    result = runner.invoke(app, ["-r", str(dataset_path), "-o", str(tmp_path / "r"), "--fit-only"])  # nothing registered
    assert result.exit_code == 1
    assert "no field builder is installed for producer 'gaussian-test'" in " ".join(result.output.split())


def test_options_prints_every_default_with_a_comment():
    import yaml
    from rho_data.settings import leaf_comments

    from rho_eval.config import Settings

    result = runner.invoke(app, ["options"])
    assert result.exit_code == 0
    assert yaml.safe_load(result.output) == Settings().to_dict()
    comments = leaf_comments(result.output)
    assert set(comments) == set(Settings().to_dict()) and all(comments.values())


def test_evaluate_by_name_repeated_config_and_set(registered, dataset_path, tmp_path):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("fit_only: true\nselect: '0:2'\nplots: true\n")
    second.write_text("select: '1'\n")  # a later file wins
    out = tmp_path / "fit"
    args = ["evaluate", "-r", str(dataset_path), "-o", str(out), "-c", str(first), "--config", str(second)]
    result = runner.invoke(app, [*args, "--set", "plots=false", "--set", "backend.spacing=0.4"])
    assert result.exit_code == 0, result.output
    assert "RI fit, 1 structures" in result.output and not (out / "plots").exists()
    assert "spacing: 0.4" in (out / "config.yaml").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "workers=0"], "error: --set 'workers=0': setting 'workers' must be a positive number, got 0"),
        (
            ["--set", "cube_spacing_bohr=.inf"],
            "error: --set 'cube_spacing_bohr=.inf': setting 'cube_spacing_bohr' must be a positive number, got inf",
        ),
        (["--set", "wokers=2"], "error: --set 'wokers=2': unknown setting(s) ['wokers']"),
        (["-j", "0"], "error: command line: setting 'workers' must be a positive number, got 0"),
    ],
)
def test_bad_values_name_their_layer(dataset_path, tmp_path, args, message):
    result = runner.invoke(app, ["-r", str(dataset_path), "-o", str(tmp_path / "r"), "--fit-only", *args])
    assert result.exit_code == 1 and message in result.stderr.splitlines()[0] and len(result.stderr.splitlines()) == 1
