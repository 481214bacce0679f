import pytest
import yaml
from typer.testing import CliRunner

from aims_io.cli import app
from aims_io.errors import AimsIOError
from aims_io.settings import defaults, load_settings, parse_override


def test_defaults_then_yaml_then_overrides(tmp_path):
    user = tmp_path / "user.yaml"
    user.write_text("dft:\n  xc: pbe\nhpc:\n  backend: slurm\n  partition: debug\n")
    s = load_settings([user], ["dft.xc=b3lyp", "hpc.nodes=2"])
    assert s["dft"]["xc"] == "b3lyp" and s["hpc"]["backend"] == "slurm" and s["hpc"]["partition"] == "debug"
    assert s["hpc"]["nodes"] == 2 and s["dft"]["default_prodbas_acc"] == 1e-5


@pytest.mark.parametrize(
    "text, message",
    [
        ("dft:\n  xcc: pbe\n", "unknown setting 'dft.xcc'"),
        ("gpu: true\n", "unknown setting 'gpu'"),
        ("hpc:\n  nodes: two\n", "'hpc.nodes' must be a number"),
        ("hpc:\n  backend: pbs\n", "backend' must be local or slurm"),
        ("dft:\n  spin: collinear\n", "default_initial_moment"),
        ("- a\n- b\n", "must hold a mapping"),
    ],
)
def test_bad_settings(tmp_path, text, message):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    with pytest.raises(AimsIOError, match=message):
        load_settings([p])


def test_override_parsing():
    assert parse_override("hpc.setup_lines=['module load aims']") == {"hpc": {"setup_lines": ["module load aims"]}}
    with pytest.raises(AimsIOError, match="section.key=value"):
        parse_override("xc")


def test_cli_options_prints_defaults():
    result = CliRunner().invoke(app, ["options"])
    assert result.exit_code == 0
    assert yaml.safe_load(result.output) == defaults()


def test_cli_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and "aims-io 0.1.0" in result.output
