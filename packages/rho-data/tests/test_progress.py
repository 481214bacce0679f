"""Progress bars appear on an interactive terminal only: redirected logs hold the results alone."""

from __future__ import annotations

import io
import os
import subprocess
import sys

from rich.console import Console

from rho_data.cli_support import progress_bar

BAR_CHARACTERS = ("━", "\r", "\x1b", "validating", "merging", "/?")


def run_to_file(tmp_path, *args) -> str:
    log = tmp_path / "log.txt"
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_INTERACTIVE")}
    with open(log, "w") as handle:  # stdout and stderr into one file, as `cmd > log 2>&1`
        subprocess.run([sys.executable, "-m", "rho_data.cli", *map(str, args)], stdout=handle, stderr=handle, env=env)
    return log.read_text()


def test_validate_into_a_log_prints_only_its_result(tmp_path, dataset_path):
    assert run_to_file(tmp_path, "validate", dataset_path) == f"{dataset_path}: valid\n"


def test_merge_into_a_log_has_no_progress_characters(tmp_path, dataset_path):
    text = run_to_file(tmp_path, "merge", tmp_path / "merged.h5", dataset_path)
    assert not any(c in text for c in BAR_CHARACTERS), repr(text)
    assert text.endswith("structures from 1 files\n")


def test_bar_is_shown_on_a_terminal_and_gone_when_done():
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, force_interactive=True, width=80)
    with progress_bar(console) as progress:
        assert not progress.disable
        progress.add_task("working", total=3)
    assert "working" in screen.getvalue()  # drawn, then erased (transient)
    assert progress_bar(Console(file=io.StringIO())).disable  # not a terminal: nothing drawn
