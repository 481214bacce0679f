"""rho-eval with the pyscf-io backend on QM7 molecules: time per structure and the checks.

Run: python benchmarks/pyscf_qm7.py --n 8 [--basis def2-svp] [--workdir /tmp/rho-eval-bench]
Computes a pyscf-io dataset (overlap-metric fit) of the first N molecules of
/work/shared/fixtures/fhi-aims/qm7_32.xyz, writes predictions = RI coefficients + Gaussian
noise (sigma 1e-3), and runs rho-eval (fit-only and predictions, 1 and 2 workers). Prints wall
times, the largest grid/overlap disagreement and the largest |fit-only %NMAE - stored fit %NMAE|.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from rho_data import Structure, create_predictions, open_dataset
from rich.console import Console

from rho_eval import Settings, evaluate_files


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--basis", default="def2-svp")
    parser.add_argument("--xyz", default="/work/shared/fixtures/fhi-aims/qm7_32.xyz")
    parser.add_argument("--workdir", default="/tmp/rho-eval-bench")
    args = parser.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    dataset = work / f"qm7_{args.n}_{args.basis}.h5"
    if not dataset.exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pyscf_io",
                "run",
                args.xyz,
                "--index",
                f":{args.n}",
                "-o",
                str(dataset),
                "--basis",
                args.basis,
                "--metric",
                "overlap",
                "-q",
            ],
            check=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
    predictions = work / "predictions.h5"
    predictions.unlink(missing_ok=True)
    rng = np.random.default_rng(0)
    with open_dataset(dataset) as ds:
        writer = create_predictions(predictions, ds.basis, dataset_id=ds.dataset_id)
        for i in range(len(ds)):
            s = ds[i]
            writer.append(
                Structure(
                    s.numbers, s.positions, label=s.label, dataset_index=i, coefficients=s.coefficients + 1e-3 * rng.normal(size=s.coefficients.shape)
                )
            )
        writer.close()
    quiet = Console(quiet=True)
    results = {}
    for name, pred, settings in [
        ("fit-only, 1 worker", None, Settings(fit_only=True, plots=False)),
        ("predictions, 1 worker", predictions, Settings(plots=False)),
        ("predictions, 2 workers", predictions, Settings(plots=False, workers=2, chunk_size=1)),
    ]:
        start = time.perf_counter()
        summary = evaluate_files(pred, dataset, work / "report", settings, restart=True, console=quiet)
        seconds = time.perf_counter() - start
        entry = {"seconds": round(seconds, 2), "per_structure_s": round(seconds / summary["n_structures"], 3)}
        m = summary["metrics"]
        if "consistency" in summary:
            entry["max_grid_vs_overlap_rel_diff"] = summary["consistency"]["max_relative_difference"]
            entry["mean_nmae_ri_percent"] = m["nmae_ri_percent"]["mean"]
        else:
            import csv

            with open(work / "report" / "metrics.csv") as fh:
                rows = list(csv.DictReader(fh))
            entry["max_abs_diff_to_stored_fit_nmae"] = max(abs(float(r["nmae_scf_percent"]) - float(r["stored_fit_nmae_percent"])) for r in rows)
        entry["mean_nmae_scf_percent"] = m["nmae_scf_percent"]["mean"]
        results[name] = entry
    print(json.dumps({"n_structures": args.n, "basis": args.basis, "results": results}, indent=2))


if __name__ == "__main__":
    main()
