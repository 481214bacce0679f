"""The flags rho-data spells like every rho CLI: a plain --overwrite on each command that writes, and -o/--output."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from rho_data.cli import app

WRITERS = (["split"], ["merge"], ["export"], ["upgrade"], ["import", "metatrain"])


@pytest.mark.parametrize("command", WRITERS)
def test_overwrite_is_a_plain_flag(command):
    shown = CliRunner().invoke(app, [*command, "--help"], terminal_width=200).output
    assert "--overwrite" in shown and "--no-overwrite" not in shown


def test_old_no_overwrite_is_still_accepted_and_replaces_nothing(tmp_path, dataset_path):
    run = CliRunner().invoke
    assert run(app, ["split", str(dataset_path), "-o", str(tmp_path / "s")]).exit_code == 0
    before = (tmp_path / "s" / "train.idx").read_text()
    again = run(app, ["split", str(dataset_path), "--output", str(tmp_path / "s"), "--seed", "3", "--no-overwrite"])
    assert again.exit_code == 1 and "already exists (pass --overwrite" in again.stderr
    assert (tmp_path / "s" / "train.idx").read_text() == before
