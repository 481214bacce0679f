"""Per-structure CSV (written as results arrive, so a run can resume), summary JSON, terminal table."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rho_data.atomic import atomic_output, write_text_atomic
from rho_data.yaml_input import parse_yaml_text
from rich.console import Console
from rich.table import Table

from .errors import RhoEvalError
from .properties import ERROR_COLUMNS, property_columns

METRICS_CSV = "metrics.csv"
SUMMARY_JSON = "summary.json"
CONFIG_YAML = "config.yaml"

BASE_COLUMNS = ["row", "dataset_index", "label", "formula", "n_atoms", "n_grid_points", "n_electrons", "n_electrons_pred"]
TEXT_COLUMNS = {"label", "formula"}
INT_COLUMNS = {"row", "dataset_index", "n_atoms", "n_grid_points"}


def reference_columns(ref: str) -> list[str]:
    return [f"abs_error_{ref}", f"norm_{ref}", f"nmae_{ref}_percent", f"squared_error_{ref}"]


def columns_for(fit_only: bool) -> list[str]:
    """The CSV columns of a run (fit-only runs compare the RI density with the SCF one only)."""
    if fit_only:
        return BASE_COLUMNS + reference_columns("scf") + ["stored_fit_nmae_percent"] + property_columns(("scf",), rmse=False)
    return (
        BASE_COLUMNS
        + reference_columns("ri")
        + reference_columns("scf")
        + ["squared_error_coef_ri", "coef_grid_rel_diff", "stored_fit_nmae_percent"]
        + property_columns(("ri", "scf"), rmse=True)
    )


def _parse(name: str, text: str) -> Any:
    if name in TEXT_COLUMNS:
        return text
    return int(text) if name in INT_COLUMNS else float(text)


class ResultsTable:
    """``metrics.csv`` in an output directory, appended to one chunk at a time.

    Resuming: when the directory already holds ``config.yaml`` with the same ``identity`` (the
    files, mode, selection and backend options), the rows in ``metrics.csv`` are kept and
    :attr:`done` lists their rows; another identity is refused unless ``restart``.
    """

    def __init__(self, output: Path, columns: Sequence[str], identity: Mapping[str, Any], settings: Mapping[str, Any], restart: bool = False):
        self.output = Path(output)
        self.columns = list(columns)
        self.path = self.output / METRICS_CSV
        self.records: list[dict] = []
        self.output.mkdir(parents=True, exist_ok=True)
        config_path = self.output / CONFIG_YAML
        if config_path.exists() and self.path.exists() and not restart:
            previous = (parse_yaml_text(config_path.read_text(), source=str(config_path)) or {}).get("run")
            if previous != dict(identity):
                raise RhoEvalError(
                    "holds the results of another evaluation (other files, mode, selection or backend options); "
                    "choose another -o directory or pass --restart to replace them",
                    path=self.output,
                )
            self.records = self._read()
        elif self.path.exists():
            self.path.unlink()
        write_text_atomic(config_path, yaml.safe_dump({"run": dict(identity), "settings": dict(settings)}, sort_keys=False))
        if not self.path.exists():
            with atomic_output(self.path, what="metrics table") as tmp, tmp.open("w", newline="") as fh:
                csv.writer(fh).writerow(self.columns)

    def _read(self) -> list[dict]:
        with self.path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames != self.columns:
                raise RhoEvalError("has other columns than this evaluation writes; pass --restart", path=self.path)
            return [{k: _parse(k, v) for k, v in row.items()} for row in reader]

    @property
    def done(self) -> set[int]:
        return {int(r["row"]) for r in self.records}

    def add(self, records: Iterable[dict]) -> None:
        records = list(records)
        with self.path.open("a", newline="") as fh:
            writer = csv.writer(fh)
            for r in records:
                writer.writerow([r[c] if c in TEXT_COLUMNS else repr(r[c]) for c in self.columns])
        self.records.extend(records)

    def finish(self) -> list[dict]:
        """Rewrite the CSV sorted by row; returns the records in that order."""
        self.records.sort(key=lambda r: r["row"])
        with atomic_output(self.path, overwrite=True, what="metrics table") as tmp:
            with tmp.open("w", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(self.columns)
                for r in self.records:
                    writer.writerow([r[c] if c in TEXT_COLUMNS else repr(r[c]) for c in self.columns])
        return self.records


def _stats(values: Sequence[float]) -> dict[str, float | None]:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not len(v):
        return {"mean": None, "median": None, "max": None, "min": None, "count": 0}
    return {"mean": float(v.mean()), "median": float(np.median(v)), "max": float(v.max()), "min": float(v.min()), "count": int(len(v))}


def summarize(records: Sequence[dict], columns: Sequence[str], elements: Mapping[str, Mapping[str, int]], context: Mapping[str, Any]) -> dict:
    """Mean, median, max and min of every metric, per-element counts and the pooled %NMAE
    100 * sum(abs_error) / sum(norm) over all structures."""
    metric_columns = [c for c in columns if c not in TEXT_COLUMNS | INT_COLUMNS]
    summary: dict[str, Any] = {**context, "n_structures": len(records)}
    summary["metrics"] = {c: _stats([r[c] for r in records]) for c in metric_columns}
    pooled = {}
    for ref in ("ri", "scf"):
        if f"abs_error_{ref}" in columns:
            a = np.array([r[f"abs_error_{ref}"] for r in records], dtype=float)
            n = np.array([r[f"norm_{ref}"] for r in records], dtype=float)
            ok = np.isfinite(a) & np.isfinite(n)
            pooled[f"nmae_{ref}_percent"] = float(100.0 * a[ok].sum() / n[ok].sum()) if ok.any() else None
    if "rmse_denominator_ri" in columns:
        num = np.array([r["squared_error_coef_ri"] for r in records], dtype=float)
        den = np.array([r["rmse_denominator_ri"] for r in records], dtype=float)
        ok = np.isfinite(num) & np.isfinite(den)
        pooled["rmse_coef_ri_percent"] = float(100.0 * np.sqrt(num[ok].sum() / den[ok].sum())) if ok.any() and den[ok].sum() > 0 else None
    summary["pooled"] = pooled
    errors = {}
    for ref in ("ri", "scf"):
        for pattern in ERROR_COLUMNS:
            name = pattern.format(ref=ref)
            if name in columns:
                v = np.array([r[name] for r in records], dtype=float)
                v = v[np.isfinite(v)]
                errors[name] = {"mae": float(np.abs(v).mean()), "rmse": float(np.sqrt((v * v).mean())), "count": int(len(v))} if len(v) else None
    summary["property_errors"] = errors
    summary["elements"] = {k: dict(v) for k, v in elements.items()}
    return summary


def write_summary(output: Path, summary: Mapping[str, Any]) -> Path:
    path = Path(output) / SUMMARY_JSON
    write_text_atomic(path, json.dumps(summary, indent=2, allow_nan=False) + "\n", what="summary")
    return path


LABELS = {
    "nmae_ri_percent": "%NMAE vs RI",
    "nmae_scf_percent": "%NMAE vs SCF",
    "squared_error_ri": "squared error vs RI (grid)",
    "squared_error_coef_ri": "squared error vs RI (overlap)",
    "coef_grid_rel_diff": "grid vs overlap, relative difference",
    "squared_error_scf": "squared error vs SCF",
    "n_electrons_pred": "electrons (integral of the prediction)",
    "stored_fit_nmae_percent": "%NMAE of the RI fit vs SCF (dataset)",
    "rmse_coef_ri_percent": "%RMSE vs RI (coefficients, SALTED)",
    "n_electrons_coef_pred": "electrons (from the coefficients)",
    "n_electrons_error_ri": "N - N_RI (electrons)",
    "n_electrons_error_scf": "N - N_SCF (electrons)",
    "dipole_error_ri_debye": "|mu - mu_RI| (debye)",
    "dipole_error_scf_debye": "|mu - mu_SCF| (debye)",
    "hartree_error_ri_kcal_mol": "E_H - E_H(RI) (kcal/mol)",
    "hartree_error_scf_kcal_mol": "E_H - E_H(SCF) (kcal/mol)",
    "electrostatic_error_ri_kcal_mol": "E_es - E_es(RI) (kcal/mol)",
    "electrostatic_error_scf_kcal_mol": "E_es - E_es(SCF) (kcal/mol)",
}


def _fmt(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.6g}"


def print_table(summary: Mapping[str, Any], console: Console | None = None) -> None:
    """The headline metrics as a rich table."""
    console = console or Console()
    what = "RI fit" if summary.get("mode") == "fit-only" else "predictions"
    table = Table(title=f"rho-eval: {what}, {summary['n_structures']} structures")
    for name in ("metric", "mean", "median", "max"):
        table.add_column(name, justify="left" if name == "metric" else "right")
    for key, label in LABELS.items():
        stats = summary["metrics"].get(key)
        if stats is not None:
            table.add_row(label, _fmt(stats["mean"]), _fmt(stats["median"]), _fmt(stats["max"]))
    for key, value in summary.get("pooled", {}).items():
        table.add_row(f"pooled {LABELS.get(key, key)}", _fmt(value), "", "")
    for key, value in (summary.get("property_errors") or {}).items():
        if value is not None:
            table.add_row(f"MAE {LABELS.get(key, key)}", _fmt(value["mae"]), "", "")
    console.print(table)
