"""Write a set of small molecules with varied geometries (the quickstart's input).

Molecules from ASE's built-in G2 collection, each as several conformers: every atom displaced
by a Gaussian of ``--sigma`` Angstrom (default 0.05, about the zero-point motion of bonds to
H), then rotated at random. Elements H, C, N, O. Open-shell molecules (``--molecules OH NH2``)
carry their 2S as the extxyz info key ``spin``, which pyscf-io reads.

    python examples/make_molecules.py -o molecules.xyz [--conformers 9] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from ase.build import molecule
from ase.io import write
from scipy.spatial.transform import Rotation

MOLECULES = ["H2O", "NH3", "CH4", "HCN", "H2CO", "CH3OH", "C2H2", "H3CNH2"]


def conformers(name: str, count: int, sigma: float, rng: np.random.Generator):
    base = molecule(name)
    for k in range(count):
        atoms = base.copy()
        atoms.positions += rng.normal(scale=sigma, size=atoms.positions.shape)
        centre = atoms.positions.mean(axis=0)
        atoms.positions = Rotation.random(random_state=rng).apply(atoms.positions - centre)
        spin = int(round(base.get_initial_magnetic_moments().sum()))  # 2S of radicals and triplets (OH, CH2_s3B1d)
        atoms.set_initial_magnetic_moments(None)
        atoms.info = {"name": f"{name}-{k}", **({"spin": spin} if spin else {})}
        yield atoms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", type=Path, default=Path("molecules.xyz"))
    parser.add_argument("--conformers", type=int, default=9)
    parser.add_argument("--sigma", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--molecules", nargs="+", default=MOLECULES)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    structures = [a for name in args.molecules for a in conformers(name, args.conformers, args.sigma, rng)]
    write(args.output, structures, format="extxyz")
    print(f"{args.output}: {len(structures)} structures of {len(args.molecules)} molecules")


if __name__ == "__main__":
    main()
