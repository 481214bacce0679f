import pytest
import yaml

from pyscf_io.config import DEFAULT_YAML, DEFAULTS, fit_metric, load_settings
from pyscf_io.errors import PyscfIoError


def test_defaults_round_trip():
    assert yaml.safe_load(DEFAULT_YAML) == DEFAULTS
    s = load_settings()
    assert s["xc"] == "PBE" and s["basis"] == "def2-SVP" and s["aux_basis"] == "etb" and s["etb_beta"] == 1.6
    assert s["fit_metric"] == "auto" and fit_metric(s) == "coulomb" and fit_metric(s, periodic=True) == "overlap"
    assert s["cell_basis"] == "gth-dzvp" and s["pseudo"] == "gth-pbe" and s["kmesh"] == [1, 1, 1]


def test_yaml_then_cli(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("basis: sto-3g\nfit_metric: Overlap\nslurm:\n  partition: short\n")
    s = load_settings(cfg, {"basis": "def2-SVP", "xc": None, "slurm.time": "00:10:00"})
    assert s["basis"] == "def2-SVP"  # CLI wins
    assert s["fit_metric"] == "overlap" and s["xc"] == "PBE"
    assert s["slurm"]["partition"] == "short" and s["slurm"]["time"] == "00:10:00"


@pytest.mark.parametrize(
    "text, message",
    [
        ("basiss: sto-3g\n", "unknown setting 'basiss'"),
        ("slurm:\n  partitoin: x\n", "unknown setting 'slurm.partitoin'"),
        ("fit_metric: l2\n", "must be one of"),
        ("spin: -1\n", "must be >= 0"),
        ("charge: zero\n", "must be int"),
        ("- a\n", "must be a mapping"),
        ("a: [\n", "not valid YAML"),
    ],
)
def test_bad_settings(tmp_path, text, message):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    with pytest.raises(PyscfIoError, match=message) as err:
        load_settings(cfg)
    assert str(cfg) in str(err.value)


def test_options_has_a_comment_for_every_setting():
    from typer.testing import CliRunner

    from pyscf_io.cli import app
    from rho_data.settings import leaf_comments

    printed = CliRunner().invoke(app, ["options"]).output
    assert yaml.safe_load(printed) == DEFAULTS
    comments = leaf_comments(printed)
    flat = {k for k, v in DEFAULTS.items() if k != "slurm"} | {f"slurm.{k}" for k in DEFAULTS["slurm"]}
    assert set(comments) == flat and all(comments.values()), [k for k, v in comments.items() if not v]


def test_files_in_order_then_set_then_named_options(tmp_path):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("basis: sto-3g\nxc: LDA\nslurm:\n  mem: 4G\n")
    second.write_text("basis: 6-31g\n")
    s = load_settings([first, second], {"xc": "B3LYP"}, ["grid_level=2", "slurm.time='00:05:00'", "xc=HF"])
    assert s["basis"] == "6-31g" and s["grid_level"] == 2 and s["xc"] == "B3LYP"  # a later file, then --set, then --xc
    assert s["slurm"] == {**DEFAULTS["slurm"], "mem": "4G", "time": "00:05:00"}


@pytest.mark.parametrize(
    ("sets", "overrides", "message"),
    [
        (["grid_level=12"], {}, r"^--set 'grid_level=12': setting 'grid_level' must be >= 0 and <= 9, got 12$"),
        (["slurm.cpus_per_task=two"], {}, r"^--set 'slurm.cpus_per_task=two': setting 'slurm.cpus_per_task' must be int"),
        (["fit_metric=l2"], {}, r"^--set 'fit_metric=l2': setting 'fit_metric' must be one of"),
        (["basiss=x"], {}, r"^--set 'basiss=x': unknown setting 'basiss'"),
        ([], {"etb_beta": 0.5}, r"^command line: setting 'etb_beta' must be > 1, got 0.5$"),
    ],
)
def test_bad_values_name_their_layer_key_and_value(sets, overrides, message):
    with pytest.raises(PyscfIoError, match=message):
        load_settings(None, overrides, sets)


def test_a_bad_value_names_the_file_that_holds_it(tmp_path):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text("spin: 2\n")
    bad.write_text("charge: 1.5\n")
    with pytest.raises(PyscfIoError, match=rf"^{bad}: setting 'charge' must be int, got 1.5$"):
        load_settings([good, bad])
