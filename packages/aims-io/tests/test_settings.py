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


def test_cli_options_has_a_comment_for_every_setting():
    from rho_data.settings import leaf_comments

    result = CliRunner().invoke(app, ["options"])
    comments = leaf_comments(result.output)
    flat = {f"{section}.{key}" for section, values in defaults().items() for key in values}
    assert set(comments) == flat and all(comments.values()), [k for k, v in comments.items() if not v]


def test_later_files_win_and_errors_name_the_layer(tmp_path):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("dft:\n  xc: pbe\n  spin: collinear\nhpc:\n  nodes: 2\n")
    second.write_text("dft:\n  xc: b3lyp\n  default_initial_moment: 0.5\n")  # completes what a.yaml needs
    s = load_settings([first, second], ["hpc.nodes=3"])
    assert s["dft"]["xc"] == "b3lyp" and s["dft"]["spin"] == "collinear" and s["hpc"]["nodes"] == 3
    with pytest.raises(AimsIOError, match=r"^--set 'hpc.max_parallel=0': setting 'hpc.max_parallel' must be >= 1, got 0$"):
        load_settings([first, second], ["hpc.max_parallel=0"])
    second.write_text("hpc:\n  backend: pbs\n")
    with pytest.raises(AimsIOError, match=rf"^{second}: setting 'hpc.backend' must be local or slurm, got 'pbs'$"):
        load_settings([first, second])


def test_cli_old_spellings_still_work(tmp_path):
    """``-s`` for ``--set`` and ``compare --out`` for ``--output`` are kept, hidden from --help."""
    runner = CliRunner()
    result = runner.invoke(app, ["run", "scf", "-w", str(tmp_path), "-s", "hpc.nodes=zero"])
    assert result.exit_code == 1 and "--set 'hpc.nodes=zero': setting 'hpc.nodes' must be a number" in result.stderr
    shown = runner.invoke(app, ["compare", "--help"], terminal_width=200).output
    assert "--output" in shown and "--out " not in shown
    result = runner.invoke(app, ["compare", "guess/x", "-w", str(tmp_path), "--out", str(tmp_path / "r.json")])
    assert result.exit_code == 1 and "no guess runs" in result.stderr  # --out parsed as --output
