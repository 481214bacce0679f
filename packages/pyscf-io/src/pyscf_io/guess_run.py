"""``pyscf-io guess``: SCF cycles and time from each initial guess, per structure, resumable.

This module plans the run (which structures, matched between predictions and dataset) and
computes the jobs, in worker processes; :mod:`pyscf_io.guess_report` keeps the report directory
(a killed run continues where it stopped) and writes the summary. The names of both are
importable from here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rho_data import RhoFile, open_dataset, open_predictions
from rho_data.checks import require_finite
from rho_data.split import read_index_file
from rho_data.worker_pool import worker_pool

from .errors import PyscfIoError
from .guess import (
    CELL_PYSCF_GUESSES,
    COEFFICIENT_GUESSES,
    PYSCF_GUESSES,
    guess_xc,
    rebuild_molecule,
    scf_settings,
    structure_guesses,
)
from .guess_report import COLUMNS, ReportDir, csv_text, summarise, summary_lines, summary_table, write_report

__all__ = [
    "COLUMNS",
    "DEFAULT_GUESSES",
    "DEFAULT_GUESS_GRID_LEVEL",
    "Job",
    "ReportDir",
    "compute_job",
    "csv_text",
    "match_predictions",
    "parse_guesses",
    "plan",
    "run_jobs",
    "summarise",
    "summary_lines",
    "summary_table",
    "write_report",
]

DEFAULT_GUESSES = "ml,ri,minao,atom,huckel,vsap"
#: The default for a dataset of Gamma-point cells (PySCF's periodic SCF has no huckel or vsap guess).
DEFAULT_CELL_GUESSES = "ml,ri,minao,atom,1e"
#: Grid level of the guess's V_xc (the SCF keeps its own level): measured in the README.
DEFAULT_GUESS_GRID_LEVEL = 1


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


def plan(predictions: Path, reference: Path, indices: Path | None, guesses: list[str] | None) -> tuple[dict, list[Job], dict]:
    """(settings, jobs, run record with the guesses: ``guesses``, or None for the default of the dataset's
    kind); every input problem is found here, before any SCF."""
    with open_dataset(reference) as ds, open_predictions(predictions) as pred:
        settings = scf_settings(ds)
        guess_xc(settings["xc"])
        if guesses is None:
            guesses = parse_guesses(DEFAULT_CELL_GUESSES if settings["periodic"] else DEFAULT_GUESSES)
        unknown = [g for g in guesses if settings["periodic"] and g not in COEFFICIENT_GUESSES + CELL_PYSCF_GUESSES]
        if unknown:
            raise PyscfIoError(
                f"is a dataset of cells: PySCF's periodic SCF has no {unknown[0]} guess "
                f"(for cells: {', '.join(COEFFICIENT_GUESSES + CELL_PYSCF_GUESSES)})",
                path=reference,
            )
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
    with worker_pool(workers, threads=int(os.environ.get("OMP_NUM_THREADS", "1"))) as pool:
        futures = [pool.submit(compute_job, *args, job, settings, guesses, grid_level) for job in jobs]
        for future in as_completed(futures):
            on_result(future.result())
