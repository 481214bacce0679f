"""From a dataset and options to a fitted model: descriptors, statistics, model config, exact fit."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rho_data import AuxiliaryBasis
from rho_data.elements import atomic_number
from rho_data.layout import BatchLayout, Key, basis_keys, key_name

from .alpha_selection import cross_validate, select_on_validation
from .cache import DescriptorStore, geometry_digest
from .data import Batch, Record
from .descriptors import DescriptorSpec, LambdaSoap
from .distributed import Reducer
from .errors import RhoModelError
from .model import DTYPES, RhoModel, build_model, read_net_file
from .nn import linear_modules
from .normal_equations import one_centre_radial, split_weights
from .shared_rows import Holdout, SharedRows
from .solver import best_start


def descriptor_store(
    options: dict, dataset, *, progress=None, spec: DescriptorSpec | None = None, base_dir: str | Path | None = None
) -> DescriptorStore:
    """Cached lambda-SOAP features of every structure of a rho-data dataset.

    A relative ``descriptor.cache_dir`` is taken relative to ``base_dir`` (the run folder in
    :func:`rho_model.train.run_training`; the current directory when None).
    """
    basis = dataset.basis
    cache_dir = options["descriptor"]["cache_dir"]
    if cache_dir is not None and base_dir is not None:
        cache_dir = Path(base_dir) / Path(cache_dir).expanduser()
    if spec is None:
        keys = basis_keys(basis)
        spec = DescriptorSpec.from_options(options["descriptor"], keys, [atomic_number(s) for s in basis.symbols])
    calc = LambdaSoap(spec)
    return DescriptorStore(
        calc,
        lambda idx: [g.to_ase() for g in dataset.geometries(idx)],
        len(dataset),
        dataset.numbers,
        content_key=geometry_digest(dataset) if cache_dir is not None else "",
        cache_dir=cache_dir,
        chunk=options["descriptor"]["cache_chunk"],
        max_atoms=options["descriptor"]["max_atoms"],
        progress=progress,
    )


def basis_counts(basis: AuxiliaryBasis) -> dict[str, list[int]]:
    return {s: list(basis[s].n_radial) for s in basis.symbols}


def check_basis(model_config: dict, basis: AuxiliaryBasis, where: str) -> None:
    """Refuse data whose auxiliary basis differs from the model's."""
    mine = model_config["basis"]
    theirs = basis_counts(basis)
    for sym, counts in theirs.items():
        if sym not in mine:
            raise RhoModelError(f"{where}: element {sym} is not known to the model (it knows {sorted(mine)})")
        if list(counts) != list(mine[sym]):
            raise RhoModelError(f"{where}: the basis of {sym} has radial counts {counts}, the model was trained with {mine[sym]}")


WHITEN_EPS = 1e-4


def feature_statistics(records: Sequence[Record], keys: Sequence[Key], options: dict, *, whiten: bool) -> dict[str, Any]:
    """Per key: feature scale (unit mean squared norm per atom), optional PCA/whitening projection."""
    stats: dict[str, Any] = {"scale": {}, "projection": {}}
    pca = options["descriptor"]["pca_components"]
    for key in keys:
        name = key_name(key)
        x = np.concatenate([r.features[key] for r in records])
        sq = float((x**2).sum() / max(len(x), 1))
        scale = 1.0 / np.sqrt(sq) if sq > 0 else 1.0
        stats["scale"][name] = scale
        if pca is None and not whiten:
            continue
        rows = (x * scale).reshape(-1, x.shape[-1])
        _, s, vh = np.linalg.svd(rows, full_matrices=False)
        keep = s > (1e-6 if whiten else 1e-8) * s[0] if len(s) and s[0] > 0 else np.zeros(len(s), dtype=bool)
        if pca is not None:
            keep[int(pca) :] = False
        v = vh[keep].T
        if whiten:
            # damped whitening v / sqrt(s^2 + eps s0^2): unit variance for the leading directions, at most
            # 1/sqrt(eps) amplification of weak ones, so that small weight steps stay small on new data
            v = v / np.sqrt(s[keep] ** 2 + WHITEN_EPS * s[0] ** 2) * np.sqrt(max(len(x), 1))
        stats["projection"][name] = v
    return stats


def baseline_means(records: Sequence[Record], keys: Sequence[Key], basis: AuxiliaryBasis) -> dict[str, np.ndarray | None]:
    """Mean invariant (l = 0) coefficients of each element over the training atoms."""
    layout = BatchLayout.build(basis, [r.numbers for r in records])
    flat = np.concatenate([np.asarray(r.coefficients) for r in records])
    out: dict[str, np.ndarray | None] = {}
    for key in keys:
        if key[0] == 0:
            values = flat[layout.index[key]]  # (atoms, n, 1)
            out[key_name(key)] = values[:, :, 0].mean(axis=0) if len(values) else None
    return out


def one_centre_inverse_sqrt(records: Sequence[Record], basis: AuxiliaryBasis) -> dict[str, np.ndarray]:
    """O_l^{-1/2} per key from the same-atom overlap blocks (output whitening)."""
    batch = Batch(records[: min(len(records), 20)], basis)
    out = {}
    for key, o in one_centre_radial(batch).items():
        lam, q = np.linalg.eigh(o)
        lam = np.clip(lam, 1e-12 * lam.max(), None)
        out[key_name(key)] = (q / np.sqrt(lam)) @ q.T
    return out


def model_config(
    options: dict,
    basis: AuxiliaryBasis,
    spec: DescriptorSpec,
    feature_sizes: dict[str, int],
    stats: dict[str, Any],
    *,
    whiten_out: bool,
    dataset_id: str,
    net_source: str | None = None,
) -> dict[str, Any]:
    keys = list(spec.keys)
    input_sizes = {
        key_name(k): (
            stats["projection"][key_name(k)].shape[1] if key_name(k) in stats["projection"] else feature_sizes[key_name(k)]
        )
        for k in keys
    }
    return {
        "keys": [list(k) for k in keys],
        "basis": basis_counts(basis),
        "descriptor": spec.hypers(),
        "feature_sizes": feature_sizes,
        "input_sizes": input_sizes,
        "out_sizes": {key_name(k): basis[k[1]].n_radial[k[0]] for k in keys},
        "project": bool(stats["projection"]),
        "whiten_out": whiten_out,
        "model": dict(options["model"]),
        "net_source": net_source,
        "dtype": options["dtype"],
        "device": options["device"],
        "dataset_id": dataset_id,
    }


def set_statistics(
    model: RhoModel, stats: dict[str, Any], baselines: dict[str, np.ndarray | None], out_transform: dict[str, np.ndarray] | None
) -> None:
    with torch.no_grad():
        for name, t in model.transforms.items():
            t.scale.fill_(float(stats["scale"][name]))
            if name in stats["projection"]:
                t.projection.copy_(torch.as_tensor(stats["projection"][name]))
            if out_transform is not None and t.out_transform.shape[0]:
                t.out_transform.copy_(torch.as_tensor(out_transform[name]))
            if t.baseline.shape[0] and baselines.get(name) is not None:
                t.baseline.copy_(torch.as_tensor(baselines[name]))


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


def set_linear_weights(model: RhoModel, weights: dict[str, torch.Tensor]) -> None:
    """Copy the exact solution into the EquivariantLinear head (undoing the output whitening).

    The head's module_map holds one torch Linear per key in the order of ``config["keys"]``;
    the solver's W (q, n) is the transpose of Linear.weight (n, q), the bias row its bias.
    """
    linears = linear_modules(model.head)
    index = {key_name(tuple(k)): i for i, k in enumerate(model.config["keys"])}
    with torch.no_grad():
        for name, (w, b) in split_weights(weights).items():
            t = model.transforms[name]
            if t.out_transform.shape[0]:
                inv = torch.linalg.inv(t.out_transform)
                w, b = w @ inv, (b @ inv if b is not None else None)
            lin = linears[index[name]]
            lin.weight.copy_(w.T)
            if b is not None:
                lin.bias.copy_(b)


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
    shared = SharedRows(batch, model_inputs(model, batch), target, basis, dense_max=dense_max, reducer=reducer)
    log(f"exact fit setup (features, Gram matrices, overlap) for {len(records)} structures: {time.perf_counter() - t0:.2f} s")
    problem, masks = shared.problem(range(len(records)))
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
    set_linear_weights(model, weights)
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


def new_model(
    options: dict, dataset, train_records: Sequence[Record], spec: DescriptorSpec, sizes: dict[Key, int], *, gradient: bool
) -> RhoModel:
    """Model with statistics from the training records (scale, projection, baseline, whitening)."""
    basis = dataset.basis
    condition = gradient and bool(options["training"]["condition"])
    stats = feature_statistics(train_records, spec.keys, options, whiten=condition)
    net_source = None
    if options["model"]["type"] == "python":
        net_source = read_net_file(options["model"]["net_file"])
    config = model_config(
        options,
        basis,
        spec,
        {key_name(k): v for k, v in sizes.items()},
        stats,
        whiten_out=condition,
        dataset_id=dataset.dataset_id,
        net_source=net_source,
    )
    torch.manual_seed(int(options["seed"]))
    model = build_model(config, net_source=net_source, net_origin=str(options["model"]["net_file"]))
    baselines = baseline_means(train_records, spec.keys, basis) if options["model"]["baseline"] else {}
    out_t = one_centre_inverse_sqrt(train_records, basis) if condition else None
    set_statistics(model, stats, baselines, out_t)
    return model
