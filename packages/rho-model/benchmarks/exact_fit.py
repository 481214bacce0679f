"""Time the exact overlap-metric fit (setup, CV scan, final solve) on a rho-data dataset.

Usage: OMP_NUM_THREADS=1 python benchmarks/exact_fit.py DATA.h5 --train TRAIN.idx [--alphas 1e-8 1e-6 1e-4]
       [--folds 3] [--cv-tol 1e-5] [--warm-tol 1e-3] [--patience 2] [--alpha 1e-6] [--cache-dir DIR] [--profile OUT.prof]

Loads the training records (descriptors from the cache), builds the model statistics and runs
``fit_exact`` with its log printed with elapsed times; prints the CG iterations and times of the
CV solves and of the final fit. ``--alpha`` fits one alpha without CV. ``--profile`` writes a
cProfile of the fit (not of the descriptor loading).
"""

from __future__ import annotations

import argparse
import cProfile
import time
from pathlib import Path

import numpy as np
import torch

from rho_data import open_dataset
from rho_model.data import load_records
from rho_model.exact_fit import fit_exact
from rho_model.model_setup import descriptor_store, new_model
from rho_model.options import load_options
from rho_model.splits import read_index_file


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("dataset", type=Path)
    p.add_argument("--train", type=Path, required=True)
    p.add_argument("--alphas", type=float, nargs="*", default=None)
    p.add_argument("--alpha", type=float, default=None)
    p.add_argument("--folds", type=int, default=None)
    p.add_argument("--cv-tol", type=float, default=None)
    p.add_argument("--warm-tol", type=float, default=None)
    p.add_argument("--patience", type=int, default=None)
    p.add_argument("--extend", type=int, default=None)
    p.add_argument("--cache-dir", type=str, default=None)
    p.add_argument("--profile", type=Path, default=None)
    args = p.parse_args()
    torch.set_num_threads(1)
    fit = {
        k: v
        for k, v in {
            "alphas": args.alphas,
            "alpha": args.alpha,
            "cv_folds": args.folds,
            "cv_tol": args.cv_tol,
            "warm_tol": args.warm_tol,
            "cv_patience": args.patience,
            "alpha_extend": args.extend,
        }.items()
        if v is not None
    }
    options = load_options(
        None, {"fit": fit, "descriptor": {"cache_dir": args.cache_dir or str(args.dataset) + ".descriptor-cache"}}
    )
    ds = open_dataset(args.dataset)
    idx = read_index_file(args.train, dataset_id=ds.dataset_id, n_structures=len(ds))
    t0 = time.perf_counter()
    store = descriptor_store(options, ds)
    train = load_records(ds, idx, store.gather(idx))
    model = new_model(options, ds, train, store.calc.spec, store.calc.sizes, gradient=False)
    print(
        f"{len(train)} training structures, {sum(len(r.numbers) for r in train)} atoms, "
        f"{sum(len(r.coefficients) for r in train)} coefficients; records + statistics {time.perf_counter() - t0:.1f} s",
        flush=True,
    )
    t0 = time.perf_counter()

    def log(line: str) -> None:
        print(f"[{time.perf_counter() - t0:7.1f} s] {line}", flush=True)

    prof = cProfile.Profile() if args.profile else None
    if prof:
        prof.enable()
    info = fit_exact(model, train, ds.basis, options["fit"], int(options["seed"]), log)
    if prof:
        prof.disable()
        prof.dump_stats(args.profile)
    cv = info["cv_scan"]
    print(
        f"fit total {time.perf_counter() - t0:.1f} s: alpha {info['alpha']:.0e}; CV {len(cv)} solves, "
        f"{sum(s['iterations'] for s in cv)} CG iterations, {info['cv_seconds']:.1f} s; final {info['iterations']} iterations, "
        f"residual {info['relative_residual']:.1e}, {info['seconds']:.1f} s"
    )
    if cv:
        print(
            "mean CV iterations per alpha:",
            {
                f"{a:.0e}": int(np.mean([s["iterations"] for s in cv if s["alpha"] == a]))
                for a in sorted({s["alpha"] for s in cv})
            },
        )


if __name__ == "__main__":
    main()
