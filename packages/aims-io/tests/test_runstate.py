"""The run state lives in aims_io.runstate: queries read only, and it imports neither runner nor slurm."""

from __future__ import annotations

import subprocess
import sys

from aims_io.layout import FAILED_FILE, JOB_FILE, write_json
from aims_io.runstate import FAILED, NOT_STARTED, record_failures, reset, run_state, stage_states, was_started


def test_runstate_imports_no_runner_or_slurm():
    code = "import sys, aims_io.runstate; print(sorted(m for m in sys.modules if m in ('aims_io.runner', 'aims_io.slurm')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_queries_write_nothing_and_recording_is_explicit(tmp_path):
    run = tmp_path / "000000"
    run.mkdir()
    assert run_state(run).state == NOT_STARTED and not was_started(run)
    write_json(run / JOB_FILE, {"backend": "local", "pid": -1, "host": "elsewhere"})
    (run / "aims.out").write_text("SCF cycle 1\n")
    before = sorted(p.name for p in run.iterdir())
    states = stage_states([run])
    assert states[0].state == FAILED and "did not finish" in states[0].reason
    assert sorted(p.name for p in run.iterdir()) == before  # a query wrote nothing
    record_failures(states)
    assert (run / FAILED_FILE).is_file()
    reset(run)
    assert sorted(p.name for p in run.iterdir()) == ["aims.out.previous"]
