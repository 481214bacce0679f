"""rho-data -> metatrain -> rho-eval, through the command lines: the round trip that CI runs.

    python benchmarks/metatrain_roundtrip.py [--output metatrain-roundtrip] [--data DATA.h5] [--epochs 5]

Stages: molecules (examples/make_molecules.py: H2O, NH3, CH4, 4 conformers each) -> pyscf-io run
(PBE/def2-SVP, the defaults) -> rho-data split (8/2/2) -> rho-data export --format metatrain ->
mtt train (SOAP-BPNN, small, --epochs on CPU) -> mtt eval of the test part -> rho-data import
metatrain -> rho-eval. With --data an existing dataset is used instead of the first two stages.
Prints the wall time of each stage and the test %NMAE; exits non-zero if any stage fails or a
metric is not finite. Needs metatrain, pyscf-io and rho-eval in one environment (nox -s metatrain).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(title: str, *command, cwd: Path, times: dict[str, float]) -> None:
    """One CLI stage; stops the script with its exit status if it fails."""
    args = [str(BIN / command[0]) if (BIN / command[0]).exists() else str(command[0]), *map(str, command[1:])]
    print(f"== {title}\n$ {shlex.join([Path(args[0]).name, *args[1:]])}", flush=True)
    start = time.perf_counter()
    result = subprocess.run(args, cwd=cwd, env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
    times[title] = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"metatrain round trip: '{title}' failed (exit {result.returncode})")


def small_soap_bpnn(options_file: Path, epochs: int, batch_size: int) -> None:
    """Shrink the exported template to a CPU-sized SOAP-BPNN (the template itself is left general)."""
    options = yaml.safe_load(options_file.read_text())
    options["architecture"] = {
        "name": "soap_bpnn",
        "model": {"soap": {"cutoff": {"radius": 4.0}, "max_radial": 4, "max_angular": 4}, "bpnn": {"num_neurons_per_layer": 32}},
        "training": {"batch_size": batch_size, "num_epochs": epochs, "learning_rate": 0.01, "log_interval": 1},
    }
    options_file.write_text(yaml.safe_dump(options, sort_keys=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=Path("metatrain-roundtrip"))
    parser.add_argument("--data", type=Path, help="An existing dataset (skips the molecules and pyscf-io stages).")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--sizes", type=int, nargs=3, default=(8, 2, 2), metavar=("TRAIN", "VAL", "TEST"))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    out = args.output.resolve()
    out.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    total = time.perf_counter()
    if args.data is None:
        data = out / "data.h5"
        if not data.exists():
            make = ROOT / "examples" / "make_molecules.py"
            run(
                "molecules",
                sys.executable,
                make,
                "-o",
                "molecules.xyz",
                "--conformers",
                4,
                "--molecules",
                "H2O",
                "NH3",
                "CH4",
                cwd=out,
                times=times,
            )
            run(
                "pyscf-io run",
                "pyscf-io",
                "run",
                "molecules.xyz",
                "-o",
                data,
                "--workers",
                args.workers,
                "--quiet",
                cwd=out,
                times=times,
            )
    else:
        data = args.data.resolve()
    sizes = [a for size in args.sizes for a in ("-s", size)]
    run("rho-data split", "rho-data", "split", data, *sizes, "--seed", 0, "-o", "splits", "--overwrite", cwd=out, times=times)
    splits = [a for part in ("train", "val", "test") for a in ("--indices", f"splits/{part}.idx")]
    run(
        "rho-data export",
        "rho-data",
        "export",
        data,
        "--format",
        "metatrain",
        "-o",
        "mtt",
        *splits,
        "--overwrite",
        cwd=out,
        times=times,
    )
    mtt = out / "mtt"
    small_soap_bpnn(mtt / "options.yaml", args.epochs, args.batch_size)
    run("mtt train", "mtt", "train", "options.yaml", "-o", "model.pt", cwd=mtt, times=times)
    prediction = mtt / "test-predictions.zip"
    prediction.unlink(missing_ok=True)
    eval_args = ["model.pt", "eval-test.yaml", "-o", prediction.name, "-e", "extensions/", "--no-warm-up"]
    run("mtt eval", "mtt", "eval", *eval_args, cwd=mtt, times=times)
    predictions = out / "predictions.h5"
    run(
        "rho-data import",
        "rho-data",
        "import",
        "metatrain",
        prediction,
        "-r",
        data,
        "--indices",
        mtt / "test.idx",
        "-o",
        predictions,
        "--overwrite",
        cwd=out,
        times=times,
    )
    shutil.rmtree(out / "report", ignore_errors=True)  # this script's own report of an earlier run
    run("rho-eval", "rho-eval", predictions, "-r", data, "-o", "report", cwd=out, times=times)
    pooled = json.loads((out / "report" / "summary.json").read_text())["pooled"]
    print("\n| stage | wall time (s) |\n|---|---|")
    for title, seconds in times.items():
        print(f"| {title} | {seconds:.1f} |")
    print(f"| total | {time.perf_counter() - total:.1f} |")
    print(
        f"\ntest %NMAE vs RI {pooled['nmae_ri_percent']:.3f}, vs SCF {pooled['nmae_scf_percent']:.3f} (SOAP-BPNN, {args.epochs} epochs)"
    )
    if not all(math.isfinite(pooled[k]) for k in ("nmae_ri_percent", "nmae_scf_percent")):
        sys.exit("metatrain round trip: the %NMAE is not finite")


if __name__ == "__main__":
    main()
