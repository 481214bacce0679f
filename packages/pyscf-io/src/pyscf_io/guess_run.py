"""``pyscf-io guess``: SCF cycles and time from each initial guess, per structure, resumable.

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
import multiprocessing
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rho_data import RhoFile, open_dataset, open_predictions
from rho_data.atomic import remove_stale_temporaries, write_text_atomic
from rho_data.checks import require_finite
from rho_data.split import read_index_file

from .errors import PyscfIoError
from .guess import COEFFICIENT_GUESSES, PYSCF_GUESSES, guess_xc, rebuild_molecule, scf_settings, structure_guesses

DEFAULT_GUESSES = "ml,ri,minao,atom,huckel,vsap"
#: Grid level of the guess's V_xc (the SCF keeps its own level): measured in the README.
DEFAULT_GUESS_GRID_LEVEL = 1
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


def parse_guesses(text: str) -> list[str]:
    """The comma-separated guess names, checked (unknown, empty or repeated names are one line)."""
    names = [g.strip().lower() for g in text.split(",")]
    known = COEFFICIENT_GUESSES + PYSCF_GUESSES
    bad = [g for g in names if g not in known]
    if bad or not names:
        raise PyscfIoError(f"--guesses: unknown guess '{bad[0] if bad else ''}' (known: {', '.join(known)})")
    if len(set(names)) != len(names):
        raise PyscfIoError(f"--guesses: a guess is named twice in '{text}'")
    return names


@dataclass
class Job:
    """One structure: where its coefficients are and which row of the predictions holds them."""

    dataset_index: int
    prediction_row: int


def match_predictions(pred: RhoFile, ds: RhoFile) -> dict[int, int]:
    """{dataset index: prediction row}; predictions of another dataset, basis or geometry are refused."""
    if pred.dataset_id != ds.dataset_id:
        raise PyscfIoError(
            f"holds predictions of dataset {pred.dataset_id or '(none)'}, not of {ds.path} (dataset {ds.dataset_id})",
            path=pred.path,
        )
    if pred.basis != ds.basis:
        raise PyscfIoError(f"its auxiliary basis differs from that of {ds.path}", path=pred.path)
    rows: dict[int, int] = {}
    for row in range(len(pred)):
        got = pred.read(row, ("coefficients", "dataset_index"))
        index = int(got.dataset_index)
        if not 0 <= index < len(ds):
            raise PyscfIoError(f"row {row}: dataset_index {index} is not a structure of {ds.path}", path=pred.path)
        if index in rows:
            raise PyscfIoError(f"rows {rows[index]} and {row} both predict structure {index}", path=pred.path)
        numbers = ds.numbers(index)
        if not np.array_equal(got.numbers, numbers):
            raise PyscfIoError(f"row {row}: its atoms differ from those of structure {index} of {ds.path}", path=pred.path)
        positions = ds.geometry(index).positions
        if np.abs(got.positions - positions).max(initial=0.0) > 1e-6:
            raise PyscfIoError(f"row {row}: its positions differ from those of structure {index} of {ds.path}", path=pred.path)
        require_finite(got.coefficients, "predicted coefficients", path=pred.path, structure=index, error=PyscfIoError)
        rows[index] = row
    return rows


def plan(predictions: Path, reference: Path, indices: Path | None, guesses: list[str]) -> tuple[dict, list[Job], dict]:
    """(settings, jobs, run record); every input problem is found here, before any SCF."""
    with open_dataset(reference) as ds, open_predictions(predictions) as pred:
        settings = scf_settings(ds)
        guess_xc(settings["xc"])
        if "vsap" in guesses and settings["xc"].upper() == "HF":
            raise PyscfIoError("the vsap guess needs a DFT functional, the dataset is Hartree-Fock", path=reference)
        rows = match_predictions(pred, ds)
        chosen = (
            [int(i) for i in read_index_file(indices, dataset_id=ds.dataset_id, n_structures=len(ds))]
            if indices is not None
            else sorted(rows)
        )
        missing = [i for i in chosen if i not in rows]
        if missing and "ml" in guesses:
            raise PyscfIoError(f"structure {missing[0]} has no prediction in {pred.path}", path=indices)
        for i in chosen:
            mol = rebuild_molecule(ds, i)
            if "ri" in guesses and ds[i].coefficients is None:
                raise PyscfIoError("has no RI coefficients for the 'ri' guess", path=reference, structure=i)
            del mol
        jobs = [Job(i, rows.get(i, -1)) for i in chosen]
        record = {
            "predictions": str(Path(predictions).resolve()),
            "predictions_file_id": pred.file_id,
            "reference": str(Path(reference).resolve()),
            "dataset_id": ds.dataset_id,
            "settings": settings,
            "guesses": guesses,
            "structures": chosen,
        }
    return settings, jobs, record


_OPEN: dict[str, RhoFile] = {}


def _file(path: str, kind: str) -> RhoFile:
    if path not in _OPEN:
        _OPEN[path] = open_dataset(path) if kind == "dataset" else open_predictions(path)
    return _OPEN[path]


def compute_job(reference: str, predictions: str, job: Job, settings: dict, guesses: list[str], grid_level: int) -> dict:
    """The result record of one structure (run in a worker process)."""
    ds = _file(reference, "dataset")
    mol = rebuild_molecule(ds, job.dataset_index)
    coefficients = {"ri": ds[job.dataset_index].coefficients}
    if job.prediction_row >= 0:
        coefficients["ml"] = _file(predictions, "predictions")[job.prediction_row].coefficients
    warnings: list[str] = []
    where = f"{ds.path}: structure {job.dataset_index} ({mol.label})"
    try:
        rows = structure_guesses(mol, settings, guesses, coefficients, grid_level, warn=warnings.append, where=where)
    except PyscfIoError as err:
        raise PyscfIoError(f"{where}: {err}") from None
    n_atoms = int(mol.mol.natm)
    for row in rows:
        row.update(dataset_index=job.dataset_index, label=mol.label, n_atoms=n_atoms)
    return {"dataset_index": job.dataset_index, "rows": rows, "warnings": warnings}


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


def run_jobs(
    reference: Path,
    predictions: Path,
    jobs: list[Job],
    settings: dict,
    guesses: list[str],
    grid_level: int,
    workers: int,
    on_result: Callable[[dict], None],
) -> None:
    """Compute ``jobs`` in ``workers`` spawned processes (one OpenMP thread each unless set)."""
    args = (str(reference), str(predictions))
    if workers == 1 or len(jobs) <= 1:
        for job in jobs:
            on_result(compute_job(*args, job, settings, guesses, grid_level))
        return
    ctx = multiprocessing.get_context("spawn")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = [pool.submit(compute_job, *args, job, settings, guesses, grid_level) for job in jobs]
        try:
            for future in as_completed(futures):
                on_result(future.result())
        except BaseException:
            for f in futures:
                f.cancel()
            raise


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
