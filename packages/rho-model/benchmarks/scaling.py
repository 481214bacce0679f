"""Prediction time and peak memory for water clusters of 3 to 3,000 atoms, and descriptor time.

Usage: OMP_NUM_THREADS=1 python benchmarks/scaling.py [--sizes 1 10 100 1000] [--max-atoms 500] [--repeats 3]
Each cluster size runs in a fresh subprocess so that its peak memory (VmHWM) is its own;
timings are the best of --repeats runs (the machine is shared).
The model is a linear lambda-SOAP model with default descriptor hyperparameters for a
water-like basis (H lmax 3, O lmax 5; weights random: timing does not depend on them).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

BASIS = {"H": [8, 6, 4, 2], "O": [12, 10, 8, 6, 4, 2]}


def water_cluster(n_molecules: int, seed: int = 0):
    import ase

    rng = np.random.default_rng(seed)
    side = int(np.ceil(n_molecules ** (1 / 3)))
    sites = np.array([[i, j, k] for i in range(side) for j in range(side) for k in range(side)], dtype=float)[:n_molecules] * 3.1
    mono = np.array([[0.0, 0.0, 0.1173], [0.0, 0.7572, -0.4692], [0.0, -0.7572, -0.4692]])
    positions, numbers = [], []
    for site in sites:
        rot = np.linalg.qr(rng.normal(size=(3, 3)))[0]
        positions.extend(site + mono @ rot.T)
        numbers.extend([8, 1, 1])
    return ase.Atoms(numbers=numbers, positions=positions)


def model():
    from rho_data import AuxiliaryBasis
    from rho_data.elements import atomic_number
    from rho_data.layout import basis_keys, key_name
    from rho_model.descriptors import DescriptorSpec, LambdaSoap
    from rho_model.model import build_model
    from rho_model.options import DEFAULTS

    basis = AuxiliaryBasis.from_counts(BASIS)
    keys = basis_keys(basis)
    spec = DescriptorSpec.from_options(DEFAULTS["descriptor"], keys, [atomic_number(s) for s in basis.symbols])
    sizes = LambdaSoap(spec).sizes
    config = {
        "keys": [list(k) for k in keys],
        "basis": BASIS,
        "descriptor": spec.hypers(),
        "feature_sizes": {key_name(k): v for k, v in sizes.items()},
        "input_sizes": {key_name(k): v for k, v in sizes.items()},
        "out_sizes": {key_name(k): basis[k[1]].n_radial[k[0]] for k in keys},
        "project": False,
        "whiten_out": False,
        "model": dict(DEFAULTS["model"]),
        "net_source": None,
        "dtype": "float64",
        "device": "cpu",
        "dataset_id": "",
    }
    return build_model(config)


def peak_rss_mib() -> float:
    """Peak resident memory of this process image (VmHWM).

    Not ``ru_maxrss``: Linux keeps that across ``exec``, so a child started by a large parent
    would report the parent's peak.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one_size(n_molecules: int, max_atoms: int, repeats: int) -> dict:
    """Best of ``repeats`` timings (the machine is shared); descriptors alone are consumed piece
    by piece as the predictor does, so neither step holds all features at once."""
    from rho_model.predict import Predictor

    predictor = Predictor(model(), max_atoms=max_atoms)
    atoms = water_cluster(n_molecules)
    predictor.predict([water_cluster(1)])  # warm-up
    t_desc, t_pred = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _rows, _feats in predictor.calc.iter_compute([atoms], max_atoms):
            pass
        t_desc.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        coefs = predictor.predict([atoms])[0]
        t_pred.append(time.perf_counter() - t0)
    return {
        "atoms": len(atoms),
        "descriptor_s": min(t_desc),
        "predict_s": min(t_pred),
        "n_coefficients": int(coefs.size),
        "peak_rss_mib": peak_rss_mib(),
    }


def batch_of_monomers(n: int) -> dict:
    from rho_model.predict import Predictor

    predictor = Predictor(model())
    frames = [water_cluster(1, seed=i) for i in range(n)]
    predictor.calc.compute(frames[:2])
    t0 = time.perf_counter()
    predictor.calc.compute(frames)
    return {"monomers": n, "descriptor_ms_per_structure": 1e3 * (time.perf_counter() - t0) / n}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="*", default=[1, 10, 100, 1000])
    parser.add_argument("--max-atoms", type=int, default=500, help="atoms per featomic call (descriptor.max_atoms)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--one", type=int, default=None)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one_size(args.one, args.max_atoms, args.repeats)))
        return
    print(json.dumps(batch_of_monomers(100)))
    print(f"max_atoms {args.max_atoms}, best of {args.repeats}")
    print("| atoms | descriptors (s) | prediction incl. descriptors (s) | prediction per atom (ms) | peak RSS (MiB) |")
    print("|---|---|---|---|---|")
    for n in args.sizes:
        cmd = [sys.executable, __file__, "--one", str(n), "--max-atoms", str(args.max_atoms), "--repeats", str(args.repeats)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"| {r['atoms']} | {r['descriptor_s']:.3f} | {r['predict_s']:.3f} | {1e3 * r['predict_s'] / r['atoms']:.2f} "
            f"| {r['peak_rss_mib']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
