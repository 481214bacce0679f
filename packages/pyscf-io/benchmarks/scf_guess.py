"""SCF cycles from a learned density as initial guess, and the properties read off it.

    python benchmarks/scf_guess.py --data /work/data/medium.h5 --out /tmp/bench-medium
    python benchmarks/scf_guess.py --data /work/data/organic.h5 --out /tmp/bench-organic --ranges train=0:100,test=-20:
    python benchmarks/scf_guess.py --data medium.h5 --xyz /work/data/medium.xyz   # (re)makes the data first

Steps (every one through the command-line tools): ``pyscf-io run`` (only when --data is missing
and --xyz is given); ``rho-data split`` (default --sizes 80,20,20 train/val/test, --seed 0, or
explicit --ranges); ``rho-train train`` (exact linear fit; fit.alpha chosen on the validation
split, or by rho-train's cross-validation on the training split when there is none, over
rho-train's grid or the short --alphas scan, unless --alpha fixes it: the test split is never
used to choose it); ``rho-train predict`` on the test split; ``rho-eval`` on those predictions
(%NMAE, electron count, dipole and electrostatic-energy errors against the RI fit and the SCF
density); ``pyscf-io guess`` on them. Prints one row per test structure (cycles per guess,
property errors), the guess table, the property summary, the command, the date and the load
average.

Resumable: the outputs of a step are reused when a rerun has the same arguments (``bench.json``);
rho-eval and pyscf-io guess resume their own reports. --overwrite starts over.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from rho_data import open_dataset

BIN = Path(sys.executable).parent
PROPERTIES = (
    ("dipole_error_ri_debye", "dipole error vs RI (D)"),
    ("dipole_error_scf_debye", "dipole error vs SCF (D)"),
    ("electrostatic_error_ri_kcal_mol", "E_es - E_es(RI) (kcal/mol)"),
    ("electrostatic_error_scf_kcal_mol", "E_es - E_es(SCF) (kcal/mol)"),
    ("hartree_error_ri_kcal_mol", "E_H - E_H(RI) (kcal/mol)"),
    ("hartree_error_scf_kcal_mol", "E_H - E_H(SCF) (kcal/mol)"),
)


def tool(name: str) -> str:
    return shutil.which(name, path=os.pathsep.join([str(BIN), os.environ.get("PATH", "")])) or name


def run(args: list, **kw) -> None:
    print("+", " ".join(map(str, args)), flush=True)
    subprocess.run([str(a) for a in args], check=True, **kw)


def split_args(a) -> list:
    if a.ranges:
        return [x for r in a.ranges.split(",") for x in ("--range", r)]
    return [x for s in a.sizes.split(",") for x in ("--size", s)] + ["--seed", a.seed]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="pyscf-io dataset (made from --xyz when missing)")
    p.add_argument("--xyz", type=Path, help="geometries to make --data from with pyscf-io run")
    p.add_argument("--out", type=Path, default=Path("scf-guess-bench"))
    p.add_argument("--sizes", default="80,20,20", help="train,val,test counts for rho-data split (shuffled)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split's shuffle")
    p.add_argument("--ranges", help="explicit parts instead, e.g. train=0:100,test=-20: (rho-data split --range)")
    p.add_argument("--alpha", type=float, help="fix fit.alpha (default: chosen on the validation split, else CV)")
    p.add_argument("--alphas", help="a short alpha scan instead of rho-train's grid, e.g. 1e-2,1e-3 (not extended)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="a rho-train option for the training (repeatable), e.g. descriptor.max_radial=5")  # fmt: skip
    p.add_argument("--guesses", default="ml,ri,minao,atom,huckel,vsap")
    p.add_argument("--guess-grid-level", type=int, default=1)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--train-threads", type=int, default=os.cpu_count() or 1,
                   help="OpenMP threads of the training process (default: all cores; the other steps use --workers)")  # fmt: skip
    p.add_argument("--sweep-levels", help="also run the ri guess at these guess grid levels, e.g. 0,1,2,3")
    p.add_argument("--overwrite", action="store_true", help="redo every step")
    a = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    a.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if not a.data.exists():
        if a.xyz is None:
            raise SystemExit(f"{a.data} does not exist; give --xyz to make it")
        run([tool("pyscf-io"), "run", a.xyz, "-o", a.data, "--workers", a.workers, "-q"])
    with open_dataset(a.data) as ds:
        dataset_id = ds.dataset_id
    record = {"data": str(a.data.resolve()), "dataset_id": dataset_id, "split": split_args(a), "alpha": a.alpha}
    record["alphas"] = a.alphas
    if a.sets:
        record["sets"] = a.sets
    bench = a.out / "bench.json"
    reuse = not a.overwrite and bench.is_file() and json.loads(bench.read_text()) == record
    if not reuse:
        for stale in ("splits", "run", "eval", "guess", *(p.name for p in a.out.glob("sweep-*"))):
            shutil.rmtree(a.out / stale, ignore_errors=True)
        (a.out / "pred.h5").unlink(missing_ok=True)
        bench.write_text(json.dumps(record, indent=1) + "\n")
    splits = a.out / "splits"
    if not (splits / "test.idx").is_file():
        run([tool("rho-data"), "split", a.data, "-o", splits, "--overwrite", *map(str, split_args(a))])
    sets = [f"data.{name}={splits / f'{name}.idx'}" if (splits / f"{name}.idx").is_file() else f"data.{name}=null"
            for name in ("train", "val", "test")]  # fmt: skip
    if a.alpha is not None:
        sets.append(f"fit.alpha={a.alpha}")
    elif a.alphas:
        sets += [f"fit.alphas=[{a.alphas}]", "fit.alpha_extend=0"]
    sets += a.sets
    times = {}
    t = time.time()
    if not (a.out / "run" / "model.pt").is_file():
        run([tool("rho-train"), "train", a.data, "-o", a.out / "run", "--overwrite", *[x for s in sets for x in ("--set", s)]],
            env={**os.environ, "OMP_NUM_THREADS": str(a.train_threads)})  # fmt: skip
    times["train"] = time.time() - t
    t = time.time()
    if not (a.out / "pred.h5").is_file():
        run([tool("rho-train"), "predict", a.out / "run" / "model.pt", a.data, "--indices", splits / "test.idx",
             "-o", a.out / "pred.h5"])  # fmt: skip
    times["predict"] = time.time() - t
    t = time.time()
    run([tool("rho-eval"), a.out / "pred.h5", "--reference", a.data, "-o", a.out / "eval", "--no-plots", "-j", a.workers],
        stdout=subprocess.DEVNULL)  # fmt: skip
    times["rho-eval"] = time.time() - t
    t = time.time()
    run([tool("pyscf-io"), "guess", a.out / "pred.h5", "--reference", a.data, "-o", a.out / "guess",
         "--guesses", a.guesses, "--guess-grid-level", a.guess_grid_level, "--workers", a.workers])  # fmt: skip
    times["guess runs"] = time.time() - t
    report(a, times)
    if a.sweep_levels:
        sweep(a)
    print(f"total {time.time() - t0:.0f} s")


def report(a, times: dict) -> None:
    """The per-structure table, the guess table and the property summary."""
    guess = json.loads((a.out / "guess" / "guess.json").read_text())
    summary = guess["summary"]
    evaluation = json.loads((a.out / "eval" / "summary.json").read_text())
    metrics = {int(r["dataset_index"]): r for r in csv.DictReader((a.out / "eval" / "metrics.csv").read_text().splitlines())}
    cycles: dict[int, dict[str, int]] = {}
    for row in guess["rows"]:
        cycles.setdefault(row["dataset_index"], {})[row["guess"]] = row["cycles"]
    names = list(summary["guesses"])
    print()
    print(f"command: {' '.join(sys.argv)}")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}; load average: {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(", ".join(f"{k} {v:.0f} s" for k, v in times.items()))
    print(f"test structures: {summary['structures']}, atoms {summary['n_atoms_range']}")
    print()
    print("| structure | atoms | " + " | ".join(f"{g} cycles" for g in names) + " | %NMAE vs RI | N_pred - N | "
          + " | ".join(label for _, label in PROPERTIES[:4]) + " |")  # fmt: skip
    print("|---|---|" + "---|" * (len(names) + 6))
    for index in sorted(cycles):
        m = metrics[index]
        n_err = float(m["n_electrons_coef_pred"]) - float(m["n_electrons"])
        print(f"| {m['label']} | {m['n_atoms']} | " + " | ".join(str(cycles[index].get(g, "")) for g in names)
              + f" | {float(m['nmae_ri_percent']):.3f} | {n_err:+.1e} | "
              + " | ".join(f"{float(m[key]):.3f}" for key, _ in PROPERTIES[:4]) + " |")  # fmt: skip
    print()
    print("| guess | mean cycles | guess build (s) | SCF (s) | total (s) | converged |")
    print("|---|---|---|---|---|---|")
    for name, g in summary["guesses"].items():
        print(
            f"| {name} | {g['mean_cycles']:.2f} | {g['mean_build_s']:.2f} | {g['mean_scf_s']:.2f} | "
            f"{g['mean_total_s']:.2f} | {g['converged']}/{g['structures']} |"
        )
    for key in sorted(summary):
        if key.startswith(("ml_", "ri_", "max_abs")):
            print(f"{key}: {summary[key]:.4g}")
    print()
    pooled, stats, errors = evaluation["pooled"], evaluation["metrics"], evaluation["property_errors"]
    print("| property (test split) | MAE | RMSE | mean |")
    print("|---|---|---|---|")
    print(f"| pooled %NMAE vs RI / vs SCF | {pooled['nmae_ri_percent']:.3f} / {pooled['nmae_scf_percent']:.3f} | | |")
    n_abs = [abs(float(m["n_electrons_coef_pred"]) - float(m["n_electrons"])) for m in metrics.values()]
    print(f"| electron count error (electrons) | {sum(n_abs) / len(n_abs):.2e} | | |")
    for key, label in PROPERTIES:
        if key in errors:
            print(f"| {label} | {errors[key]['mae']:.3f} | {errors[key]['rmse']:.3f} | {stats[key]['mean']:+.3f} |")


def sweep(a) -> None:
    """The ri guess at other V_xc grid levels: cycles against build time."""
    print("| guess grid level | ri mean cycles | ri guess build (s) | ri total (s) |")
    print("|---|---|---|---|")
    for level in [int(x) for x in a.sweep_levels.split(",")]:
        out = a.out / f"sweep-{level}"
        run([tool("pyscf-io"), "guess", a.out / "pred.h5", "--reference", a.data, "-o", out,
             "--guesses", "ri", "--guess-grid-level", level, "--workers", a.workers], stdout=subprocess.DEVNULL)  # fmt: skip
        g = json.loads((out / "summary.json").read_text())["guesses"]["ri"]
        print(f"| {level} | {g['mean_cycles']:.2f} | {g['mean_build_s']:.2f} | {g['mean_total_s']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
