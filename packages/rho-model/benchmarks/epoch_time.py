"""Epoch time of gradient training and time of the exact fit on a few hundred small molecules.

Usage: OMP_NUM_THREADS=1 python benchmarks/epoch_time.py WORKDIR [--n 300] [--aux-basis def2-universal-jkfit]

The dataset (made once in WORKDIR, reused afterwards) holds N perturbed small molecules (H, C,
N, O; the list of make_geometries.py) with PySCF overlaps of a real auxiliary basis and
learnable synthetic coefficients (a fixed random equivariant linear map of the lambda-SOAP
features, see learnable_target): no SCF is run, the sizes and the conditioning are real. Reported: descriptor time per structure (no cache), exact fit (fixed alpha; with --cv
also a 5-fold CV over 4 alphas), seconds per epoch of gradient training (linear and deep
models, batch size 10) from the runs' log.csv.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def canonical_order(mol) -> np.ndarray:
    """PySCF AO order -> rho-data order (atom -> l -> n -> m), p functions (x, y, z) -> (y, z, x)."""
    perm = []
    for atom in range(mol.natm):
        shells = [b for b in range(mol.nbas) if mol.bas_atom(b) == atom]
        for l in sorted({mol.bas_angular(b) for b in shells}):
            for b in shells:
                if mol.bas_angular(b) != l:
                    continue
                start = mol.ao_loc[b]
                for c in range(mol.bas_nctr(b)):
                    idx = list(range(start + c * (2 * l + 1), start + (c + 1) * (2 * l + 1)))
                    perm.extend([idx[1], idx[2], idx[0]] if l == 1 else idx)
    return np.array(perm)


def radial_counts(mol) -> dict[str, list[int]]:
    counts: dict[str, list[int]] = {}
    for atom in range(mol.natm):
        sym = mol.atom_pure_symbol(atom)
        if sym in counts:
            continue
        shells = [b for b in range(mol.nbas) if mol.bas_atom(b) == atom]
        lmax = max(mol.bas_angular(b) for b in shells)
        counts[sym] = [sum(mol.bas_nctr(b) for b in shells if mol.bas_angular(b) == l) for l in range(lmax + 1)]
    return counts


def learnable_target(basis, frames, rng) -> list[np.ndarray]:
    """Coefficients as a fixed random linear map of the default lambda-SOAP features plus an
    element constant on l = 0: learnable, like real densities, so the solvers work as on real data."""
    from rho_data.elements import atomic_number
    from rho_data.layout import BatchLayout, basis_keys
    from rho_model.descriptors import DescriptorSpec, LambdaSoap
    from rho_model.options import DEFAULTS

    keys = basis_keys(basis)
    calc = LambdaSoap(DescriptorSpec.from_options(DEFAULTS["descriptor"], keys, [atomic_number(s) for s in basis.symbols]))
    weights = {k: rng.normal(size=(q, basis[k[1]].n_radial[k[0]])) / np.sqrt(q) for k, q in calc.sizes.items()}
    bias = {k: rng.normal(size=basis[k[1]].n_radial[k[0]]) for k in keys if k[0] == 0}
    out = []
    for atoms in frames:
        feats = calc.compute([atoms])
        layout = BatchLayout.build(basis, [atoms.numbers])
        blocks = {
            k: feats[k] / max(np.abs(feats[k]).max(initial=0.0), 1e-12) @ weights[k] + (bias[k] if k in bias else 0.0)
            for k in keys
        }
        out.append(0.1 * layout.to_flat(blocks))
    return out


def make_dataset(path: Path, n: int, aux_basis: str, seed: int = 0) -> Path:
    import sys

    from pyscf import gto

    from rho_data import AuxiliaryBasis, BlockSparseOverlap, Provenance, Structure, create_dataset

    sys.path.insert(0, str(Path(__file__).parent))
    from make_geometries import ORGANIC, organics

    rng = np.random.default_rng(seed)
    frames = organics(n, rng)
    probe = gto.M(atom="C 0 0 0; H 0 0 1.1; N 0 1.2 0; O 1.2 0 0", basis=aux_basis, spin=0, verbose=0)
    basis = AuxiliaryBasis.from_counts(radial_counts(probe))
    target = learnable_target(basis, frames, rng)
    w = create_dataset(
        path,
        basis,
        Provenance(
            producer="rho-model-benchmark",
            ao_basis="none",
            aux_basis=aux_basis,
            fit_metric="overlap",
            extra={"molecules": ORGANIC},
        ),
    )
    for i, atoms in enumerate(frames):
        mol = gto.M(
            atom=[(s, p) for s, p in zip(atoms.get_chemical_symbols(), atoms.positions)], basis=aux_basis, spin=None, verbose=0
        )
        mol.spin = mol.nelectron % 2
        mol.build()
        perm = canonical_order(mol)
        s = mol.intor("int1e_ovlp")[np.ix_(perm, perm)]
        d = target[i]
        ov = BlockSparseOverlap.from_dense(s, basis.atom_sizes(atoms.numbers), threshold=1e-12)
        w.append(
            Structure(
                numbers=atoms.numbers, positions=atoms.positions, label=f"m{i}", coefficients=d, projections=s @ d, overlap=ov
            )
        )
    w.close()
    return path


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("workdir", type=Path)
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--aux-basis", default="def2-universal-jkfit")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--cv", action="store_true", help="also time the 5-fold CV alpha scan (4 alphas)")
    args = p.parse_args()
    from rho_data import open_dataset
    from rho_model.model_setup import descriptor_store
    from rho_model.options import load_options
    from rho_model.train import run_training

    args.workdir.mkdir(parents=True, exist_ok=True)
    data = args.workdir / f"molecules-{args.n}.h5"
    if not data.exists():
        t0 = time.perf_counter()
        make_dataset(data, args.n, args.aux_basis)
        print(f"dataset: {args.n} structures in {time.perf_counter() - t0:.1f} s")
    with open_dataset(data) as ds:
        n_atoms = int(sum(len(ds.numbers(i)) for i in range(len(ds))))
        n_coef = int(sum(ds.basis.atom_sizes(ds.numbers(i)).sum() for i in range(len(ds))))
        opts = load_options(overrides={"descriptor": {"cache_dir": None}})
        store = descriptor_store(opts, ds)
        t0 = time.perf_counter()
        store.gather(range(len(ds)))
        t_desc = time.perf_counter() - t0
    print(f"{args.n} structures, {n_atoms} atoms, {n_coef} coefficients; basis {args.aux_basis}")
    print(f"descriptors: {1e3 * t_desc / args.n:.1f} ms per structure ({t_desc:.1f} s, max_atoms 500, no cache)")
    cache = str(args.workdir / "cache")
    base = {"descriptor": {"cache_dir": cache}, "data": {"fractions": [0.8, 0.1, 0.1]}}
    runs = {
        "exact (alpha 1e-8)": {**base, "fit": {"alpha": 1e-8}},
        "gradient, linear": {
            **base,
            "fit": {"method": "gradient"},
            "training": {"epochs": args.epochs, "batch_size": 10, "warm_start": False},
        },
        "gradient, deep": {
            **base,
            "fit": {"method": "gradient"},
            "model": {"type": "deep"},
            "training": {"epochs": args.epochs, "batch_size": 10},
        },
    }
    if args.cv:
        runs["exact (5-fold CV, 4 alphas)"] = {**base, "fit": {"alphas": [1e-9, 1e-7, 1e-5, 1e-3]}}
    print("| run | train structures | wall (s) | exact solve (s) | CG iterations | s per epoch (train) | s per epoch (val) |")
    print("|---|---|---|---|---|---|---|")
    for name, over in runs.items():
        out = args.workdir / name.split()[0] / name.replace(" ", "_").replace(",", "").replace("(", "").replace(")", "")
        t0 = time.perf_counter()
        summary = run_training(load_options(overrides=over), data, out, echo=None)
        wall = time.perf_counter() - t0
        exact = summary.get("exact", {})
        epoch_train = epoch_val = ""
        if (out / "log.csv").exists() and "gradient" in summary:
            rows = np.genfromtxt(out / "log.csv", delimiter=",", names=True)
            epoch_train, epoch_val = f"{np.min(rows['dt_train']):.2f}", f"{np.min(rows['dt_val']):.2f}"
        print(
            f"| {name} | {summary['splits']['train']} | {wall:.1f} | {exact.get('seconds', float('nan')):.2f} | "
            f"{exact.get('iterations', '')} | {epoch_train} | {epoch_val} |",
            flush=True,
        )
        (out / "benchmark.json").write_text(json.dumps({"wall_s": wall, **summary}, default=str))


if __name__ == "__main__":
    main()
