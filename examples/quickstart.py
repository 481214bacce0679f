"""The quickstart: from nothing to a trained model and its %NMAE report, through our CLIs.

    python examples/quickstart.py [--output quickstart-output] [--workers 2]

Stages (each one command, so the chain can be run by hand too; see README.md):
molecules -> pyscf-io run -> rho-data validate/split -> rho-train train -> rho-train predict
-> rho-eval. Every stage is resumable: rerunning skips what is done.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def step(title: str, command: str, *, cwd: Path, done: Path | None = None) -> float:
    """Run one CLI stage, a command line as a shell would split it (skipped when ``done`` exists); returns its wall time."""
    if done is not None and done.exists():
        print(f"== {title}: already done ({done.name})", flush=True)
        return 0.0
    args = shlex.split(command)
    if (BIN / args[0]).exists():
        args[0] = str(BIN / args[0])
    print(f"== {title}\n$ {shlex.join([Path(args[0]).name, *args[1:]])}", flush=True)
    start = time.perf_counter()
    result = subprocess.run(args, cwd=cwd)
    if result.returncode != 0:
        sys.exit(f"quickstart: '{title}' failed (exit {result.returncode})")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=Path("quickstart-output"))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    out = args.output.resolve()
    out.mkdir(parents=True, exist_ok=True)
    python, here, workers = shlex.quote(sys.executable), shlex.quote(str(HERE)), args.workers
    times = {}
    times["molecules"] = step(
        "molecules", f"{python} {here}/make_molecules.py -o molecules.xyz", cwd=out, done=out / "molecules.xyz"
    )
    times["DFT (pyscf-io)"] = step("reference densities", f"pyscf-io run molecules.xyz -o data.h5 --workers {workers}", cwd=out)
    step("validate", "rho-data validate data.h5", cwd=out)
    step(
        "split",
        "rho-data split data.h5 -s 0.7 -s 0.1 -s 0.2 --seed 0 -o splits",
        cwd=out,
        done=out / "splits" / "test.idx",
    )
    times["training (rho-train)"] = step(
        "training",
        f"rho-train train data.h5 -o model -c {here}/quickstart-ml.yaml --set data.train=splits/train.idx"
        " --set data.val=splits/val.idx --set data.test=splits/test.idx",
        cwd=out,
        done=out / "model" / "model.pt",
    )
    times["prediction"] = step(
        "prediction",
        "rho-train predict model/model.pt data.h5 --indices splits/test.idx -o predictions.h5",
        cwd=out,
        done=out / "predictions.h5",
    )
    step("validate predictions", "rho-data validate predictions.h5", cwd=out)
    times["evaluation (rho-eval)"] = step(
        "evaluation", f"rho-eval predictions.h5 --reference data.h5 -o report -j {workers}", cwd=out
    )
    print("\nwall time per stage: " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()))
    print(f"report: {out / 'report'} (metrics.csv, summary.json, plots/)")


if __name__ == "__main__":
    main()
