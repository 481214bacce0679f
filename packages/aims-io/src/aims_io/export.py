"""Coefficients (a rho-data predictions file, or vectors in memory) -> FHI-aims rebuild runs.

Each rebuild run directory holds geometry.in, control.in (``ri_density_restart read 0``) and
``ri_restart_coeffs.out``: the coefficients in the order FHI-aims reads them. For datasets made
with FHI-aims >= 240403 that is the canonical order; for older versions the permutation and
signs of the dataset's RI-fit run are applied in reverse (and refused when those files are
gone).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from rho_data import RhoFile, open_dataset, open_predictions

from .basis_info import read_basis_info
from .errors import AimsIOError
from .geometry import Geometry
from .layout import stage_dir
from .order import FIRST_CANONICAL_VERSION, AimsOrder, order_for_run
from .prepare import prepare_rebuild, structure_label


def dataset_version(dataset: RhoFile) -> int:
    if dataset.provenance.producer != "aims-io":
        raise AimsIOError(
            f"was produced by '{dataset.provenance.producer}', not aims-io: FHI-aims cannot rebuild it", path=dataset.path
        )
    m = re.match(r"(\d{6})", dataset.provenance.producer_version)
    if not m:
        raise AimsIOError(f"unknown FHI-aims version '{dataset.provenance.producer_version}'", path=dataset.path)
    return int(m.group(1))


def ri_run_dir(dataset: RhoFile, index: int) -> Path:
    """The RI-fit run directory of dataset structure ``index`` (recorded at import)."""
    root = dataset.provenance.extra.get("ri_root")
    if not root:
        raise AimsIOError("its provenance does not record the RI run directories (ri_root)", path=dataset.path)
    return Path(root) / dataset.labels()[index]


def order_for_structure(dataset: RhoFile, index: int, n: int) -> AimsOrder:
    version = dataset_version(dataset)
    if version >= FIRST_CANONICAL_VERSION:
        return AimsOrder.identity(n)
    run_dir = ri_run_dir(dataset, index)
    return order_for_run(run_dir, version, read_basis_info(run_dir / "basis_info.out"))


def geometry_of(structure) -> Geometry:
    return Geometry(structure.numbers, structure.positions, structure.cell, structure.pbc)


def aims_coefficients(dataset: RhoFile, index: int, coefficients: np.ndarray, name: str) -> np.ndarray:
    """Canonical coefficients of dataset structure ``index`` in the order FHI-aims reads (size and finiteness checked)."""
    n = dataset.basis.n_functions(dataset.numbers(index))
    coefficients = np.asarray(coefficients, dtype=np.float64)
    if coefficients.shape != (n,):
        raise AimsIOError(
            f"coefficients '{name}' have shape {coefficients.shape}, the basis needs ({n},)", path=dataset.path, structure=index
        )
    if not np.isfinite(coefficients).all():
        raise AimsIOError(f"coefficients '{name}' are not finite", path=dataset.path, structure=index)
    return order_for_structure(dataset, index, n).from_canonical(coefficients)


def with_dataset_k_points(dataset: RhoFile, settings: dict) -> dict:
    """``settings`` with the k-points of a periodic dataset (provenance ``k_points``, e.g.
    ``k_grid 2 2 1``): a rebuild runs with the k-points of the RI fit, whatever the settings say now."""
    k_points = str(dataset.provenance.extra.get("k_points", "") or "")
    words = k_points.split()
    if not dataset.provenance.extra.get("periodic") or not words or words[0] not in ("k_grid", "k_grid_density"):
        return settings
    try:
        k = {"k_grid": [int(w) for w in words[1:]], "k_grid_density": None} if words[0] == "k_grid" else {}
        k = k or {"k_grid": None, "k_grid_density": float(words[1])}
    except (ValueError, IndexError):
        raise AimsIOError(f"cannot read the k-points {k_points!r} of its provenance", path=dataset.path) from None
    return {**settings, "dft": {**settings["dft"], **k}}


def export_rebuild(
    dataset: RhoFile, index: int, coefficients: np.ndarray, work: Path, name: str, settings: dict
) -> tuple[Path, bool]:
    """Rebuild run directory ``<work>/rebuild/<name>/<index>`` for canonical ``coefficients``.

    Returns (run dir, whether it must run).
    """
    structure = dataset.geometry(index)
    aims_values = aims_coefficients(dataset, index, coefficients, name)
    settings = with_dataset_k_points(dataset, settings)
    run_dir = stage_dir(work, f"rebuild/{name}") / structure_label(index)
    todo = prepare_rebuild(
        run_dir,
        geometry_of(structure),
        aims_values,
        settings,
        {"label": structure_label(index), "index": index, "dataset": str(dataset.path), "name": name},
    )
    return run_dir, todo


def matched_predictions(
    pred: RhoFile, ds: RhoFile, predictions_path: Path, dataset_path: Path
) -> Iterator[tuple[int, np.ndarray]]:
    """(dataset index, canonical coefficients) per predicted structure, checked against the dataset.

    Refuses predictions of another dataset or auxiliary basis, indices outside the dataset and
    geometries that differ from the dataset's (one line naming the file and structure).
    """
    if pred.dataset_id and pred.dataset_id != ds.dataset_id:
        raise AimsIOError(f"belongs to dataset {pred.dataset_id}, not to {dataset_path} ({ds.dataset_id})", path=predictions_path)
    if not pred.basis.same_as(ds.basis):
        raise AimsIOError("its auxiliary basis differs from the dataset's", path=predictions_path)
    for k in range(len(pred)):
        s = pred.read(k, ("coefficients", "dataset_index"))
        index = s.dataset_index if s.dataset_index >= 0 else k
        if not 0 <= index < len(ds):
            raise AimsIOError(f"dataset_index {index} outside the dataset (0..{len(ds) - 1})", path=predictions_path, structure=k)
        ref = ds.geometry(index)
        same = np.array_equal(ref.numbers, s.numbers) and np.allclose(ref.positions, s.positions, atol=1e-6)
        if not same or not np.allclose(ref.cell, s.cell, atol=1e-6) or not np.array_equal(ref.pbc, s.pbc):
            raise AimsIOError(f"geometry differs from dataset structure {index}", path=predictions_path, structure=k)
        yield index, s.coefficients


def export_predictions(predictions_path: Path, dataset_path: Path, work: Path, name: str, settings: dict) -> list[Path]:
    """Rebuild run directories for every structure of a predictions file."""
    with open_predictions(predictions_path) as pred, open_dataset(dataset_path) as ds:
        return [
            export_rebuild(ds, index, coefficients, work, name, settings)[0]
            for index, coefficients in matched_predictions(pred, ds, predictions_path, dataset_path)
        ]
