import pytest
import yaml

from pyscf_io.config import DEFAULT_YAML, DEFAULTS, load_settings
from pyscf_io.errors import PyscfIoError


def test_defaults_round_trip():
    assert yaml.safe_load(DEFAULT_YAML) == DEFAULTS
    s = load_settings()
    assert s["xc"] == "PBE" and s["basis"] == "def2-SVP" and s["aux_basis"] == "etb" and s["etb_beta"] == 1.6
    assert s["fit_metric"] == "coulomb"


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
