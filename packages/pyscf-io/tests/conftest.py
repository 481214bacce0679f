"""Shared fixtures: small molecules as geometry files, settings for fast runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]

MOLECULES = {
    "water": [("O", 0.0, 0.0, 0.1173), ("H", 0.0, 0.7572, -0.4692), ("H", 0.0, -0.7572, -0.4692)],
    "methane": [
        ("C", 0.0, 0.0, 0.0),
        ("H", 0.6291, 0.6291, 0.6291),
        ("H", -0.6291, -0.6291, 0.6291),
        ("H", -0.6291, 0.6291, -0.6291),
        ("H", 0.6291, -0.6291, -0.6291),
    ],
    "ammonia": [
        ("N", 0.0, 0.0, 0.0),
        ("H", 0.0, -0.9377, -0.3816),
        ("H", 0.8121, 0.4689, -0.3816),
        ("H", -0.8121, 0.4689, -0.3816),
    ],
    "formaldehyde": [("C", 0.0, 0.0, 0.0), ("O", 0.0, 0.0, 1.205), ("H", 0.0, 0.943, -0.587), ("H", 0.0, -0.943, -0.587)],
    "methanol": [
        ("C", -0.0467, 0.6627, 0.0),
        ("O", -0.0467, -0.7573, 0.0),
        ("H", -1.0863, 0.9757, 0.0),
        ("H", 0.4343, 1.0773, 0.8914),
        ("H", 0.4343, 1.0773, -0.8914),
        ("H", 0.8623, -1.0873, 0.0),
    ],
}


def xyz_text(atoms, label: str = "") -> str:
    lines = [str(len(atoms)), f'label="{label}"' if label else ""]
    lines += [f"{s} {x:.6f} {y:.6f} {z:.6f}" for s, x, y, z in atoms]
    return "\n".join(lines) + "\n"


def write_xyz(path: Path, frames: list[tuple[str, list]]) -> Path:
    path.write_text("".join(xyz_text(atoms, label) for label, atoms in frames))
    return path


def jiggled_waters(n: int, seed: int = 0) -> list[tuple[str, list]]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        atoms = [(s, *(np.array(p) + rng.normal(scale=0.03, size=3))) for s, *p in MOLECULES["water"]]
        out.append((f"water-{k}", atoms))
    return out


@pytest.fixture
def organics_xyz(tmp_path: Path) -> Path:
    return write_xyz(tmp_path / "organics.xyz", list(MOLECULES.items()))


FAST = {"basis": "sto-3g", "aux_basis": "def2-universal-jkfit", "grid_level": 1}
