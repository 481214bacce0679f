"""Geometries for the learning-curve benchmark (input to `pyscf-io run`).

Usage: python benchmarks/make_geometries.py OUT_DIR [--water 120] [--organic 60] [--medium 0] [--seed 0]
- water.xyz: monomers with O-H bond lengths 0.957 +- 0.03 A (normal, sd 0.03, clipped to 2 sd),
  H-O-H angle 104.5 +- 5 deg (sd 5, clipped to 2 sd), random orientation.
- organic.xyz: the ten ASE g2 molecules in ORGANIC (elements H, C, N, O), cycled, each copy with
  Gaussian displacements (sd 0.04 A per coordinate, clipped at 0.1 A) and a random orientation.
- medium.xyz (only with --medium N): the same for the ten 10-22-atom molecules in MEDIUM (ASE g2 and
  its extras: aromatics, amines, ethers, alkanes, biphenyl).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def waters(n: int, rng: np.random.Generator):
    import ase

    out = []
    for _ in range(n):
        r1, r2 = 0.957 + np.clip(rng.normal(scale=0.03, size=2), -0.06, 0.06)
        theta = np.deg2rad(104.5 + np.clip(rng.normal(scale=5.0), -10, 10))
        pos = np.array([[0.0, 0.0, 0.0], [r1, 0.0, 0.0], [r2 * np.cos(theta), r2 * np.sin(theta), 0.0]])
        pos = (pos - pos.mean(axis=0)) @ random_rotation(rng).T
        out.append(ase.Atoms("OHH", positions=pos))
    return out


# small g2 molecules of H, C, N, O: each appears n / len(ORGANIC) times, as perturbed conformers
ORGANIC = ["CH3OH", "HCOOH", "H2CO", "CH4", "NH3", "HCN", "H3CNH2", "C2H4", "H2O", "CH3CN"]


# 10-22-atom molecules of H, C, N, O (closed shell), for the medium set
MEDIUM = [
    "C6H6",
    "C5H5N",
    "C4H4NH",
    "CH3COCH3",
    "CH3CH2OCH3",
    "trans-butane",
    "C3H9N",
    "C7NH5",
    "BDA",
    "biphenyl",
]


def organics(n: int, rng: np.random.Generator, names: list[str] = ORGANIC):
    from ase.build import molecule

    out = []
    for i in range(n):
        m = molecule(names[i % len(names)])
        pos = m.positions + np.clip(rng.normal(scale=0.04, size=m.positions.shape), -0.1, 0.1)
        m.positions = (pos - pos.mean(axis=0)) @ random_rotation(rng).T
        m.info = {"name": names[i % len(names)]}
        out.append(m)
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out", type=Path)
    p.add_argument("--water", type=int, default=120)
    p.add_argument("--organic", type=int, default=60)
    p.add_argument("--medium", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    import ase.io

    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    ase.io.write(args.out / "water.xyz", waters(args.water, rng))
    orgs = organics(args.organic, rng)
    ase.io.write(args.out / "organic.xyz", orgs)
    elements = sorted({s for m in orgs for s in m.get_chemical_symbols()})
    print(f"{args.water} waters, {len(orgs)} organics ({len({m.info['name'] for m in orgs})} molecules, elements {elements})")
    if args.medium:
        ase.io.write(args.out / "medium.xyz", organics(args.medium, rng, MEDIUM))
        print(f"{args.medium} medium molecules ({len(MEDIUM)} kinds, 10-22 atoms)")


if __name__ == "__main__":
    main()
