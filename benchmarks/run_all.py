"""How fast each stage is, as one markdown table (the numbers in README.md come from here).

    python benchmarks/run_all.py [--workdir DIR] [--waters 20] [--hexanes 2]

1. DFT vs prediction, per structure, for water and for a 20-atom molecule (n-hexane): the
   PySCF time of `pyscf-io run` (SCF + RI fit, pyscf-io defaults, one worker, from the
   dataset's own timings) against the time of predicting the coefficients from the geometry
   with a model trained on those structures (descriptors included; one structure per call, and
   per structure in a batch of 100, which is how a dataset is predicted).
2. Training time per epoch (gradient training of the default linear model) on those
   structures, from rho-train's log.csv.
3. Prediction as a user runs it, with that model (packages/rho-model/benchmarks/startup.py):
   `rho-train --help` / `--version`, `rho-train predict` of one and of 100 waters as processes
   next to a bare `python -c "import torch"` of the same run, the model load, one call on a
   loaded model for a water and for n-hexane (20 atoms), waters per second in batches of 300.
4. Prediction time and peak memory for water clusters of 3 to 3,000 atoms
   (packages/rho-model/benchmarks/scaling.py).
5. rho-data write and random-read throughput (packages/rho-data/benchmarks/bench_io.py).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import runpy
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import molecule
from ase.io import write

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def cli(*args, cwd: Path) -> str:
    command = [str(BIN / args[0]) if (BIN / args[0]).exists() else str(args[0]), *map(str, args[1:])]
    result = subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"run_all: {' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return result.stdout


def structures(waters: int, hexanes: int) -> list[Atoms]:
    rng = np.random.default_rng(0)
    hexane_positions = runpy.run_path(str(ROOT / "packages/pyscf-io/benchmarks/benchmark.py"))["hexane"]()
    frames = []
    for k in range(waters):
        atoms = molecule("H2O")
        atoms.positions += rng.normal(scale=0.03, size=atoms.positions.shape)
        atoms.info = {"name": f"water-{k}"}
        frames.append(atoms)
    for k in range(hexanes):
        atoms = Atoms([s for s, _ in hexane_positions], positions=[p for _, p in hexane_positions])
        atoms.positions += rng.normal(scale=0.03, size=atoms.positions.shape)
        atoms.info = {"name": f"hexane-{k}"}
        frames.append(atoms)
    return frames


def dft_and_prediction(work: Path, waters: int, hexanes: int) -> tuple[list[str], list[str]]:
    from rho_data import open_dataset
    from rho_model.predict import Predictor

    frames = structures(waters, hexanes)
    write(work / "molecules.xyz", frames, format="extxyz")
    cli("pyscf-io", "run", "molecules.xyz", "-o", "dft.h5", "--workers", "1", "-q", cwd=work)
    with open_dataset(work / "dft.h5") as data:
        dft = {name: [] for name in ("water", "hexane")}
        for s in data:
            dft[s.label.split("-")[0]].append(s.metadata["time_scf_s"] + s.metadata["time_fit_s"])
        n, dataset_id = len(data), data.dataset_id
    (work / "all.idx").write_text(f"# dataset_id: {dataset_id}\n" + "".join(f"{i}\n" for i in range(n)))
    cli("rho-train", "train", "dft.h5", "-o", "model", "--set", "data.train=all.idx", "--set", "fit.alpha=1.0e-6", cwd=work)
    cli(
        "rho-train",
        "train",
        "dft.h5",
        "-o",
        "model-gradient",
        "--set",
        "data.train=all.idx",
        "--set",
        "fit.method=gradient",
        "--set",
        "training.epochs=5",
        "--set",
        "training.warm_start=false",
        cwd=work,
    )
    predictor = Predictor.load(work / "model" / "model.pt")
    rows = [
        "| structure | atoms | DFT (PySCF SCF + RI fit) per structure (s) | prediction, one structure per call (s) "
        "| prediction per structure in a batch of 100 (s) | speed-up (batched) |",
        "|---|---|---|---|---|---|",
    ]
    for name, frame in (("water", frames[0]), ("n-hexane", frames[-1])):
        predictor.predict([frame])  # warm-up
        single = min(_timed(predictor.predict, [frame]) for _ in range(3))
        batched = min(_timed(predictor.predict, [frame] * 100) for _ in range(2)) / 100
        seconds = float(np.mean(dft["water" if name == "water" else "hexane"]))
        rows.append(f"| {name} | {len(frame)} | {seconds:.2f} | {single:.4f} | {batched:.4f} | {seconds / batched:,.0f}x |")
    with open(work / "model-gradient" / "log.csv") as handle:
        epochs = list(csv.DictReader(handle))
    dt = [float(e["dt_train"]) for e in epochs]
    training = [
        f"gradient training of the linear model: {np.mean(dt):.3f} s per epoch over {n} structures "
        f"({waters} waters, {hexanes} n-hexanes; mean of {len(dt)} epochs)"
    ]
    return rows, training


def _timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def startup(work: Path) -> list[str]:
    out = cli(sys.executable, ROOT / "packages/rho-model/benchmarks/startup.py", work / "model" / "model.pt", cwd=ROOT)
    r = json.loads(out.strip().splitlines()[-1])
    return [
        "| prediction as a user runs it | seconds |",
        "|---|---|",
        f'| `python -c "import torch"` (the floor of any torch program) | {r["import_torch_s"]:.2f} |',
        f"| `rho-train --version` / `--help` | {r['version_s']:.2f} / {r['help_s']:.2f} |",
        f"| `rho-train predict MODEL one_water.xyz` | {r['predict_one_process_s']:.2f} "
        f"({r['predict_one_process_s'] - r['import_torch_s']:+.2f} over import torch) |",
        f"| `rho-train predict MODEL 100_waters.xyz` | {r['predict_100_process_s']:.2f} |",
        f"| `import rho_model` (prediction modules) / then `rho_model.load(MODEL)` | {r['import_s']:.2f} / {r['load_s']:.3f} |",
        f"| loaded model, one water / one n-hexane (20 atoms) | {r['api_water_ms'] / 1e3:.4f} / {r['api_hexane_ms'] / 1e3:.4f} |",
        f"| loaded model, waters per second in batches of 300 | {r['batch_waters_per_s']:.0f} per s |",
    ]


def prediction_scaling(sizes: list[int]) -> list[str]:
    rows = ["| atoms | prediction incl. descriptors (s) | per atom (ms) | peak memory (MiB) |", "|---|---|---|---|"]
    for n in sizes:
        out = cli(sys.executable, ROOT / "packages/rho-model/benchmarks/scaling.py", "--one", n, "--repeats", "2", cwd=ROOT)
        r = json.loads(out.strip().splitlines()[-1])
        rows.append(
            f"| {r['atoms']} | {r['predict_s']:.3f} | {1e3 * r['predict_s'] / r['atoms']:.2f} | {r['peak_rss_mib']:.0f} |"
        )
    return rows


def dataset_io(work: Path, n: int) -> list[str]:
    cli(
        sys.executable,
        ROOT / "packages/rho-data/benchmarks/bench_io.py",
        "--n",
        n,
        "--n-overlap",
        10,
        "--dir",
        work,
        "--json",
        work / "io.json",
        cwd=ROOT,
    )
    results = json.loads((work / "io.json").read_text())
    rows = [
        "| rho-data file | structures | write (structures/s) | random read (structures/s) | bytes per structure |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        rows.append(
            f"| {name} | {r['structures']} | {r['write_per_s']:.0f} | {r['read_per_s']:.0f} | {r['bytes_per_structure']:,.0f} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--waters", type=int, default=20)
    parser.add_argument("--hexanes", type=int, default=2)
    parser.add_argument("--io-structures", type=int, default=10_000)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1, 10, 100, 1000], help="water molecules per cluster")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="rho-benchmarks-"))
    work.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    dft_rows, training = dft_and_prediction(work, args.waters, args.hexanes)
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, no GPU; "
        f"load average {load:.1f} at the start.",
        "",
        *dft_rows,
        "",
        *training,
        "",
        *startup(work),
        "",
        *prediction_scaling(args.sizes),
        "",
        *dataset_io(work, args.io_structures),
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
