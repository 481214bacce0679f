"""SIGKILL every long-running command twice at a random moment; what it committed stays intact
and the rerun completes with the reference output (benchmarks/kill_survival.py, 2 kills each)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_benchmark():
    spec = importlib.util.spec_from_file_location("kill_survival", ROOT / "benchmarks" / "kill_survival.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_every_kill_is_survived(tmp_path: Path) -> None:
    bench = load_benchmark()
    outcomes = bench.run_benchmark(tmp_path, kills=2, seed=11)
    report = bench.table(outcomes)
    assert {o.command for o in outcomes} == {s.name for s in bench.scenarios(False)}, report
    assert all(o.kills + o.finished_first == 2 for o in outcomes), report
    assert sum(o.kills for o in outcomes) >= len(outcomes), report  # the kills really happened
    assert bench.all_survived(outcomes), report


def test_the_checks_can_fail(tmp_path: Path) -> None:
    """A changed, partial or missing metrics row, an unreadable dataset and a changed number are reported."""
    bench = load_benchmark()
    rows = {
        "good": "row,label,x\n0,a,1.0\n1,b,2.0\n",
        "changed": "row,label,x\n0,a,1.0\n1,b,2.0000001\n",
        "partial": "row,label,x\n0,a,1.0\n1,b\n",
        "short": "row,label,x\n0,a,1.0\n",
    }
    for name, text in rows.items():
        (tmp_path / f"{name}.csv").write_text(text)
    good = tmp_path / "good.csv"
    assert bench.compare_rows(good, good, complete=True) is None
    assert "x = 2.0000001" in bench.compare_rows(tmp_path / "changed.csv", good, complete=False)
    assert "partial" in bench.compare_rows(tmp_path / "partial.csv", good, complete=False)
    assert bench.compare_rows(tmp_path / "short.csv", good, complete=False) is None
    assert "1 rows" in bench.compare_rows(tmp_path / "short.csv", good, complete=True)
    broken = tmp_path / "broken.h5"
    broken.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    assert bench.compare_rho_file(broken, broken) is not None
    assert bench.compare_json({"a": 1.0, "time_s": 3}, {"a": 1.0 + 1e-6, "time_s": 1}, "s") is not None
    assert bench.compare_json({"a": 1.0, "time_s": 3}, {"a": 1.0, "time_s": 1}, "s") is None
