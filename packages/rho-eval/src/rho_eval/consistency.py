"""Does a predictions file belong to its reference dataset?"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rho_data import RhoFile

from .errors import RhoEvalError


def check_header(predictions: RhoFile, dataset: RhoFile) -> None:
    """Same dataset id and the same auxiliary basis, else a one-line error."""
    if predictions.dataset_id != dataset.dataset_id:
        raise RhoEvalError(
            f"the predictions were made for dataset '{predictions.dataset_id or '(none)'}', but '{dataset.path}' is dataset "
            f"'{dataset.dataset_id}'; pass the dataset the model predicted on with --reference",
            path=predictions.path,
        )
    if not predictions.basis.same_as(dataset.basis):
        ours, theirs = sorted(predictions.basis.elements), sorted(dataset.basis.elements)
        detail = f"elements {ours} vs {theirs}" if ours != theirs else "the radial functions differ"
        raise RhoEvalError(f"the predictions use another auxiliary basis than '{dataset.path}' ({detail})", path=predictions.path)


def dataset_indices(predictions: RhoFile, rows: Sequence[int], dataset: RhoFile, position_tolerance: float = 1e-6) -> list[int]:
    """The dataset index of each prediction row, after checking that the row predicts that
    structure (same atoms, positions within ``position_tolerance`` Angstrom) and that no
    structure is predicted twice."""
    seen: dict[int, int] = {}
    out = []
    for row in rows:
        got = predictions.read(row, ("dataset_index",))
        index = got.dataset_index
        if not 0 <= index < len(dataset):
            raise RhoEvalError(
                f"dataset_index {index} is not a structure of '{dataset.path}' ({len(dataset)} structures)",
                path=predictions.path,
                structure=row,
            )
        if index in seen:
            raise RhoEvalError(f"predicts dataset structure {index} again (already row {seen[index]})", path=predictions.path, structure=row)
        seen[index] = row
        ref = dataset.geometry(index)
        if not np.array_equal(got.numbers, ref.numbers):
            raise RhoEvalError(
                f"its atoms differ from those of dataset structure {index} in '{dataset.path}' (another structure?)",
                path=predictions.path,
                structure=row,
            )
        shift = float(np.abs(got.positions - ref.positions).max(initial=0.0))
        if shift > position_tolerance:
            raise RhoEvalError(
                f"its positions differ by up to {shift:.3g} Angstrom from those of dataset structure {index} in '{dataset.path}' (another geometry?)",
                path=predictions.path,
                structure=row,
            )
        out.append(index)
    return out


def evaluated_target(dataset: RhoFile, predictions: RhoFile | None, asked: str | None) -> str:
    """The dataset target an evaluation compares: ``asked`` (a field name; ``density`` is
    ``electron_density``), else the predictions' target, else the dataset's main one. The dataset
    must hold it, and predictions of another field are refused."""
    name = dataset.resolve_target(asked if asked is not None else predictions.target if predictions is not None else None)
    if predictions is not None and predictions.target and predictions.target != name:
        raise RhoEvalError(f"the predictions are of the target '{predictions.target}', the evaluation compares '{name}'", path=predictions.path)
    return name


def non_finite_coefficients(dataset: RhoFile, predictions: RhoFile | None, pairs: Sequence[tuple[int, int]], target: str | None = None) -> list[str]:
    """One description per evaluated structure whose RI (reference, of ``target``) or predicted coefficients
    hold a NaN or an infinity."""
    found = []
    for row, index in pairs:
        sources = [("reference coefficients", dataset.path, index, dataset.coefficients(index, target))]
        if predictions is not None:
            sources.append(("predicted coefficients", predictions.path, row, predictions.coefficients(row)))
        for what, path, number, values in sources:
            bad = np.flatnonzero(~np.isfinite(values))
            if len(bad):
                found.append(f"{path}: structure {number}: {what} hold {len(bad)} non-finite value(s) (entry {int(bad[0])} = {values[bad[0]]})")
    return found
