"""The report of ``pyscf-io guess``: its directory, per-structure results, summary, CSV and tables.

The report directory holds ``run.json`` (what is compared: the predictions and dataset, the
guesses, the guess grid level, the structures), one ``structures/NNNNNN.json`` per finished
structure (written atomically: a killed run continues where it stopped) and, at the end,
``guess.csv`` (one row per structure and guess), ``guess.json`` (the same and the summary) and
``summary.json``.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np

from rho_data.atomic import remove_stale_temporaries, write_text_atomic

from .errors import PyscfIoError

COLUMNS = [
    "dataset_index",
    "label",
    "n_atoms",
    "guess",
    "cycles",
    "converged",
    "energy_ha",
    "build_s",
    "df_build_s",
    "scf_s",
    "total_s",
    "n_electrons_guess",
    "renormalised",
]


class ReportDir:
    """The report directory of one guess run (see the module doc)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.structures = self.path / "structures"

    def prepare(self, record: dict, overwrite: bool) -> None:
        """Create, reopen (same run: resume) or, with ``overwrite``, restart the directory."""
        run = self.path / "run.json"
        if self.path.exists() and not self.path.is_dir():
            raise PyscfIoError("is not a directory", path=self.path)
        if self.path.is_dir() and any(self.path.iterdir()):
            same = False
            if run.is_file():
                try:
                    same = json.loads(run.read_text(encoding="utf-8")) == record
                except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                    same = False
            if not same and not overwrite:
                raise PyscfIoError(
                    "holds the report of another guess run (other predictions, dataset, guesses or structures); "
                    "use --overwrite to replace it or choose another directory",
                    path=self.path,
                )
            if not same:
                shutil.rmtree(self.structures, ignore_errors=True)
        if not self.path.parent.is_dir():
            raise PyscfIoError("its parent directory does not exist", path=self.path)
        self.structures.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.structures)
        write_text_atomic(run, json.dumps(record, indent=1) + "\n", what="guess run record")

    def result_path(self, index: int) -> Path:
        return self.structures / f"{index:06d}.json"

    def finished(self, index: int) -> dict | None:
        path = self.result_path(index)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return None  # damaged: computed again

    def save(self, result: dict) -> None:
        write_text_atomic(self.result_path(result["dataset_index"]), json.dumps(result) + "\n", what="guess result")


def summarise(rows: list[dict], conv_tol: float) -> dict:
    """Mean cycles and times per guess, what ml saves against minao, the largest energy difference."""
    by: dict[str, list[dict]] = {}
    for row in rows:
        by.setdefault(row["guess"], []).append(row)
    summary: dict = {"guesses": {}, "conv_tol": conv_tol}
    for guess, rs in by.items():
        summary["guesses"][guess] = {
            "structures": len(rs),
            "converged": sum(r["converged"] for r in rs),
            "mean_cycles": float(np.mean([r["cycles"] for r in rs])),
            "mean_build_s": float(np.mean([r["build_s"] for r in rs])),
            "mean_scf_s": float(np.mean([r["scf_s"] for r in rs])),
            "mean_total_s": float(np.mean([r["total_s"] for r in rs])),
        }
    atoms = [r["n_atoms"] for r in rows]
    summary["n_atoms_range"] = [int(min(atoms)), int(max(atoms))] if atoms else []
    summary["structures"] = len({r["dataset_index"] for r in rows})
    g = summary["guesses"]
    for other in ("ml", "ri"):
        if other in g and "minao" in g:
            summary[f"{other}_cycles_saved_vs_minao"] = 1 - g[other]["mean_cycles"] / g["minao"]["mean_cycles"]
            summary[f"{other}_wall_saved_vs_minao_s"] = g["minao"]["mean_total_s"] - g[other]["mean_total_s"]
            summary[f"{other}_wall_saved_vs_minao"] = 1 - g[other]["mean_total_s"] / g["minao"]["mean_total_s"]
    if "ml" in g and "ri" in g:
        summary["ml_minus_ri_cycles"] = g["ml"]["mean_cycles"] - g["ri"]["mean_cycles"]
    energies: dict[tuple[int, str], float] = {(r["dataset_index"], r["guess"]): r["energy_ha"] for r in rows}
    for other in ("ml", "ri"):
        diffs = [abs(energies[(i, other)] - e) for (i, g), e in energies.items() if g == "minao" and (i, other) in energies]
        if diffs:
            summary[f"max_abs_e_{other}_minus_minao_ha"] = float(max(diffs))
    return summary


def csv_text(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{row[k]:.12g}" if isinstance(row[k], float) else row[k]) for k in COLUMNS})
    return out.getvalue()


def write_report(report: ReportDir, results: list[dict], record: dict, grid_level: int) -> dict:
    rows = [row for result in sorted(results, key=lambda r: r["dataset_index"]) for row in result["rows"]]
    summary = summarise(rows, record["settings"]["scf_conv_tol"])
    summary["guess_grid_level"] = grid_level
    summary["scf_grid_level"] = record["settings"]["grid_level"]
    write_text_atomic(report.path / "guess.csv", csv_text(rows), what="guess report")
    full = json.dumps({"summary": summary, "rows": rows}, indent=1) + "\n"
    write_text_atomic(report.path / "guess.json", full, what="guess report")
    write_text_atomic(report.path / "summary.json", json.dumps(summary, indent=1) + "\n", what="guess summary")
    return summary


def summary_table(summary: dict):
    """A rich table of the summary."""
    from rich.table import Table

    table = Table(title=f"SCF cycles per initial guess ({summary['structures']} structures)", title_justify="left")
    for name in ("guess", "converged", "mean cycles", "guess build (s)", "SCF (s)", "total (s)"):
        table.add_column(name, justify="right" if name != "guess" else "left")
    for guess, g in summary["guesses"].items():
        table.add_row(
            guess,
            f"{g['converged']}/{g['structures']}",
            f"{g['mean_cycles']:.2f}",
            f"{g['mean_build_s']:.2f}",
            f"{g['mean_scf_s']:.2f}",
            f"{g['mean_total_s']:.2f}",
        )
    return table


def summary_lines(summary: dict) -> list[str]:
    lines = []
    if summary["n_atoms_range"]:
        lines.append(f"atoms per structure: {summary['n_atoms_range'][0]}-{summary['n_atoms_range'][1]}")
    for other in ("ml", "ri"):
        if f"{other}_cycles_saved_vs_minao" in summary:
            lines.append(
                f"{other} vs minao: {100 * summary[f'{other}_cycles_saved_vs_minao']:.1f} % of the cycles saved, "
                f"wall time incl. guess build {summary[f'{other}_wall_saved_vs_minao_s']:+.2f} s per structure "
                f"({100 * summary[f'{other}_wall_saved_vs_minao']:+.1f} %)"
            )
        key = f"max_abs_e_{other}_minus_minao_ha"
        if key in summary:
            lines.append(f"max |E_{other} - E_minao| = {summary[key]:.2e} Ha (conv_tol {summary['conv_tol']:g})")
    if "ml_minus_ri_cycles" in summary:
        lines.append(f"ml - ri: {summary['ml_minus_ri_cycles']:+.2f} cycles")
    return lines
