"""Prediction as a user runs it: process start-up, model loading, one call, batch throughput.

    OMP_NUM_THREADS=1 python benchmarks/startup.py MODEL.pt [--repeats 5]

MODEL must know H, C and O. Prints one line per figure and, last, one JSON line:
- median wall time of `python -c "import torch"`, `rho-train --version`, `rho-train --help`,
  `rho-train predict MODEL` on one water molecule and on 100 (each a fresh process);
- in a fresh process: `import rho_model` and `rho_model.load(MODEL)` (imports included) and the
  load alone after the imports;
- on a loaded model: the median of `model.predict(atoms)` for one water and for one n-hexane
  (20 atoms), and water molecules per second in batches of 300 (best of 3).
"""

from __future__ import annotations

import argparse
import json
import runpy
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent

LOAD = """
import sys, time
start = time.perf_counter()
import rho_model
import rho_model.predict
imported = time.perf_counter()
rho_model.load(sys.argv[1])
print(imported - start, time.perf_counter() - imported)
"""


def waters(n: int, seed: int = 0) -> list:
    from ase.build import molecule

    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        atoms = molecule("H2O")
        atoms.positions += rng.normal(scale=0.03, size=atoms.positions.shape)
        frames.append(atoms)
    return frames


def hexane():
    from ase import Atoms

    positions = runpy.run_path(str(ROOT / "packages/pyscf-io/benchmarks/benchmark.py"))["hexane"]()
    return Atoms([s for s, _ in positions], positions=[p for _, p in positions])


def process_seconds(command: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def call_seconds(function, argument, repeats: int) -> float:
    function(argument)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(argument)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from ase.io import write

    work = Path(tempfile.mkdtemp(prefix="rho-startup-"))
    write(work / "one.xyz", waters(1), format="extxyz")
    write(work / "waters100.xyz", waters(100), format="extxyz")
    train = [str(BIN / "rho-train")]
    predict = [*train, "predict", str(args.model)]
    r = {}
    r["import_torch_s"] = process_seconds([sys.executable, "-c", "import torch"], args.repeats)
    r["version_s"] = process_seconds([*train, "--version"], args.repeats)
    r["help_s"] = process_seconds([*train, "--help"], args.repeats)
    r["predict_one_process_s"] = process_seconds(
        [*predict, str(work / "one.xyz"), "-o", str(work / "p.h5"), "--overwrite"], args.repeats
    )
    r["predict_100_process_s"] = process_seconds(
        [*predict, str(work / "waters100.xyz"), "-o", str(work / "p.h5"), "--overwrite"], args.repeats
    )
    loads = [
        [
            float(x)
            for x in subprocess.run(
                [sys.executable, "-c", LOAD, str(args.model)], check=True, capture_output=True, text=True
            ).stdout.split()
        ]
        for _ in range(args.repeats)
    ]
    r["import_s"] = statistics.median(x[0] for x in loads)
    r["load_s"] = statistics.median(x[1] for x in loads)

    import rho_model

    model = rho_model.load(args.model)
    r["api_water_ms"] = 1e3 * call_seconds(model.predict, waters(1)[0], 20)
    r["api_hexane_ms"] = 1e3 * call_seconds(model.predict, hexane(), 20)
    batch = waters(300, seed=1)
    model.predict(batch)
    r["batch_waters_per_s"] = max(300 / call_seconds(model.predict, batch, 1) for _ in range(3))

    print(
        f"python -c 'import torch': {r['import_torch_s']:.2f} s; rho-train --version {r['version_s']:.2f} s, --help {r['help_s']:.2f} s"
    )
    print(
        f"rho-train predict, one water: {r['predict_one_process_s']:.2f} s "
        f"({r['predict_one_process_s'] - r['import_torch_s']:+.2f} s over import torch); 100 waters: {r['predict_100_process_s']:.2f} s"
    )
    print(f"import rho_model + predict: {r['import_s']:.2f} s, then rho_model.load: {r['load_s']:.3f} s")
    print(
        f"loaded model: one water {r['api_water_ms']:.1f} ms, one n-hexane (20 atoms) {r['api_hexane_ms']:.1f} ms, "
        f"{r['batch_waters_per_s']:.0f} waters per second in batches of 300"
    )
    print(json.dumps(r))


if __name__ == "__main__":
    main()
