"""Write and random-access read throughput of rho-data files, with bytes per structure.

Synthetic structures of 10-30 atoms (H, C, N, O) with about 150 auxiliary functions per heavy
atom and 55 per hydrogen. Two runs:

* ``--n`` structures (default 10,000) with coefficients, projections, geometry and metadata
  (no overlap): the throughput of the per-structure path;
* ``--n-overlap`` structures (default 200) that also store the full block-sparse overlap of
  every atom pair (about 10-20 MB per structure, so 10,000 would need about 150 GB of disk).

    python benchmarks/bench_io.py [--n 10000] [--n-overlap 200] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from rho_data import Provenance, create_dataset, open_dataset
from rho_data.synthetic import synthetic_basis, synthetic_structure


def run(path: Path, n: int, overlap: bool, seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    basis = synthetic_basis(150)
    structures = [
        synthetic_structure(rng, basis, int(rng.integers(10, 31)), overlap=overlap, label=f"s{i}") for i in range(min(n, 50))
    ]
    t0 = time.perf_counter()
    with create_dataset(path, basis, Provenance(producer="bench_io"), overlap=overlap) as writer:
        for i in range(n):
            writer.append(structures[i % len(structures)])
    t_write = time.perf_counter() - t0
    size = path.stat().st_size

    t0 = time.perf_counter()
    dataset = open_dataset(path)
    t_open = time.perf_counter() - t0
    order = np.random.default_rng(1).permutation(n)[: min(n, 5000 if not overlap else n)]
    t0 = time.perf_counter()
    checksum = 0.0
    for i in order:
        s = dataset[int(i)]
        checksum += s.coefficients[0]
    t_read = time.perf_counter() - t0
    dataset.close()
    return {
        "structures": n,
        "write_per_s": n / t_write,
        "read_per_s": len(order) / t_read,
        "open_ms": 1e3 * t_open,
        "bytes_per_structure": size / n,
        "file_mb": size / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--n-overlap", type=int, default=200)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="Also write the results to this JSON file.")
    args = parser.parse_args()
    results = {}
    directory = Path(args.dir or tempfile.mkdtemp(prefix="rho-bench-"))
    print("| run | structures | write (structures/s) | random read (structures/s) | open (ms) | bytes/structure |")
    print("|---|---|---|---|---|---|")
    for name, n, overlap in (("no overlap", args.n, False), ("with overlap", args.n_overlap, True)):
        path = directory / f"bench-{name.replace(' ', '-')}.h5"
        if path.exists():
            path.unlink()
        r = results[name] = run(path, n, overlap)
        print(
            f"| {name} | {r['structures']} | {r['write_per_s']:.0f} | {r['read_per_s']:.0f} | {r['open_ms']:.1f} | {r['bytes_per_structure']:.0f} |"
        )
        os.remove(path)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
