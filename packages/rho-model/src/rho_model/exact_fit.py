"""The exact overlap-metric fit of a linear model: alpha chosen (fixed, validation split or k-fold CV),
then one solve on all training structures, the solution copied into the model's head.

The fit is of the map x -> x W + b from the model's inputs (features after scale and projection)
to the coefficients minus the baseline (:func:`baseline_flat`), see :mod:`rho_model.normal_equations`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from rho_data import AuxiliaryBasis

from .alpha_selection import cross_validate, select_on_validation
from .data import Batch, Record
from .distributed import Reducer
from .errors import RhoModelError
from .model import DTYPES, RhoModel, split_weights
from .shared_rows import Holdout, SharedRows
from .solver import best_start


def model_inputs(model: RhoModel, batch: Batch) -> dict[str, torch.Tensor]:
    return {name: t.pre(batch.features[name]) for name, t in model.transforms.items()}


def baseline_flat(model: RhoModel, batch: Batch) -> torch.Tensor:
    blocks = {}
    for name, t in model.transforms.items():
        n_atoms = batch.features[name].shape[0]
        comps = batch.features[name].shape[1]
        n_out = model.config["out_sizes"][name]
        y = torch.zeros(n_atoms, comps, n_out, dtype=batch.dtype, device=batch.device)
        if t.baseline.shape[0]:
            y = y + t.baseline
        blocks[name] = y
    return batch.assemble(blocks)


def predict_linear(model: RhoModel, batch: Batch, weights: dict[str, torch.Tensor]) -> torch.Tensor:
    x = model_inputs(model, batch)
    blocks = {}
    for name, (w, b) in split_weights(weights).items():
        y = x[name] @ w
        if b is not None:
            y = y + b
        blocks[name] = y
    return batch.assemble(blocks) + baseline_flat(model, batch)


def alpha_selection(fit_options: dict, has_validation: bool) -> str:
    """``fixed``, ``validation`` or ``cv``: ``fit.alpha_selection`` with ``auto`` resolved.

    auto: ``fixed`` when ``fit.alpha`` is set, else ``validation`` when the run has a validation
    split, else k-fold ``cv`` on the training structures.
    """
    mode = fit_options["alpha_selection"]
    if mode == "auto":
        mode = "fixed" if fit_options["alpha"] is not None else ("validation" if has_validation else "cv")
    if mode == "validation" and not has_validation:
        raise RhoModelError("fit: alpha_selection 'validation' needs a validation split (data.val or data.fractions)")
    return mode


def fit_exact(
    model: RhoModel,
    records: Sequence[Record],
    basis: AuxiliaryBasis,
    fit_options: dict,
    seed: int,
    log: Callable[[str], None],
    val_records: Sequence[Record] = (),
    reducer: Reducer | None = None,
) -> dict[str, Any]:
    """Choose alpha (:func:`alpha_selection`), then solve on all of ``records``.

    Every rank passes all ``records``. With an active ``reducer`` (torchrun), the fixed and
    validation routes are data-parallel: each rank builds the problem of its share of the
    training (and validation) structures and the solver's products are summed over the ranks;
    k-fold CV is not split: every rank scans all structures, as in one process.

    ``validation``: every alpha of the grid is fitted on all training structures and judged on
    ``val_records``; the chosen alpha's solution is refined to ``fit.cg_tol`` (no ``fit.warm_tol``:
    it is this problem's solution at this alpha). ``cv``: k-fold CV
    on ``records`` (training only), then a final solve started from the mean of the folds'
    weights. The features, Gram matrices and one-centre blocks are computed once and shared;
    scan solves stop at ``fit.cv_tol``, the final one at ``fit.cg_tol``, warm-started solves
    also at ``fit.warm_tol`` of their starting residual.
    """
    dtype = DTYPES[model.config["dtype"]]
    device = model.config.get("device", "cpu")
    mode = alpha_selection(fit_options, bool(val_records))
    reducer = reducer if reducer is not None and reducer.active and mode != "cv" else Reducer()
    if reducer.active:
        if len(records) < reducer.ctx.world:
            raise RhoModelError(f"fit: {len(records)} training structures cannot be shared by {reducer.ctx.world} processes")
        log(f"exact fit data-parallel over {reducer.ctx.world} processes")
        records = reducer.shard(list(records))
    t0 = time.perf_counter()
    batch = Batch(records, basis, dtype=dtype, device=device)
    target = batch.reference - baseline_flat(model, batch)
    dense_max = int(fit_options["dense_max"])
    coarse_max = int(fit_options["coarse_max"])
    inputs = model_inputs(model, batch)
    shared = SharedRows(batch, inputs, target, basis, dense_max=dense_max, coarse_max=coarse_max, reducer=reducer)
    del inputs  # SharedRows holds the rows it needs
    log(f"exact fit setup (features, Gram matrices, overlap) for {len(records)} structures: {time.perf_counter() - t0:.2f} s")
    problem, masks = shared.problem(range(len(records)))
    if mode != "cv":
        shared = None  # only CV folds use the shared features and Gram matrices again: free them for the solves
    route = "dense (normal matrix factorised per alpha)" if 0 < problem.dim <= dense_max else "conjugate gradient"
    log(f"exact fit: {problem.dim} unknowns ({problem.dim**2 * 8 / 2**20:.0f} MiB as a dense matrix); {route}")
    scan: list[dict] = []
    start = None
    alphas: list[float] = []
    t_scan = 0.0
    scan_options = {
        "tol": float(fit_options["cv_tol"]),
        "warm_tol": float(fit_options["warm_tol"]),
        "max_iter": int(fit_options["cg_max_iter"]),
        "extend": int(fit_options["alpha_extend"]),
        "patience": int(fit_options["cv_patience"]),
        "log": log,
    }
    t1 = time.perf_counter()
    if mode == "fixed":
        if fit_options["alpha"] is None:
            raise RhoModelError("fit: alpha_selection 'fixed' needs fit.alpha")
        alpha = float(fit_options["alpha"])
    elif mode == "validation":
        split_val = reducer.active and len(val_records) >= reducer.ctx.world
        val_batch = Batch(reducer.shard(list(val_records)) if split_val else val_records, basis, dtype=dtype, device=device)
        val_target = val_batch.reference - baseline_flat(model, val_batch)
        holdout = Holdout(val_batch, model_inputs(model, val_batch), val_target, reducer if split_val else None)
        chosen = select_on_validation(problem, holdout, fit_options["alphas"], **scan_options)
        alpha, scan, alphas, start = chosen.alpha, chosen.scan, chosen.alphas, chosen.solution
    else:
        cv = cross_validate(shared, fit_options["alphas"], int(fit_options["cv_folds"]), seed, **scan_options)
        alpha, scan, alphas = cv.alpha, cv.scan, cv.alphas
        start = shared.start(problem, masks, cv.start) if cv.start is not None else None
    if mode != "fixed":
        t_scan = time.perf_counter() - t1
        log(f"{mode}: {len(scan)} solves in {t_scan:.1f} s, {sum(s['iterations'] for s in scan)} CG iterations")
    start = best_start(problem, alpha, [start]) if start is not None else None
    z, info = problem.solve(
        alpha,
        tol=float(fit_options["cg_tol"]),
        max_iter=int(fit_options["cg_max_iter"]),
        start=start,
        # warm_tol is for starts from another alpha or other structures (CV); the validation scan's solution is this
        # problem's at this alpha: refining it to cg_tol is enough
        warm_tol=None if mode == "validation" else float(fit_options["warm_tol"]),
    )
    origin = {"validation": " (refined from the validation scan's solution)", "cv": " (started from the mean of the CV folds)"}
    log(
        f"exact fit alpha {alpha:.1e} ({info.method}): {info.iterations} CG iterations, "
        f"relative residual {info.relative_residual:.2e}, "
        f"{info.seconds:.2f} s{origin.get(mode, '') if start is not None else ''}"
    )
    if not info.converged:
        log(f"warning: CG stopped at relative residual {info.relative_residual:.2e} above the tolerance {fit_options['cg_tol']}")
    weights = problem.weights(z)
    if not all(bool(torch.isfinite(w).all()) for w in weights.values()):
        raise RhoModelError(f"exact fit at alpha {alpha:.1e}: the solution holds non-finite values (NaN or infinity)")
    model.set_linear_weights(weights)
    return {
        "alpha": alpha,
        "alpha_selection": mode,
        "iterations": info.iterations,
        "relative_residual": info.relative_residual,
        "seconds": info.seconds,
        "converged": info.converged,
        "method": info.method,
        "processes": reducer.ctx.world if reducer.active else 1,
        "unknowns": problem.dim,
        "dense_seconds": problem.dense.seconds if problem.dense is not None else 0.0,
        "alphas": alphas,
        "alpha_errors": _alpha_errors(scan),
        "scan_seconds": t_scan,
        "cv_alphas": alphas if mode == "cv" else [],
        "cv_seconds": t_scan if mode == "cv" else 0.0,
        "cv_tol": float(fit_options["cv_tol"]),
        "warm_tol": float(fit_options["warm_tol"]),
        "cv_patience": int(fit_options["cv_patience"]),
        "cv_scan": scan if mode == "cv" else [],
        "validation_scan": scan if mode == "validation" else [],
        "total_seconds": time.perf_counter() - t0,
    }


def _alpha_errors(scan: list[dict]) -> list[dict]:
    """Per alpha: the held-out error summed over folds (CV) or the validation error, and its relative form."""
    total: dict[float, list[float]] = {}
    for s in scan:
        e = total.setdefault(s["alpha"], [0.0, 0.0])
        e[0] += s["error"]
        e[1] += s["norm"]
    return [
        {"alpha": a, "error": e, "norm": n, "relative_error": float(np.sqrt(e / max(n, 1e-300)))}
        for a, (e, n) in sorted(total.items())
    ]
