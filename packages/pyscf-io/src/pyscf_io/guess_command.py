"""``pyscf-io guess``: SCF runs from predicted, RI and PySCF's guesses for a report directory (resumable)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


def run_guess_report(
    predictions: Path,
    reference: Path,
    report_dir: Path,
    *,
    indices: Path | None,
    guesses: str | None,
    guess_grid_level: int,
    workers: int,
    overwrite: bool,
    say: Callable[[Any], None],
    warn: Callable[[str], None],
) -> None:
    """Run the pending structures' SCFs from every guess, save each structure's result as it
    finishes, then write the summary (``guess.csv``, ``guess.json``) and show it."""
    from .guess_run import ReportDir, parse_guesses, plan, run_jobs, summary_lines, summary_table, write_report

    settings, jobs, record = plan(predictions, reference, indices, parse_guesses(guesses) if guesses is not None else None)
    names = record["guesses"]
    record["guess_grid_level"] = guess_grid_level
    report = ReportDir(report_dir)
    report.prepare(record, overwrite)
    results, pending = [], []
    for job in jobs:
        found = report.finished(job.dataset_index)
        (results.append(found) if found is not None else pending.append(job))
    if results:
        say(f"{len(results)} structures already finished in {report.path}; computing {len(pending)}")

    def done(result: dict) -> None:
        report.save(result)
        results.append(result)
        for line in result["warnings"]:
            warn(line)
        for row in result["rows"]:
            if not row["converged"]:
                where = f"{reference}: structure {row['dataset_index']} ({row['label']})"
                warn(f"{where}: the SCF from the {row['guess']} guess did not converge")
        say(
            f"structure {result['dataset_index']}: "
            + ", ".join(f"{r['guess']} {r['cycles']}" for r in result["rows"])
            + " cycles"
        )

    run_jobs(reference, predictions, pending, settings, names, guess_grid_level, workers, done)
    summary = write_report(report, results, record, guess_grid_level)
    say(summary_table(summary))
    for line in summary_lines(summary):
        say(line)
    for other in ("ml", "ri"):
        diff = summary.get(f"max_abs_e_{other}_minus_minao_ha")
        if diff is not None and diff > settings["scf_conv_tol"]:
            warn(f"max |E_{other} - E_minao| = {diff:.2e} Ha exceeds the SCF tolerance {settings['scf_conv_tol']:g}")
    say(f"wrote {report.path / 'guess.csv'}, {report.path / 'guess.json'}")
