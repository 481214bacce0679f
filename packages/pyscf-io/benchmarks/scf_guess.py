"""SCF cycles from a learned density as initial guess, against the RI density and PySCF's guesses.

    python benchmarks/scf_guess.py --data /work/data/organic.h5 --out /tmp/bench-organic
    python benchmarks/scf_guess.py --data medium.h5 --xyz /work/data/medium.xyz   # (re)makes the data first

Steps (every one through the command-line tools): ``pyscf-io run`` (only when --data is missing
and --xyz is given), index files (first --train structures train, the last --test test), ``rho-train
train`` (exact linear fit; fit.alpha chosen by rho-train's cross-validation on the training split
unless --alpha fixes it), ``rho-train predict`` on the test split, ``pyscf-io guess`` on it. Prints
the guess table, the molecule sizes, the command and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from rho_data import open_dataset
from rho_data.split import write_index_file

BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    return shutil.which(name, path=os.pathsep.join([str(BIN), os.environ.get("PATH", "")])) or name


def run(args: list, **kw) -> None:
    print("+", " ".join(map(str, args)), flush=True)
    subprocess.run([str(a) for a in args], check=True, **kw)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="pyscf-io dataset (made from --xyz when missing)")
    p.add_argument("--xyz", type=Path, help="geometries to make --data from with pyscf-io run")
    p.add_argument("--out", type=Path, default=Path("scf-guess-bench"))
    p.add_argument("--train", type=int, default=100, help="first N structures train")
    p.add_argument("--test", type=int, default=20, help="last N structures are the held-out test set")
    p.add_argument("--alpha", type=float, help="fix fit.alpha (default: rho-train's cross-validation on train)")
    p.add_argument("--guesses", default="ml,ri,minao,atom,huckel,vsap")
    p.add_argument("--guess-grid-level", type=int, default=1)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--sweep-levels", help="also run the ri guess at these guess grid levels, e.g. 0,1,2,3")
    a = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    a.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if not a.data.exists():
        if a.xyz is None:
            raise SystemExit(f"{a.data} does not exist; give --xyz to make it")
        run([tool("pyscf-io"), "run", a.xyz, "-o", a.data, "--workers", a.workers, "-q"])
    with open_dataset(a.data) as ds:
        n, dataset_id = len(ds), ds.dataset_id
    if a.train + a.test > n:
        raise SystemExit(f"{a.data} has {n} structures, fewer than --train {a.train} + --test {a.test}")
    train, test = np.arange(a.train), np.arange(n - a.test, n)
    write_index_file(a.out / "train.idx", train, dataset_id=dataset_id, comment=f"first {a.train}")
    write_index_file(a.out / "test.idx", test, dataset_id=dataset_id, comment=f"last {a.test}")
    sets = ["--set", f"data.train={a.out / 'train.idx'}", "--set", f"data.test={a.out / 'test.idx'}"]
    sets += ["--set", "data.val=null"]
    if a.alpha is not None:
        sets += ["--set", f"fit.alpha={a.alpha}"]
    t_train = time.time()
    run([tool("rho-train"), "train", a.data, "-o", a.out / "run", "--overwrite", *sets])
    t_pred = time.time()
    run([tool("rho-train"), "predict", a.out / "run" / "model.pt", a.data, "--indices", a.out / "test.idx",
         "-o", a.out / "pred.h5", "--overwrite"])  # fmt: skip
    t_guess = time.time()
    run([tool("pyscf-io"), "guess", a.out / "pred.h5", "--reference", a.data, "-o", a.out / "guess", "--overwrite",
         "--guesses", a.guesses, "--guess-grid-level", a.guess_grid_level, "--workers", a.workers])  # fmt: skip
    summary = json.loads((a.out / "guess" / "summary.json").read_text())
    print()
    print(f"command: {' '.join(sys.argv)}")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}; load average: {os.getloadavg()}")
    print(f"train {t_pred - t_train:.0f} s, predict {t_guess - t_pred:.0f} s, guess runs {time.time() - t_guess:.0f} s")
    print(f"test structures: {summary['structures']}, atoms {summary['n_atoms_range']}")
    print("| guess | mean cycles | guess build (s) | SCF (s) | total (s) | converged |")
    print("|---|---|---|---|---|---|")
    for guess, g in summary["guesses"].items():
        print(
            f"| {guess} | {g['mean_cycles']:.2f} | {g['mean_build_s']:.2f} | {g['mean_scf_s']:.2f} | "
            f"{g['mean_total_s']:.2f} | {g['converged']}/{g['structures']} |"
        )
    for key in sorted(summary):
        if key.startswith(("ml_", "ri_", "max_abs")):
            print(f"{key}: {summary[key]:.4g}")
    if a.sweep_levels:
        print("| guess grid level | ri mean cycles | ri guess build (s) | ri total (s) |")
        print("|---|---|---|---|")
        for level in [int(x) for x in a.sweep_levels.split(",")]:
            out = a.out / f"sweep-{level}"
            run([tool("pyscf-io"), "guess", a.out / "pred.h5", "--reference", a.data, "-o", out, "--overwrite",
                 "--guesses", "ri", "--guess-grid-level", level, "--workers", a.workers], stdout=subprocess.DEVNULL)  # fmt: skip
            g = json.loads((out / "summary.json").read_text())["guesses"]["ri"]
            print(f"| {level} | {g['mean_cycles']:.2f} | {g['mean_build_s']:.2f} | {g['mean_total_s']:.2f} |", flush=True)
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
