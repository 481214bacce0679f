"""Training time (alpha selection included) of the exact linear fit against the number of structures.

Usage: OMP_NUM_THREADS=1 python benchmarks/train_time.py WORKDIR [--sizes 80 160] [--modes validation cv fixed]
       [--alphas 1e-8 1e-6 1e-4] [--dense-max 4000] [--data DATA.h5]

Data: ``--data`` (a rho-data dataset), else the synthetic set of epoch_time.py (perturbed small
organics of make_geometries.py, PySCF overlaps of def2-universal-jkfit, learnable coefficients),
made once in WORKDIR with max(sizes) + 40 structures. A seeded shuffle holds out the last 20 as
test and the 20 before as validation; each training set is the first N of the rest. Every run is
``fit_exact`` on the training records (descriptors from WORKDIR's cache, loaded before the clock
starts) with ``fit.alpha_selection`` = the mode (``fixed`` uses the alpha the validation run chose,
or 1e-6). Printed per run: unknowns, solver route, chosen alpha, solves, CG iterations, seconds
(setup + selection + final solve), the test split's relative error sqrt(sum r^T S r / sum d^T S d),
and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("workdir", type=Path)
    p.add_argument("--sizes", type=int, nargs="+", default=[80, 160])
    p.add_argument("--modes", nargs="+", default=["validation", "cv", "fixed"], choices=["validation", "cv", "fixed"])
    p.add_argument("--alphas", type=float, nargs="+", default=None, help="alpha grid (default: rho-train's)")
    p.add_argument("--dense-max", type=int, default=None)
    p.add_argument("--data", type=Path, default=None)
    args = p.parse_args()
    import torch

    from rho_data import open_dataset
    from rho_model.data import Batch, load_records
    from rho_model.exact_fit import fit_exact
    from rho_model.model_setup import descriptor_store, new_model
    from rho_model.options import load_options

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    args.workdir.mkdir(parents=True, exist_ok=True)
    data = args.data
    if data is None:
        sys.path.insert(0, str(Path(__file__).parent))
        from epoch_time import make_dataset

        total = max(args.sizes) + 40
        data = args.workdir / f"molecules-{total}.h5"
        if not data.exists():
            t0 = time.perf_counter()
            make_dataset(data, total, "def2-universal-jkfit")
            print(f"dataset: {total} structures in {time.perf_counter() - t0:.1f} s")
    fit = {} if args.alphas is None else {"alphas": args.alphas}
    if args.dense_max is not None:
        fit["dense_max"] = args.dense_max
    options = load_options(overrides={"descriptor": {"cache_dir": str(args.workdir / "cache")}, "fit": fit})
    ds = open_dataset(data)
    order = np.random.default_rng(0).permutation(len(ds)).tolist()
    test, val, rest = sorted(order[-20:]), sorted(order[-40:-20]), order[:-40]
    store = descriptor_store(options, ds)
    val_recs = load_records(ds, val, store.gather(val))
    test_recs = load_records(ds, test, store.gather(test))
    print(f"{data}: {len(ds)} structures; validation 20, test 20; modes {' '.join(args.modes)}")
    print("| N | mode | unknowns | route | alpha | solves | CG iterations | training s | test rel. error | load before / after |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        train = sorted(rest[:n])
        recs = load_records(ds, train, store.gather(train))
        chosen = 1e-6
        for mode in args.modes:
            fit_mode = {"alpha_selection": mode, "alpha": chosen if mode == "fixed" else None}
            opts = load_options(overrides={**options, "fit": {**options["fit"], **fit_mode}})
            load0 = os.getloadavg()[0]
            t0 = time.perf_counter()
            model = new_model(opts, ds, recs, store.calc.spec, store.calc.sizes, gradient=False)
            info = fit_exact(model, recs, ds.basis, opts["fit"], 0, lambda _: None, val_records=val_recs)
            seconds = time.perf_counter() - t0
            load1 = os.getloadavg()[0]
            if mode == "validation":
                chosen = info["alpha"]
            batch = Batch(test_recs, ds.basis)
            with torch.no_grad():
                pred = batch.assemble(model(batch.features, batch.samples))
            rel = float(torch.sqrt(batch.overlap.quadratic(pred - batch.reference) / batch.constant))
            solves = len(info["cv_scan"]) + len(info["validation_scan"]) + 1
            iters = info["iterations"] + sum(s["iterations"] for s in info["cv_scan"] + info["validation_scan"])
            print(
                f"| {n} | {mode} | {info['unknowns']} | {info['method']} | {info['alpha']:.0e} | {solves} | {iters} | "
                f"{seconds:.1f} | {rel:.4e} | {load0:.1f} / {load1:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
