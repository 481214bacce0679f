"""pyscf-io benchmarks (numbers in the package README).

1. Fit floor per auxiliary basis: %NMAE of the RI density against the SCF density for water,
   PBE/def2-SVP, grid level 3, with the number of aux functions, the metric's condition and
   the fit time.
2. Fit floor per auxiliary basis of a periodic cell: a rattled 8-atom cubic silicon cell, PBE,
   gth-pbe/gth-dzvp at the Gamma point (pyscf-io's cell defaults), overlap metric, projections on
   the uniform grid or from the analytic three-centre overlaps.
3. Throughput: structures per minute of `pyscf-io run --workers 2` (end to end, including
   process start and the merge) for jiggled waters and for a 20-atom molecule (n-hexane).

    python benchmarks/benchmark.py            # both
    python benchmarks/benchmark.py --fit-only
    python benchmarks/benchmark.py --cells     # the cell table only
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

from pyscf_io.compute import compute_structure
from pyscf_io.config import load_settings
from pyscf_io.context import RunContext
from pyscf_io.fit import function_integrals
from pyscf_io.geometry import InputStructure
from pyscf_io.run_kind import resolve_run_kind
from rho_data.orbital_fields import nmae_normalisation

WATER = ((8, (0.0, 0.0, 0.1173)), (1, (0.0, 0.7572, -0.4692)), (1, (0.0, -0.7572, -0.4692)))


def hexane() -> list[tuple[str, tuple[float, float, float]]]:
    """n-hexane, C6H14 (20 atoms): an all-anti zigzag chain with tetrahedral hydrogens."""
    atoms = []
    for i in range(6):
        s = 1 if i % 2 == 0 else -1
        c = np.array([1.2576 * i, 0.4288 * s, 0.0])
        atoms.append(("C", tuple(c)))
        for z in (0.8870, -0.8870):
            atoms.append(("H", tuple(c + np.array([0.0, 0.5132 * s, z]))))
        if i in (0, 5):
            atoms.append(("H", tuple(c + np.array([-1.0275 if i == 0 else 1.0275, -0.3632 * s, 0.0]))))
    return atoms


def xyz(frames) -> str:
    out = []
    for label, atoms in frames:
        out += [str(len(atoms)), f'label="{label}"'] + [f"{s} {x:.6f} {y:.6f} {z:.6f}" for s, (x, y, z) in atoms]
    return "\n".join(out) + "\n"


def fit_table() -> None:
    water = InputStructure("bench", 0, "water", tuple(z for z, _ in WATER), tuple(p for _, p in WATER))
    rows = [
        ("def2-universal-jkfit", None, "coulomb"),
        ("def2-universal-jkfit", None, "overlap"),
        ("etb", 2.0, "coulomb"),
        ("etb", 1.8, "coulomb"),
        ("etb", 1.6, "coulomb"),
        ("etb", 1.6, "overlap"),
        ("etb", 1.4, "coulomb"),
    ]
    print(
        "| aux basis | metric | aux functions | %NMAE vs SCF | N_fit - 10 | metric condition | dropped | fit time (s) | structure time (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for aux, beta, metric in rows:
        overrides = {"aux_basis": aux, "fit_metric": metric}
        if beta is not None:
            overrides["etb_beta"] = beta
        ctx = RunContext.build(load_settings(overrides=overrides), {1, 8})
        compute_structure(water, ctx)  # warm-up (basis parsing, libxc)
        t0 = time.perf_counter()
        s = compute_structure(water, ctx)
        total = time.perf_counter() - t0
        m = s.metadata
        name = f"etb beta={beta}" if beta else aux
        print(
            f"| {name} | {metric} | {len(s.coefficients)} | {m['fit_nmae_percent']:.3f} | {m['n_electrons_fit'] - 10:+.1e} | "
            f"{m['fit_condition']:.1e} | {int(m['fit_dropped'])} | {m['time_fit_s']:.3f} | {total:.2f} |"
        )


def silicon_cell(seed: int = 0) -> InputStructure:
    """The 8-atom cubic diamond cell of silicon (a = 5.43 A), atoms rattled by a Gaussian of 0.07 A."""
    from ase.build import bulk

    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.positions += np.random.default_rng(seed).normal(scale=0.07, size=atoms.positions.shape)
    lattice = tuple(tuple(float(x) for x in v) for v in atoms.cell[:])
    positions = tuple(tuple(float(x) for x in p) for p in atoms.positions)
    return InputStructure(
        "bench", 0, "si8", tuple(int(z) for z in atoms.numbers), positions, cell=lattice, pbc=(True, True, True)
    )


def cell_fit_table() -> None:
    """One multigrid SCF of the cell (pyscf-io's cell settings, 0.1 eV smearing), then the fit per auxiliary basis."""
    from pyscf_io.cell import make_auxcell, make_cell
    from pyscf_io.cell_compute import fit_cell, run_cell_scf

    si8 = silicon_cell()
    base = load_settings(overrides={"cell_smearing_ev": 0.1, "cell_scf": "multigrid"})
    resolve_run_kind(base, [si8])
    ao = RunContext.build(base, {14}, periodic=True).ao
    cell = make_cell(si8.numbers, si8.positions_array, si8.cell_array, si8.pbc, ao, base["pseudo"])
    t0 = time.perf_counter()
    mf, kpts = run_cell_scf(cell, base)
    print(
        f"SCF ({base['cell_scf']}, {mf.cycles} cycles, converged {mf.converged}): {time.perf_counter() - t0:.1f} s, mesh {[int(n) for n in cell.mesh]}\n"
    )
    dm = np.asarray(mf.make_rdm1())
    rows = [
        ("weigend", None, "grid"),
        ("etb", 2.0, "grid"),
        ("etb", 1.8, "grid"),
        ("etb", 1.6, "grid"),
        ("etb", 1.6, "analytic"),
        ("etb", 1.4, "grid"),
    ]
    print("| aux basis | w integrals | aux functions | %NMAE vs SCF | N_fit - 32 | metric condition | dropped | fit (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for aux, beta, integrals in rows:
        settings = {**base, "aux_basis": aux, "cell_fit_integrals": integrals, "etb_beta": beta or 1.6}
        auxcell = make_auxcell(cell, RunContext.build(settings, {14}, periodic=True).aux)
        fit, _ = fit_cell(cell, auxcell, dm, kpts, settings, nmae_normalisation("density"))
        n_fit = float(fit.coeffs[0] @ function_integrals(auxcell))
        name = f"etb beta={beta}" if beta else aux
        print(
            f"| {name} | {integrals} | {auxcell.nao_nr()} | {fit.errors[0]['nmae_percent']:.3f} | {n_fit - 32:+.1e} | "
            f"{fit.info.condition:.1e} | {fit.info.dropped} | {fit.time_fit:.1f} |"
        )


def throughput(name: str, frames, workers: int = 2) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        geometry = Path(tmp) / "in.xyz"
        geometry.write_text(xyz(frames))
        cmd = [
            sys.executable,
            "-m",
            "pyscf_io",
            "run",
            str(geometry),
            "-o",
            str(Path(tmp) / "out.h5"),
            "--workers",
            str(workers),
            "-q",
        ]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
    print(f"| {name} | {len(frames)} | {workers} | {wall:.1f} | {60 * len(frames) / wall:.1f} |")


def jiggle(atoms, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [(f"s{k}", [(s, tuple(np.array(p) + rng.normal(scale=0.02, size=3))) for s, p in atoms]) for k in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fit-only", action="store_true")
    parser.add_argument("--cells", action="store_true", help="only the fit floor of a periodic cell")
    args = parser.parse_args()
    if args.cells:
        print(
            f"## fit floor of a cell (Si8, PBE, gth-pbe/gth-dzvp, Gamma, overlap metric, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']})\n"
        )
        cell_fit_table()
        return
    print(f"## fit floor (water, PBE/def2-SVP, grid level 3, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']})\n")
    fit_table()
    if args.fit_only:
        return
    print("\n## throughput (defaults: PBE/def2-SVP, etb beta 1.6, Coulomb metric)\n")
    print("| structures | count | workers | wall (s) | structures / min |")
    print("|---|---|---|---|---|")
    throughput("water (3 atoms)", jiggle([("O", p) if z == 8 else ("H", p) for z, p in WATER], 40))
    throughput("n-hexane (20 atoms)", jiggle(hexane(), 4))


if __name__ == "__main__":
    main()
