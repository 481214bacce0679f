"""Learning curve of the exact linear fit on a rho-data dataset made by `pyscf-io run`.

Usage: OMP_NUM_THREADS=1 python benchmarks/learning_curve.py DATA.h5 [--sizes 20 40 80] [--test 20] [-c YAML]
    [--no-grid] [--no-full] [--val K] [--target NAME] [--verbose]

The last --test structures of a seeded shuffle are held out; each training set is the first N
of the rest (sizes given, plus all but the test set). alpha is chosen by 5-fold CV on each
training set only, or, with ``--val K``, on K further structures held out as a validation split
(the default of rho-train when a run has one). Reported on the held-out test structures:
- %NMAE in real space against the RI density and against the SCF density,
  100 * int |rho_ML - rho_ref| / int rho_ref, on the producer's DFT grid (mean over structures);
  with ``--target NAME`` the same for that field of the dataset (e.g. homo), normalised by
  int |rho_ref| for every field but the density (rho_data.orbital_fields.nmae_normalisation);
  the grids come from the dataset's field builder (rho_data.field_builders, e.g. pyscf-io's),
  loaded at run time only: rho-model itself never imports a producer package;
- coefficient %RMSE 100 ||d_ML - d_RI|| / ||d_RI|| over the test set;
- CG iterations and relative residual of the final solve, fit time (CV + solve), prediction
  time per structure from geometry (descriptors + model).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np

from rho_data import open_dataset
from rho_data.grid_errors import field_errors
from rho_data.orbital_fields import nmae_normalisation
from rho_model.data import dataset_target, load_records
from rho_model.exact_fit import fit_exact
from rho_model.model_setup import descriptor_store, new_model
from rho_model.options import load_options
from rho_model.predict import Predictor


def real_space_errors(ds, test: list[int], predictions: dict[str, list[np.ndarray]], target: str) -> dict[str, dict[str, float]]:
    """{size: {"ri": mean %NMAE vs RI, "scf": vs SCF}} plus {"ri_floor": {"scf": RI vs SCF}}."""
    from rho_data.field_builders import FieldRequest, load_field_builder

    normalisation = nmae_normalisation(target)

    def nmae(values: np.ndarray, reference: np.ndarray, weights: np.ndarray) -> float:
        return field_errors(weights, values, reference, normalisation)["nmae_percent"]

    builder = load_field_builder(ds.provenance.producer)
    requests = [
        FieldRequest(i, {"ri": ds.coefficients(i, target), **{name: p[j] for name, p in predictions.items()}}, target=target)
        for j, i in enumerate(test)
    ]
    errors: dict[str, dict[str, list[float]]] = {name: {"ri": [], "scf": []} for name in predictions}
    floor: list[float] = []
    labels = ds.labels()
    by_label: dict[str, dict[str, list[float]]] = {}  # label -> {prediction name or "floor": errors vs RI (floor: vs SCF)}
    for request, grid in builder.build(ds, requests):
        w, v = grid.weights, grid.values
        floor.append(nmae(v["ri"], v["scf"], w))
        per = by_label.setdefault(labels[request.index], {})
        per.setdefault("floor", []).append(floor[-1])
        for name in predictions:
            errors[name]["ri"].append(nmae(v[name], v["ri"], w))
            errors[name]["scf"].append(nmae(v[name], v["scf"], w))
            per.setdefault(name, []).append(errors[name]["ri"][-1])
    out = {name: {k: float(np.mean(x)) for k, x in e.items()} for name, e in errors.items()}
    out["ri_floor"] = {"scf": float(np.mean(floor))}
    out["by_label"] = {label: {k: float(np.mean(x)) for k, x in per.items()} for label, per in sorted(by_label.items())}
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("dataset", type=Path)
    p.add_argument("--sizes", type=int, nargs="*", default=[20, 40, 80])
    p.add_argument("--test", type=int, default=20)
    p.add_argument("-c", "--config", "--options", dest="options", type=Path, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target", default=None, help="the dataset target to learn (default: its main target)")
    p.add_argument("--no-grid", action="store_true", help="skip the real-space errors")
    p.add_argument("--by-label", action="store_true", help="also the test errors per structure label (e.g. molecule)")
    p.add_argument("--verbose", action="store_true", help="print the fit's log (CV scan) to stderr")
    p.add_argument("--no-full", action="store_true", help="only the sizes given (not also all but the test set)")
    p.add_argument(
        "--val", type=int, default=0, help="hold out this many more structures as a validation split (alpha chosen on it)"
    )
    args = p.parse_args()
    options = load_options(args.options, {"descriptor": {"cache_dir": str(args.dataset) + ".descriptor-cache"}})
    ds = open_dataset(args.dataset)
    target = dataset_target(ds, args.target)
    order = np.random.default_rng(args.seed).permutation(len(ds)).tolist()
    test, pool = order[-args.test :], order[: -args.test]
    val = pool[len(pool) - args.val :] if args.val else []
    pool = pool[: len(pool) - args.val]
    sizes = sorted({n for n in args.sizes if n <= len(pool)} | (set() if args.no_full else {len(pool)}))
    store = descriptor_store(options, ds)
    frames = [ds[i].to_ase() for i in test]
    reference = np.concatenate([ds.coefficients(i, target) for i in test])
    rows, predictions = [], {}
    val_records = load_records(ds, val, store.gather(val), target=target) if val else []
    for n in sizes:
        train = load_records(ds, pool[:n], store.gather(pool[:n]), target=target)
        opts = copy.deepcopy(options)
        model = new_model(opts, ds, train, store.calc.spec, store.calc.sizes, gradient=False)
        log = (lambda m, n=n: print(f"N={n}: {m}", file=sys.stderr, flush=True)) if args.verbose else (lambda _: None)
        t0 = time.perf_counter()
        info = fit_exact(model, train, ds.basis, opts["fit"], opts["seed"], log, val_records=val_records)
        t_fit = time.perf_counter() - t0
        predictor = Predictor(model)
        predictor.predict(frames[:1])  # warm-up
        t0 = time.perf_counter()
        pred = predictor.predict(frames)
        t_pred = (time.perf_counter() - t0) / len(frames) * 1e3
        coef = 100 * float(np.linalg.norm(np.concatenate(pred) - reference) / np.linalg.norm(reference))
        predictions[f"ml{n}"] = pred
        rows.append((n, info, t_fit, t_pred, coef))
        print(f"N={n}: alpha {info['alpha']:.0e}, coefficient %RMSE {coef:.3f}, fit {t_fit:.1f} s", flush=True)
    real = real_space_errors(ds, test, predictions, target) if not args.no_grid else None
    print(
        f"\n{args.dataset.name}, target {target} (%NMAE over the integral of "
        f"{'rho_ref' if nmae_normalisation(target) == 'integral' else '|rho_ref|'}): {len(ds)} structures, test {len(test)}; basis "
        f"{ {s: list(ds.basis[s].n_radial) for s in ds.basis.symbols} }"
    )
    if real is not None:
        print(f"RI field vs SCF field (the auxiliary basis's floor): {real['ri_floor']['scf']:.3f} %NMAE")
    print(
        "| N train | alpha (CV) | %NMAE vs RI | %NMAE vs SCF | coefficient %RMSE | CG iterations | CG rel. residual | fit incl. CV (s) | predict (ms/structure) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for n, info, t_fit, t_pred, coef in rows:
        ri = f"{real[f'ml{n}']['ri']:.4f}" if real else "-"
        scf = f"{real[f'ml{n}']['scf']:.3f}" if real else "-"
        print(
            f"| {n} | {info['alpha']:.0e} ({info['alpha_selection']}) | {ri} | {scf} | {coef:.3f} | {info['iterations']} "
            f"| {info['relative_residual']:.1e} "
            f"| {t_fit:.1f} | {t_pred:.1f} |",
            flush=True,
        )
    if real is not None and args.by_label:
        last = f"ml{sizes[-1]}"
        print(f"\nper label, N = {sizes[-1]}: | label | test structures | %NMAE vs RI | RI vs SCF (floor) |")
        labels = ds.labels()
        counts = {label: sum(labels[i] == label for i in test) for label in real["by_label"]}
        for label, per in real["by_label"].items():
            print(f"| {label} | {counts[label]} | {per[last]:.3f} | {per['floor']:.3f} |")


if __name__ == "__main__":
    main()
