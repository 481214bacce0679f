"""rho's exact linear fit vs metatrain's SOAP-BPNN (and PET) on one seeded split, %NMAE vs RI and SCF by rho-eval.

    python benchmarks/metatrain_vs_rho.py [--data /work/data/organic.h5] [--sizes 160 20 20] [--epochs 300]
        [--architectures soap_bpnn pet] [--output metatrain-vs-rho]

Without --data the organics data is remade: examples/make_molecules.py (10 g2 molecules of H C N O with
3-6 atoms, 20 conformers each) and pyscf-io run with its defaults (PBE/def2-SVP, etb 1.6, Coulomb fit).
rho: rho-train train (defaults; alpha chosen on the validation part) and rho-train predict. metatrain:
rho-data export --format metatrain, mtt train (the architecture's default hypers, --epochs, the best model
on the validation part), mtt eval of the test part, rho-data import metatrain. Every prediction of the
test part goes through rho-eval. Needs rho-model and metatrain, which need different metatensor-learn
versions: run with --rho-python (an environment with rho-model) from the metatrain environment.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
ORGANICS = ["CH3OH", "HCOOH", "H2CO", "CH4", "NH3", "HCN", "H3CNH2", "C2H4", "H2O", "CH3CN"]


def run(*command, cwd: Path) -> float:
    """Run one command (stops the benchmark if it fails); returns its wall time."""
    print("$", " ".join(map(str, command)), flush=True)
    start = time.perf_counter()
    if subprocess.run([str(c) for c in command], cwd=cwd).returncode != 0:
        sys.exit(f"metatrain_vs_rho: {command[0]} failed")
    return time.perf_counter() - start


def evaluate(bin_dir: Path, predictions: Path, data: Path, report: Path, cwd: Path) -> dict[str, float]:
    shutil.rmtree(report, ignore_errors=True)
    run(bin_dir / "rho-eval", predictions, "-r", data, "-o", report, cwd=cwd)
    return json.loads((report / "summary.json").read_text())["pooled"]


def validation_curve(work: Path) -> list[tuple[int, float]]:
    """(epoch, validation loss) of the newest ``mtt train`` run in ``work`` (its ``outputs/<date>/<time>/train.csv``)."""
    runs = sorted(work.glob("outputs/*/*/train.csv"))
    if not runs:
        sys.exit(f"metatrain_vs_rho: mtt train wrote no train.csv under {work}/outputs")
    with runs[-1].open() as handle:
        rows = list(csv.DictReader(handle))
    return [(int(r["Epoch"]), float(r["validation loss"])) for r in rows if r["Epoch"].strip()]


def print_curve(name: str, curve: list[tuple[int, float]]) -> None:
    """The validation loss at a few epochs and its change over the last quarter of training."""
    picks = sorted({curve[min(len(curve) - 1, round(f * (len(curve) - 1)))] for f in (0, 0.1, 0.25, 0.5, 0.75, 0.9, 1)})
    print(f"\n{name}: validation loss (metatrain's, scaled targets) by epoch")
    print("| epoch | validation loss |\n|---|---|")
    for epoch, loss in picks:
        print(f"| {epoch} | {loss:.4g} |")
    last_quarter = [loss for epoch, loss in curve if epoch >= 0.75 * curve[-1][0]]
    best = min(loss for _, loss in curve)
    change = (last_quarter[0] - curve[-1][1]) / last_quarter[0]
    print(f"last quarter of the epochs: {100 * change:.1f} % lower at the end; best {best:.4g}, last {curve[-1][1]:.4g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--sizes", type=int, nargs=3, default=(160, 20, 20), metavar=("TRAIN", "VAL", "TEST"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--architectures", nargs="*", default=["soap_bpnn"], help="none: rho only")
    parser.add_argument("--rho-python", type=Path, help="Python of an environment with rho-model (skip rho if not given).")
    parser.add_argument(
        "--rho-set", action="append", default=[], metavar="KEY=VALUE", help="rho-train --set (default: its defaults)"
    )
    parser.add_argument("--output", type=Path, default=Path("metatrain-vs-rho"))
    args = parser.parse_args()
    out = args.output.resolve()
    out.mkdir(parents=True, exist_ok=True)
    here = Path(sys.executable).parent
    if args.data is None:
        data = out / "organic.h5"
        if not data.exists():
            make = ROOT / "examples" / "make_molecules.py"
            run(sys.executable, make, "-o", "organic.xyz", "--conformers", 20, "--molecules", *ORGANICS, cwd=out)
            run(here / "pyscf-io", "run", "organic.xyz", "-o", data, "--quiet", cwd=out)
    else:
        data = args.data.resolve()
    sizes = [a for size in args.sizes for a in ("-s", size)]
    run(here / "rho-data", "split", data, *sizes, "--seed", args.seed, "-o", "splits", "--overwrite", cwd=out)
    rows = []
    curves: dict[str, list[tuple[int, float]]] = {}
    if args.rho_python is not None:
        rho_bin = args.rho_python.parent
        shutil.rmtree(out / "rho-model", ignore_errors=True)
        parts = [a for part in ("train", "val", "test") for a in ("--set", f"data.{part}=splits/{part}.idx")]
        parts += [a for setting in args.rho_set for a in ("--set", setting)]
        seconds = run(rho_bin / "rho-train", "train", data, "-o", "rho-model", *parts, cwd=out)
        predict = [rho_bin / "rho-train", "predict", "rho-model/model.pt", data, "--indices", "splits/test.idx"]
        run(*predict, "-o", "rho-predictions.h5", "--overwrite", cwd=out)
        rows.append(
            (
                f"rho exact linear fit ({', '.join(args.rho_set) or 'rho-train defaults'})",
                "-",
                seconds,
                evaluate(here, out / "rho-predictions.h5", data, out / "rho-report", out),
            )
        )
    if args.architectures:
        splits = [a for part in ("train", "val", "test") for a in ("--indices", f"splits/{part}.idx")]
        run(here / "rho-data", "export", data, "--format", "metatrain", "-o", "mtt", *splits, "--overwrite", cwd=out)
    for architecture in args.architectures:
        work = out / f"mtt-{architecture}"
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(out / "mtt", work)
        template = yaml.safe_load((out / "mtt" / "options.yaml").read_text())
        options = {**template, "architecture": {"name": architecture, "training": {"num_epochs": args.epochs}}}
        (work / "options.yaml").write_text(yaml.safe_dump(options, sort_keys=False))
        seconds = run(here / "mtt", "train", "options.yaml", cwd=work)
        curves[architecture] = validation_curve(work)
        run(
            here / "mtt",
            "eval",
            "model.pt",
            "eval-test.yaml",
            "-o",
            "test-predictions.zip",
            "-e",
            "extensions/",
            "--no-warm-up",
            cwd=work,
        )
        predictions = out / f"{architecture}-predictions.h5"
        imported = [here / "rho-data", "import", "metatrain", work / "test-predictions.zip", "-r", data]
        run(*imported, "--indices", work / "test.idx", "-o", predictions, "--overwrite", cwd=out)
        rows.append(
            (
                f"metatrain {architecture}",
                args.epochs,
                seconds,
                evaluate(here, predictions, data, out / f"{architecture}-report", out),
            )
        )
    for architecture, curve in curves.items():
        print_curve(f"metatrain {architecture}", curve)
    print(f"\n{data.name}, split {'/'.join(map(str, args.sizes))} (seed {args.seed}); test %NMAE by rho-eval\n")
    print("| model | epochs | training wall time (s) | %NMAE vs RI | %NMAE vs SCF |\n|---|---|---|---|---|")
    for name, epochs, seconds, pooled in rows:
        print(f"| {name} | {epochs} | {seconds:.0f} | {pooled['nmae_ri_percent']:.3f} | {pooled['nmae_scf_percent']:.3f} |")


if __name__ == "__main__":
    main()
