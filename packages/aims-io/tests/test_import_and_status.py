"""Import: unconverged SCF runs, existing datasets (--append / --overwrite); `status` writes nothing."""

from __future__ import annotations

import json
import os
import time

from conftest import copy_run
from typer.testing import CliRunner

from aims_io.cli import app
from aims_io.layout import JOB_FILE, write_json
from rho_data import open_dataset


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _unconverged(run):
    text = (run / "aims.out").read_text()
    assert "Self-consistency cycle converged." in text
    (run / "aims.out").write_text(text.replace("Self-consistency cycle converged.", "SCF cycle stopped."))
    return run


def test_unconverged_scf_warns_or_is_refused(ch4_ri_tree, tmp_path):
    root = tmp_path / "ri"
    copy_run(ch4_ri_tree / "000000", root / "good")
    bad = _unconverged(copy_run(ch4_ri_tree / "000000", root / "stuck"))
    r = invoke("import", root, tmp_path / "warned.h5")
    assert r.exit_code == 0, r.output + r.stderr
    (line,) = r.stderr.splitlines()
    assert line.startswith("warning: ") and f"{bad}/aims.out" in line and "did not converge" in line
    with open_dataset(tmp_path / "warned.h5") as ds:
        assert ds.labels() == ["good", "stuck"]
        assert [s.metadata["scf_converged"] for s in ds] == [1.0, 0.0]
    r = invoke("import", root, tmp_path / "strict.h5", "--require-converged")
    assert r.exit_code == 1
    (line,) = r.stderr.splitlines()
    assert line.startswith("error: ") and f"{bad}/aims.out" in line and "--require-converged" in line
    assert "Traceback" not in r.output
    with open_dataset(tmp_path / "strict.h5") as ds:
        assert ds.labels() == ["good"]


def test_existing_dataset_needs_append_or_overwrite(ch4_ri_tree, tmp_path):
    root = tmp_path / "ri"
    copy_run(ch4_ri_tree / "000000", root / "a")
    out = tmp_path / "ds.h5"
    assert invoke("import", root, out).exit_code == 0
    before = out.read_bytes()
    copy_run(ch4_ri_tree / "000000", root / "b")
    r = invoke("import", root, out)
    assert r.exit_code == 1 and "already exists" in r.stderr and "--overwrite" in r.stderr
    assert out.read_bytes() == before  # untouched
    r = invoke("import", root, out, "--append")
    assert r.exit_code == 0 and "imported 1, already present 1" in r.output
    with open_dataset(out) as ds:
        old_id = ds.dataset_id
        assert ds.labels() == ["a", "b"]
    r = invoke("import", root, out, "--overwrite")
    assert r.exit_code == 0 and "imported 2, already present 0" in r.output
    with open_dataset(out) as ds:
        assert ds.labels() == ["a", "b"] and ds.dataset_id != old_id
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds.h5", "ri"]  # no temporary file left
    assert "exclude" in invoke("import", root, out, "--append", "--overwrite").stderr


def test_overwrite_keeps_the_old_dataset_when_nothing_is_imported(ch4_ri_tree, tmp_path):
    root = tmp_path / "ri"
    copy_run(ch4_ri_tree / "000000", root / "a")
    out = tmp_path / "ds.h5"
    assert invoke("import", root, out).exit_code == 0
    before = out.read_bytes()
    (root / "a" / "ri_ovlp.out").unlink()  # the only run now fails
    r = invoke("import", root, out, "--overwrite")
    assert r.exit_code == 1 and "ri_ovlp.out" in r.stderr
    assert out.read_bytes() == before


def test_status_is_a_query_and_writes_nothing(tmp_path):
    run = tmp_path / "scf" / "000000"
    run.mkdir(parents=True)
    (run / "control.in").write_text("xc pbe\n")
    (run / "aims.out").write_text("  Begin self-consistency loop\n")  # started, never finished
    dead = 2**22 + 12345  # no such process
    write_json(run / JOB_FILE, {"backend": "local", "pid": dead, "host": os.uname().nodename, "started": time.time()})
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    r = invoke("status", "scf", "-w", tmp_path, "--json")
    assert r.exit_code == 0, r.output
    state = json.loads(r.output.strip())
    assert state["state"] == "failed" and "did not finish" in state["reason"]
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before
