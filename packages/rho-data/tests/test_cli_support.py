"""rho_data.cli_support.RhoTyper: every command's bad input and system errors end in one line and exit 1."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from rho_data import RhoDataError
from rho_data.cli_support import RhoTyper


class ToolError(RhoDataError):
    pass


class OtherError(Exception):
    pass


RAISED = {
    "tool": ToolError("settings.yaml: unknown setting 'x'"),
    "data": RhoDataError("multi\nline message", path="data.h5"),
    "oserror": PermissionError(errno.EACCES, "Permission denied", "/root/out.h5"),
    "enospc": OSError(errno.ENOSPC, "No space left on device", "out.h5"),
    "hdf5-full": OSError("Can't write data (file write failed: errno = 28, error message = 'No space left on device')"),
    "wrapped-full": RuntimeError("chunk write failed"),
    "bug": OtherError("a programming error"),
}


def make_app(console: Console) -> typer.Typer:
    app = RhoTyper(errors=(ToolError,), error_console=console)

    @app.callback()
    def main() -> None:
        """A test CLI."""

    @app.command()
    def run(what: str) -> None:
        if what == "ok":
            print("fine")
            return
        if what == "wrapped-full":
            try:
                raise OSError(errno.ENOSPC, "No space left on device")
            except OSError as inner:
                raise RAISED[what] from inner
        raise RAISED[what]

    return app


@pytest.fixture
def invoke(tmp_path):
    def call(what: str):
        path = tmp_path / f"{what}.err"
        with path.open("w") as handle:
            app = make_app(Console(file=handle, width=60))
            result = CliRunner().invoke(app, ["run", what])
        return result, path.read_text()

    return call


@pytest.mark.parametrize(
    "what, expected",
    [
        ("tool", "error: settings.yaml: unknown setting 'x'"),
        ("data", "error: data.h5: multi line message"),
        ("oserror", "error: /root/out.h5: permission denied"),
        ("enospc", "error: out.h5: the disk is full; free some space and run the command again (finished work is kept)"),
        ("hdf5-full", "error: the disk is full; free some space and run the command again (finished work is kept)"),
        ("wrapped-full", "error: the disk is full; free some space and run the command again (finished work is kept)"),
    ],
)
def test_errors_become_one_line_and_exit_1(invoke, what, expected):
    result, errors = invoke(what)
    assert result.exit_code == 1
    assert errors.splitlines() == [expected]  # one line even on a narrow console


def test_success_and_programming_errors(invoke):
    result, errors = invoke("ok")
    assert result.exit_code == 0 and "fine" in result.output and errors == ""
    result, errors = invoke("bug")
    assert isinstance(result.exception, OtherError) and errors == ""  # a bug still shows its traceback


def test_ctrl_c_exits_130(tmp_path):
    path = tmp_path / "err"
    with path.open("w") as handle:
        app = RhoTyper(error_console=Console(file=handle))

        @app.command()
        def run() -> None:
            raise KeyboardInterrupt

        result = CliRunner().invoke(app, [])
    assert result.exit_code == 130 and "interrupted" in path.read_text()


def test_callback_errors_are_caught(tmp_path):
    path = tmp_path / "err"
    with path.open("w") as handle:
        app = RhoTyper(error_console=Console(file=handle))

        @app.callback()
        def main() -> None:
            raise RhoDataError("bad global option")

        @app.command()
        def run() -> None:
            pass

        result = CliRunner().invoke(app, ["run"])
    assert result.exit_code == 1 and path.read_text().strip() == "error: bad global option"


USAGE_APP = """
import sys
from rho_data.cli_support import RhoTyper

app = RhoTyper(help="A test CLI.")


@app.callback()
def main() -> None:
    pass


@app.command()
def run(count: int, name: str = "x") -> None:
    print("ran", count, name)


app()
"""


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "abc"], "Invalid value for 'count'"),
        (["run"], "Missing argument"),
        (["run", "1", "--nope"], "No such option: --nope"),
        (["bogus"], "No such command 'bogus'"),
    ],
)
def test_usage_errors_are_one_line_exit_2(tmp_path, args, message):
    """A wrong type, a missing argument or an unknown option or command: one line, exit 2, no usage box."""
    import subprocess
    import sys

    script = tmp_path / "cli.py"
    script.write_text(USAGE_APP)
    done = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], done.stderr
    assert "Traceback" not in done.stderr and "--help" in lines[0]


def _skeleton():
    """A CLI built like every rho CLI: make_cli, the shared options, an old spelling, a default command."""
    from rho_data.cli_support import config_option, make_cli, output_option, overwrite_option, set_option

    app, console, errors = make_cli(help="A test CLI.", version="tool 1.2", default_command="go")

    @app.command(aliases={"--out": "--output", "--no-overwrite": None})
    def go(
        output: Path = output_option("Where."),
        config: list[Path] | None = config_option("tool"),
        overrides: list[str] | None = set_option(),
        overwrite: bool = overwrite_option(),
    ) -> None:
        console.print(f"go {output} {[str(c) for c in config or []]} {overrides or []} {overwrite}", highlight=False)

    @app.command()
    def other() -> None:
        console.print("other")

    return app


def test_make_cli_gives_the_version_shared_options_and_old_spellings():
    app = _skeleton()
    runner = CliRunner()
    assert runner.invoke(app, ["--version"]).output == "tool 1.2\n"
    result = runner.invoke(app, ["go", "-o", "x", "-c", "a.yaml", "--config", "b.yaml", "--set", "k=1", "--set", "s.k=2"])
    assert result.exit_code == 0 and result.output == "go x ['a.yaml', 'b.yaml'] ['k=1', 's.k=2'] False\n"
    assert runner.invoke(app, ["go", "--out", "y", "--overwrite"]).output == "go y [] [] True\n"
    assert runner.invoke(app, ["go", "--out=z", "--no-overwrite"]).output == "go z [] [] False\n"
    assert runner.invoke(app, ["go", "-o", "w", "--", "--out"]).exit_code != 0  # nothing after -- is respelt
    shown = runner.invoke(app, ["go", "--help"]).output
    assert "--output" in shown and "--overwrite" in shown and "--out " not in shown and "--no-overwrite" not in shown


def test_default_command_takes_arguments_without_a_command_name():
    app = _skeleton()
    runner = CliRunner()
    assert runner.invoke(app, ["-o", "x"]).output == "go x [] [] False\n"
    assert runner.invoke(app, ["other"]).output == "other\n"
    assert "go" in runner.invoke(app, ["--help"]).output and "other" in runner.invoke(app, []).output  # help, no run
