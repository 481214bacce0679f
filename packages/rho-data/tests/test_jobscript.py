"""rho_data.jobscript: no control character reaches a job script; words are quoted; the script is as built."""

from __future__ import annotations

import shlex
import stat
import subprocess

import pytest

from rho_data import RhoDataError
from rho_data.jobscript import JobScript, JobScriptError, refuse_control_characters, shell_command

CONTROL = {
    "NUL": "\x00",
    "tab": "\t",
    "newline": "\n",
    "carriage return": "\r",
    "vertical tab": "\x0b",
    "form feed": "\x0c",
    "escape": "\x1b",
    "unit separator": "\x1f",
    "DEL": "\x7f",
    "C1 NEL": "\x85",
    "C1 CSI": "\x9b",
    "line separator": "\u2028",
    "paragraph separator": "\u2029",
}

HOSTILE_WORDS = ["$(touch pwned)", "`touch pwned`", "it's", 'say "hi"', "a;touch pwned", "two words", "*", "$HOME", "a|b&c>d"]


@pytest.mark.parametrize("name", CONTROL)
def test_every_control_character_is_refused_with_the_setting_named(name):
    value = f"debug{CONTROL[name]}rm -rf ~"
    with pytest.raises(JobScriptError, match=r"^slurm\.partition contains the control character") as caught:
        refuse_control_characters(value, "slurm.partition")
    assert isinstance(caught.value, RhoDataError) and "\n" not in str(caught.value)
    builders = {
        "directive": lambda: JobScript().directive("--partition", value, setting="slurm.partition"),
        "comment": lambda: JobScript().comment(value),
        "command": lambda: JobScript().command(value, setting="slurm.setup[0]"),
    }
    for part, build in builders.items():
        with pytest.raises(JobScriptError) as caught:
            build().text()
        assert {"directive": "slurm.partition", "comment": "comment", "command": "slurm.setup[0]"}[part] in str(caught.value)
        assert "\n" not in str(caught.value)
    with pytest.raises(JobScriptError, match="work directory"):
        shell_command(["cd", value], "work directory")


def test_printable_unicode_passes():
    assert refuse_control_characters("Méthane ✓ 水", "label") == "Méthane ✓ 水"


@pytest.mark.parametrize("word", HOSTILE_WORDS)
def test_shell_command_quotes_every_word(tmp_path, word):
    line = shell_command(["printf", "%s\\n", word], "command")
    assert shlex.split(line) == ["printf", "%s\\n", word]
    assert subprocess.run(["bash", "-n", "-c", line], capture_output=True).returncode == 0
    done = subprocess.run(["bash", "-c", line], cwd=tmp_path, capture_output=True, text=True)
    assert done.stdout == word + "\n" and not (tmp_path / "pwned").exists()


def test_the_script_holds_exactly_the_lines_built(tmp_path):
    work = tmp_path / "runs" / "it's a $(dir)"
    script = (
        JobScript()
        .directive("--job-name", "rho-train", setting="slurm.job_name")
        .directive("--time", "01:00:00", setting="slurm.time")
        .directive("--exclusive")
        .comment("written by rho-data's tests")
        .command("module load python", setting="slurm.setup[0]")
        .command(shell_command(["cd", work], "work directory"))
        .command(shell_command(["rho-train", "train", "-o", "a;b"]))
    )
    path = script.write(tmp_path / "job.sh")
    text = path.read_text()
    assert text.splitlines() == [
        "#!/bin/bash",
        "#SBATCH --job-name=rho-train",
        "#SBATCH --time=01:00:00",
        "#SBATCH --exclusive",
        "# written by rho-data's tests",
        "module load python",
        "cd " + shlex.quote(str(work)),
        "rho-train train -o 'a;b'",
    ]
    assert text.endswith("\n") and text == script.text()
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o750
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.sh"]  # no temporary left


def test_a_refused_script_is_not_written(tmp_path):
    path = tmp_path / "job.sh"
    path.write_text("#!/bin/bash\necho old\n")
    with pytest.raises(JobScriptError, match="slurm.account"):
        JobScript().directive("--account", "a\necho pwned", setting="slurm.account").write(path)
    assert path.read_text() == "#!/bin/bash\necho old\n"
    with pytest.raises(JobScriptError, match="the job script's path"):
        JobScript().write(tmp_path / "job\n.sh")


def test_sbatch_without_slurm_is_one_line(monkeypatch):
    from rho_data import jobscript

    class SubmitError(RhoDataError):
        pass

    monkeypatch.setattr(jobscript.shutil, "which", lambda name: None)
    with pytest.raises(SubmitError, match="sbatch is not on PATH"):
        jobscript.sbatch(["job.sh"], error=SubmitError)
