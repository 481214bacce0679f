"""Rich tables: the summary of a run and the status of a work directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.table import Table

from .workdir import WorkDir


def counts(wd: WorkDir) -> dict[str, int]:
    states = wd.states()
    n = wd.manifest()["n_structures"]
    done = sum(s.get("status") == "done" for s in states.values())
    failed = sum(s.get("status") == "failed" for s in states.values())
    return {"total": n, "done": done, "failed": failed, "pending": n - done - failed}


def summary_table(wd: WorkDir, title: str = "pyscf-io") -> Table:
    """Counts, time per structure, fit error and electron-count error of the finished structures."""
    states = wd.states()
    c = counts(wd)
    done = [s for s in states.values() if s.get("status") == "done"]
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("value", justify="right")
    rows = [
        ("structures", c["total"]),
        ("done", c["done"]),
        ("failed", f"[red]{c['failed']}[/]" if c["failed"] else 0),
        ("pending", c["pending"]),
        ("unreadable inputs", len(wd.problems())),
    ]
    if done:
        times = np.array([s["time_s"] for s in done])
        nmae = np.array([s["fit_nmae_percent"] for s in done])
        n_err = np.array([abs(s["n_electrons_fit"] - s["n_electrons"]) for s in done])
        rows += [
            ("time per structure (mean)", f"{times.mean():.2f} s"),
            ("fit %NMAE vs SCF (mean / max)", f"{nmae.mean():.3f} / {nmae.max():.3f}"),
            ("|N_fit - N| (max)", f"{n_err.max():.1e}"),
        ]
    for what, value in rows:
        table.add_row(what, str(value))
    return table


def failure_lines(wd: WorkDir, limit: int = 200) -> list[str]:
    """One line per unreadable input and per failed structure: file, structure, label, reason."""
    lines = [f"{p.source}: {p.message}" for p in wd.problems()]
    failed = sorted((i, s) for i, s in wd.states().items() if s.get("status") == "failed")
    for _, s in failed[:limit]:
        label = s.get("label", "")
        frame = s.get("frame", "?")
        named = "" if label == f"{Path(s.get('source', '')).name}:{frame}" else f" ({label})"
        lines.append(f"{s.get('source', '')}: structure {frame}{named}: {s.get('reason', '')}")
    if len(failed) > limit:
        lines.append(f"... and {len(failed) - limit} more failed structures (see {wd.state_dir})")
    return lines
