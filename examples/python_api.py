"""The Python API, notebook-style: a tiny dataset, a linear model, predictions and their layout.

    python examples/python_api.py [--output python-api-output]

1. 8 perturbed H2O / NH3 geometries, reference densities with pyscf-io (STO-3G, seconds);
2. an exact linear overlap-metric fit with ``rho-train train``;
3. ``rho_model.load(...).predict(atoms)``: the coefficients as a flat vector and as per-key blocks,
   their overlap-metric error against the reference, and a rho-data predictions file;
4. rho-eval's API: the predicted density on points and on the integration grid, and the metrics.
Every stage is skipped when its output is already there (rerun with a fresh --output to redo).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import ase.build
import ase.io
import ase.units
import numpy as np

import rho_eval
import rho_model
from rho_data import open_dataset
from rho_model.splits import read_index_file

BIN = Path(sys.executable).parent


def command(*words: object, cwd: Path) -> None:
    """Run one of the rho command lines (this environment's), stopping the example if it fails."""
    args = [str(BIN / str(words[0])), *map(str, words[1:])]
    if subprocess.run(args, cwd=cwd).returncode != 0:
        sys.exit(f"python_api: {' '.join(args)} failed")


def molecules(n_each: int = 4, seed: int = 0) -> list:
    """Rattled and rotated copies of H2O and NH3."""
    rng = np.random.default_rng(seed)
    frames = []
    for name in ("H2O", "NH3"):
        for _ in range(n_each):
            atoms = ase.build.molecule(name)
            atoms.rotate(float(rng.uniform(0, 360)), rng.normal(size=3), center="COP")
            atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
            frames.append(atoms)
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=Path("python-api-output"))
    work = parser.parse_args().output.resolve()
    work.mkdir(parents=True, exist_ok=True)

    # 1. reference data (pyscf-io, a minimal basis so that the example runs in seconds)
    if not (work / "data.h5").exists():
        ase.io.write(work / "molecules.xyz", molecules())
        command("pyscf-io", "run", "molecules.xyz", "-o", "data.h5", "--basis", "sto-3g", "--workers", "1", "-q", cwd=work)

    # 2. an exact linear fit (6 train, 1 validation, 1 test structure)
    if not (work / "run" / "model.pt").exists():
        fit = ["--set", "fit.alpha=1.0e-6", "--set", "descriptor.max_radial=4"]
        command("rho-train", "train", "data.h5", "-o", "run", *fit, cwd=work)

    # 3. the Python API
    model = rho_model.load(work / "run" / "model.pt")
    with open_dataset(work / "data.h5") as ds:
        splits = {
            s: read_index_file(work / "run" / "splits" / f"{s}.idx", dataset_id=ds.dataset_id, n_structures=len(ds))
            for s in ("train", "test")
        }
        test = splits["test"]
        references = [ds[i] for i in test]
        dataset_id = ds.dataset_id
    predictions = []
    for index, ref in zip(test, references):
        p = model.predict(ref.to_ase())  # one ase.Atoms -> one Prediction
        predictions.append(p)
        shapes = ", ".join(f"{key} {block.shape}" for key, block in p.blocks.items())
        dc = p.coefficients - ref.coefficients
        error = np.sqrt(ref.overlap.quadratic(dc) / ref.overlap.quadratic(ref.coefficients))
        print(f"structure {index} ({ref.label}): {p.coefficients.size} coefficients; blocks (atoms, 2l+1, n): {shapes}")
        print(f"  relative overlap-metric error sqrt(dc^T S dc / c^T S c) = {100 * error:.3f} %")
    batch = model.predict([ref.to_ase() for ref in references])  # a list -> a list, same numbers
    assert all(np.allclose(a.coefficients, b.coefficients, rtol=0, atol=1e-12) for a, b in zip(batch, predictions))
    from_file = model.predict(work / "data.h5", indices=test)  # a dataset (or any ASE geometry file) -> a list
    written = model.write(work / "predictions.h5", from_file, dataset_id=dataset_id, overwrite=True)
    print(f"predictions file: {written}")

    # 4. rho-eval: the density of the predicted coefficients in real space, and the metrics
    index, p = test[0], predictions[0]
    line = p.positions[0] / ase.units.Bohr + np.linspace(-2.0, 2.0, 5)[:, None] * np.array([0.0, 0.0, 1.0])  # bohr
    rho = rho_eval.density_on_points(work / "data.h5", index, p.coefficients, line)
    print(f"density (e/bohr^3) along z through atom 0 of structure {index}: {np.array2string(rho, precision=4)}")
    grid = rho_eval.density_on_grid(work / "data.h5", index, p.coefficients)
    print(f"integration grid: {len(grid.weights)} points, {grid.integrate('pred'):.4f} electrons predicted")
    metrics = rho_eval.evaluate(work / "data.h5", index, p.coefficients, reference_indices=splits["train"])
    print(
        f"%NMAE vs RI {metrics['nmae_ri_percent']:.3f}, vs SCF {metrics['nmae_scf_percent']:.3f}; "
        f"SALTED %RMSE vs RI {metrics['rmse_coef_ri_percent']:.3f}"
    )


if __name__ == "__main__":
    main()
