"""How well does PySCF's DFT grid reproduce the coefficient-space squared error, per grid level?

For predictions d_ML of a pyscf-io dataset, rho-eval computes integral (rho_ML - rho_RI)^2 twice:
on the backend's grid and as (d_ML - d_RI)^T S (d_ML - d_RI). Their relative difference is the
grid's quadrature error alone (no SCF density is involved). This script measures it at grid
levels 1..5 for three kinds of prediction error, on a few structures:

- ``noise``: d_RI + N(0, 1e-3) on every coefficient;
- ``conformer``: the RI coefficients of another conformer of the same molecule (a model-like error);
- ``scaled``: 1.02 d_RI (errors as large in the core as in the valence).

    python benchmarks/grid_consistency.py --reference /work/data/organic.h5 --indices 0 2 3 9 --partner 10

Without --reference it writes the quickstart's molecules (examples/make_molecules.py, 2
conformers of each) and runs ``pyscf-io run`` on them in a temporary folder first.
Prints a table of the largest relative difference per level and kind (JSON with --json).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rho_data import open_dataset
from rho_data.field_builders import FieldRequest

from rho_eval.metrics import coefficient_error_scale, consistency_difference

ROOT = Path(__file__).resolve().parents[3]


def make_reference(folder: Path) -> Path:
    bin_dir = Path(sys.executable).parent
    xyz, data = folder / "molecules.xyz", folder / "data.h5"
    subprocess.run([sys.executable, str(ROOT / "examples" / "make_molecules.py"), "-o", str(xyz), "--conformers", "2"], check=True)
    subprocess.run([str(bin_dir / "pyscf-io"), "run", str(xyz), "-o", str(data)], check=True)
    return data


def measure(reference: Path, indices: list[int], partner: int, levels: list[int]) -> list[dict]:
    from pyscf_io.fields import PyscfFieldBuilder

    rows = []
    rng = np.random.default_rng(0)
    with open_dataset(reference) as ds:
        for index in indices:
            s = ds[index]
            other = ds[index + partner] if 0 <= index + partner < len(ds) else None
            predictions = {"noise": s.coefficients + rng.normal(scale=1e-3, size=s.coefficients.shape), "scaled": 1.02 * s.coefficients}
            if other is not None and np.array_equal(other.numbers, s.numbers):
                predictions["conformer"] = other.coefficients
            for level in levels:
                start = time.perf_counter()
                request = FieldRequest(index=index, coefficients={"ri": s.coefficients, **predictions})
                [(_, grid)] = list(PyscfFieldBuilder(grid_level=level).build(ds, [request]))
                for kind, d in predictions.items():
                    diff = grid.values[kind] - grid.values["ri"]
                    on_grid = float(grid.weights @ diff**2)
                    coef = s.overlap.quadratic(d - s.coefficients)
                    scale = coefficient_error_scale(s.overlap, d, s.coefficients)
                    rows.append(
                        {
                            "index": index,
                            "label": s.label,
                            "level": level,
                            "kind": kind,
                            "n_points": len(grid.weights),
                            "grid": on_grid,
                            "coef": coef,
                            "rel_diff": abs(on_grid - coef) / max(abs(on_grid), abs(coef)),
                            "checked": consistency_difference(on_grid, coef, scale),
                            "seconds": time.perf_counter() - start,
                        }
                    )
                print(f"structure {index} ({s.label}) level {level}: {len(grid.weights)} points", file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, default=None)
    parser.add_argument("--indices", type=int, nargs="+", default=[0, 2, 4, 6])
    parser.add_argument("--partner", type=int, default=1, help="offset of the conformer used as the 'conformer' prediction")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        reference = args.reference or make_reference(Path(tmp))
        rows = measure(reference, args.indices, args.partner, args.levels)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    kinds = sorted({r["kind"] for r in rows})
    print(f"largest |grid - coef| / max(grid, coef) and, checked by rho-eval, / (|dc|^T |S| |dc|), over structures {args.indices} of {reference}")
    print("level  points(mean)  " + "  ".join(f"{k + ' rel':>14}  {k + ' checked':>18}" for k in kinds))
    for level in args.levels:
        at = [r for r in rows if r["level"] == level]
        worst = [(max(r["rel_diff"] for r in at if r["kind"] == k), max(r["checked"] for r in at if r["kind"] == k)) for k in kinds]
        points = np.mean([r["n_points"] for r in at])
        print(f"{level:>5}  {points:>12.0f}  " + "  ".join(f"{a:>14.2e}  {b:>18.2e}" for a, b in worst))


if __name__ == "__main__":
    main()
