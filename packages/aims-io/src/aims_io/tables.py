"""What ``aims-io status`` and ``aims-io compare`` print: the run-state table, the guess-comparison table and summary."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from .runstate import RunState

_COLOUR = {"finished": "green", "running": "cyan", "failed": "red", "not started": "yellow"}


def status_table(stage: str, states: Sequence[RunState]) -> Table:
    """One row per run (name, state, reason); the title counts the runs per state."""
    counts: dict[str, int] = {}
    for s in states:
        counts[s.state] = counts.get(s.state, 0) + 1
    table = Table(title=f"{stage}: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    table.add_column("run")
    table.add_column("state")
    table.add_column("reason")
    for s in states:
        table.add_row(s.run_dir.name, f"[{_COLOUR[s.state]}]{s.state}[/]", s.reason)
    return table


def comparison_table(stage: str, report: dict) -> Table:
    """One row per structure of a guess comparison (``aims_io.guess.compare_guess``)."""
    table = Table(title=f"{stage}: SCF from predicted coefficients (ml) against FHI-aims's default guess")
    columns = ("structure", "cycles ml", "cycles default", "saved", "converged", "dE (eV)", "wall ml (s)", "wall default (s)")
    for column in columns:
        table.add_column(column)
    for r in report["rows"]:
        table.add_row(
            r["label"],
            str(r["cycles_ml"]),
            str(r["cycles_default"]),
            str(r["cycles_saved"]),
            f"{'yes' if r['converged_ml'] else 'NO'}/{'yes' if r['converged_default'] else 'NO'}",
            f"{r['energy_difference_ev']:.2e}",
            f"{r['wall_ml_s']:.2f}",
            f"{r['wall_default_s']:.2f}",
        )
    return table


def comparison_summary(report: dict, target: object) -> str:
    """The one-line summary of a guess comparison whose JSON report is ``target``."""
    s = report["summary"]
    if not s["converged_both"]:
        return f"no structure converged with both guesses; report in {target}"
    return (
        f"{s['converged_both']} of {s['structures']} structures converged with both guesses: mean cycles "
        f"{s['mean_cycles_ml']:.2f} (ml) vs {s['mean_cycles_default']:.2f} (default), "
        f"{100 * s['fraction_cycles_saved']:.1f} % of cycles saved; wall time {100 * s['fraction_wall_saved']:.1f} % saved; "
        f"max |dE| {s['max_abs_energy_difference_ev']:.2e} eV; report in {target}"
    )
