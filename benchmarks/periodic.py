"""Periodic densities end to end: learning curves on small cells, transfer to a supercell, DFT vs prediction time.

    OMP_NUM_THREADS=1 python benchmarks/periodic.py --workdir DIR [--workers 2] [--sizes 10 20 40]
        [--test 10] [--val 5] [--kmesh 2 2 2] [--two-d-sizes 5 10 20] [--two-d-test 5] [--two-d-val 3]
        [--skip-2d] [--skip-supercell]

Everything runs through the command-line tools with pyscf-io's defaults for cells (gth-pbe
pseudopotentials, gth-dzvp, even-tempered auxiliary basis, overlap-metric fit on the SCF's uniform
mesh, GDF SCF); the silicon cells at the Gamma point take 0.1 eV of Fermi-Dirac smearing (their HOMO
and LUMO meet at Gamma) and the faster multigrid SCF, silicane a 2x2x1 k-mesh. Every stage
resumes after a kill (pyscf-io's work directories; files already made are kept):

1. Datasets. Bulk silicon: 8-atom cubic diamond cells, lattice constant 5.43 A times (1 + e)
   with e uniform in [-3 %, +3 %], a random symmetric strain of up to 1 %, atoms rattled by a
   Gaussian of 0.07 A, on a ``--kmesh`` k-mesh (default 2x2x2: the Brillouin-zone sampling of
   the supercell of step 3 at the Gamma point, so that the transfer compares like with like). 2D: silicane (hydrogenated silicene, Si2H2 primitive cells, pbc T T F,
   12 A of vacuum, 2x2x1 k-mesh), lattice constant 3.89 A times (1 + e), e in [-2 %, +2 %], a
   1 % in-plane strain, rattled by 0.05 A.
2. Learning curves: packages/rho-model/benchmarks/learning_curve.py on each dataset (the last
   --test structures of a seeded shuffle held out, alpha chosen on --val structures), %NMAE per
   cell against the RI and the SCF density on the cell's uniform grid.
3. Transfer: a model trained on the largest training set of Si8 cells (rho-train train, the same
   split) predicts a 2x2x2 supercell (64 atoms) of a new rattled, strained cell; rho-eval compares
   it with the supercell's own DFT; the same model's test error on the small cells (rho-eval, same
   run) is the yardstick.
4. The supercell's DFT time (SCF + fit, from its dataset) against the time of predicting it:
   `rho-train predict` as a process, and one call on a loaded model (rho_model.load).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.io import write
from run_all import cli

ROOT = Path(__file__).resolve().parents[1]
#: pyscf-io settings of the silicon cells: smearing (at Gamma their HOMO and LUMO meet) and the faster
#: multigrid SCF (opt-in; see pyscf-io's README for the one cell where it failed).
SILICON = ("cell_smearing_ev=0.1", "cell_scf=multigrid")
LEARNING_CURVE = ROOT / "packages/rho-model/benchmarks/learning_curve.py"


def strained(atoms: Atoms, rng: np.random.Generator, scale: float, shear: float, rattle: float, planar: bool) -> Atoms:
    """``atoms`` scaled by ``scale``, sheared by a random symmetric strain of up to ``shear``, rattled."""
    out = atoms.copy()
    strain = rng.uniform(-shear, shear, (3, 3))
    strain = 0.5 * (strain + strain.T)
    if planar:  # keep the vacuum direction out of the strain
        strain[2, :] = strain[:, 2] = 0.0
        deform = np.diag([scale, scale, 1.0]) + strain
    else:
        deform = scale * np.eye(3) + strain
    out.set_cell(np.asarray(out.cell[:]) @ deform, scale_atoms=True)
    out.positions += rng.normal(scale=rattle, size=out.positions.shape)
    return out


def silicon_cells(n: int, seed: int, repeat: int = 1) -> list[Atoms]:
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n):
        cell = bulk("Si", "diamond", a=5.43, cubic=True).repeat(repeat)
        frame = strained(cell, rng, 1 + rng.uniform(-0.03, 0.03), 0.01, 0.07, planar=False)
        frame.info = {"label": f"si{len(frame)}-{seed}-{k}"}
        frames.append(frame)
    return frames


def silicane_cells(n: int, seed: int) -> list[Atoms]:
    """Hydrogenated silicene (Si2H2, buckled, one H per Si outwards), pbc T T F, 12 A of vacuum."""
    rng = np.random.default_rng(seed)
    a, buckling, bond, vacuum = 3.89, 0.72, 1.50, 12.0
    z = vacuum / 2
    unit = Atoms(
        "Si2H2",
        positions=[(0, 0, z), (0, a / np.sqrt(3), z + buckling), (0, 0, z - bond), (0, a / np.sqrt(3), z + buckling + bond)],
        cell=[(a, 0, 0), (-a / 2, a * np.sqrt(3) / 2, 0), (0, 0, vacuum + buckling)],
        pbc=(True, True, False),
    )
    frames = []
    for k in range(n):
        frame = strained(unit, rng, 1 + rng.uniform(-0.02, 0.02), 0.01, 0.05, planar=True)
        frame.pbc = (True, True, False)
        frame.info = {"label": f"silicane-{k}"}
        frames.append(frame)
    return frames


def dataset(work: Path, name: str, frames: list[Atoms], workers: int, *settings: str) -> tuple[Path, float]:
    """``pyscf-io run`` on ``frames`` (resumed when its work directory exists); the dataset and the wall time."""
    xyz, h5 = work / f"{name}.xyz", work / f"{name}.h5"
    if not xyz.exists():
        write(xyz, frames, format="extxyz")
    start = time.perf_counter()
    if not h5.exists():
        cli("pyscf-io", "run", xyz.name, "-o", h5.name, "--workers", workers, *(f"--set={x}" for x in settings), cwd=work)
    return h5, time.perf_counter() - start


def without_wrong_states(h5: Path, factor: float = 5.0) -> tuple[Path, list[str]]:
    """``h5`` without the structures whose fit floor is above ``factor`` x the dataset's median: an SCF
    converged to a wrong state (pyscf-io's README: one multigrid Si8 cell 2 Ha too low, a 5 % floor).
    The copy is ``NAME-clean.h5`` (made once); the dropped structures are returned for the table."""
    from rho_data import create_dataset, open_dataset

    out = h5.with_name(h5.stem + "-clean.h5")
    with open_dataset(h5) as ds:
        floors = ds.metadata_column("fit_nmae_percent")
        median = float(np.median(floors))
        bad = [i for i, f in enumerate(floors) if f > factor * median]
        notes = [f"{ds.labels()[i]} (fit floor {floors[i]:.2f} % against the median {median:.3f} %)" for i in bad]
        if not bad:
            return h5, []
        if not out.exists():
            first = ds[0]
            tmp = out.with_name(out.name + ".tmp")
            writer = create_dataset(
                tmp,
                ds.basis,
                ds.provenance,
                target=ds.target,
                metadata=list(first.metadata),
                extras=sorted(first.extras),
                overwrite=True,
            )
            for i in range(len(ds)):
                if i not in bad:
                    writer.append(ds[i])
            writer.close()
            tmp.rename(out)
    return out, notes


def learning_curve(h5: Path, sizes: list[int], test: int, val: int) -> str:
    out = cli(sys.executable, LEARNING_CURVE, h5, "--sizes", *sizes, "--test", test, "--val", val, "--no-full", cwd=h5.parent)
    return out[out.index(f"\n{h5.name}") + 1 :].rstrip() if f"\n{h5.name}" in out else out.rstrip()


def split_like_learning_curve(n: int, test: int, val: int, size: int, seed: int = 0) -> dict[str, list[int]]:
    """The split learning_curve.py uses: a seeded shuffle, the last ``test`` held out, ``val`` before them."""
    order = np.random.default_rng(seed).permutation(n).tolist()
    pool = order[:-test]
    return {"test": order[-test:], "val": pool[len(pool) - val :], "train": pool[: len(pool) - val][:size]}


def write_indices(path: Path, dataset_id: str, indices: list[int]) -> None:
    path.write_text(f"# dataset_id: {dataset_id}\n" + "".join(f"{i}\n" for i in indices))


def evaluate(work: Path, model: Path, data: Path, name: str, indices: Path | None = None) -> dict:
    """rho-train predict + rho-eval of ``data`` (optionally a subset); the summary and the predict wall time."""
    predictions = work / f"{name}-predictions.h5"
    args = ["rho-train", "predict", model, data, "-o", predictions, "--overwrite"]
    if indices is not None:
        args += ["--indices", indices]
    start = time.perf_counter()
    cli(*args, cwd=work)
    predict_s = time.perf_counter() - start
    report = work / f"{name}-report"
    if not (report / "summary.json").exists():  # a finished report is kept (the stage resumes)
        cli("rho-eval", predictions, "--reference", data, "-o", report, cwd=work)
    summary = json.loads((report / "summary.json").read_text())
    return {"summary": summary, "predict_process_s": predict_s}


def mean_nmae(summary: dict, against: str) -> float:
    return float(summary["metrics"][f"nmae_{against}_percent"]["mean"])


def transfer(work: Path, small: Path, sizes: list[int], test: int, val: int, workers: int, name: str) -> list[str]:
    """Train on the small cells (``name``: their dataset's name), predict the Si64 supercell at Gamma."""
    from rho_data import open_dataset

    big_frames = silicon_cells(1, seed=7, repeat=2)
    big, _ = dataset(work, "si64", big_frames, workers, *SILICON)
    with open_dataset(small) as ds:
        n, dataset_id = len(ds), ds.dataset_id
    split = split_like_learning_curve(n, test, val, max(sizes))
    for part, indices in split.items():
        write_indices(work / f"{name}-{part}.idx", dataset_id, indices)
    run = work / f"{name}-model"
    if not (run / "model.pt").exists():
        cli(
            "rho-train", "train", small, "-o", run, "--overwrite",
            "--set", f"data.train={name}-train.idx", "--set", f"data.val={name}-val.idx", "--set", f"data.test={name}-test.idx",
            cwd=work,
        )  # fmt: skip
    small_eval = evaluate(work, run / "model.pt", small, f"{name}-test", work / f"{name}-test.idx")
    big_eval = evaluate(work, run / "model.pt", big, f"si64-from-{name}")
    with open_dataset(big) as ds:
        s = ds[0]
        dft_s = s.metadata["time_scf_s"] + s.metadata["time_fit_s"]
        atoms = s.to_ase()
    import rho_model

    loaded = rho_model.load(run / "model.pt")
    loaded.predict(atoms)  # warm-up
    start = time.perf_counter()
    loaded.predict(atoms)
    in_process_s = time.perf_counter() - start
    rows = [
        f"Transfer (model: {len(split['train'])} Si8 cells ({name}), alpha on {val} more; Si64 at the Gamma point;"
        " rho-eval, %NMAE per cell):",
        "",
        "| structures | atoms per cell | %NMAE vs RI | %NMAE vs SCF | ratio to the small-cell test error (vs RI) |",
        "|---|---|---|---|---|",
    ]
    small_ri = mean_nmae(small_eval["summary"], "ri")
    for label, ev, atoms_per in ((f"{test} test Si8 cells", small_eval, 8), ("Si64 (2x2x2 supercell)", big_eval, 64)):
        ri, scf = mean_nmae(ev["summary"], "ri"), mean_nmae(ev["summary"], "scf")
        rows.append(f"| {label} | {atoms_per} | {ri:.3f} | {scf:.3f} | {ri / small_ri:.2f} |")
    rows += [
        "",
        "| Si64 supercell | seconds |",
        "|---|---|",
        f"| DFT (pyscf-io SCF + fit, 1 worker) | {dft_s:.1f} |",
        f"| rho-train predict as a process (start-up, model load, descriptors, write) | {big_eval['predict_process_s']:.1f} |",
        f"| one call on a loaded model (rho_model.load(...).predict) | {in_process_s:.3f} |",
        f"| speed-up (DFT / in-process call) | {dft_s / in_process_s:,.0f}x |",
    ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10, 20, 40])
    parser.add_argument("--test", type=int, default=10)
    parser.add_argument("--val", type=int, default=5)
    parser.add_argument("--kmesh", type=int, nargs=3, default=[2, 2, 2], help="k-mesh of the Si8 cells")
    parser.add_argument("--two-d-sizes", type=int, nargs="*", default=[5, 10, 20], help="training sizes of the 2D set")
    parser.add_argument("--two-d-test", type=int, default=5)
    parser.add_argument("--two-d-val", type=int, default=3)
    parser.add_argument("--skip-2d", action="store_true")
    parser.add_argument("--skip-supercell", action="store_true")
    args = parser.parse_args()
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    os.environ["OMP_NUM_THREADS"] = "1"
    load = os.getloadavg()[0]
    n = max(args.sizes) + args.test + args.val
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, no GPU; "
        f"load average {load:.1f} at the start; pyscf-io with {args.workers} workers.",
        "",
    ]
    kmesh = "x".join(map(str, args.kmesh))
    name = "si8" if args.kmesh == [1, 1, 1] else f"si8-k{''.join(map(str, args.kmesh))}"
    si8, t_si8 = dataset(work, name, silicon_cells(n, seed=0), args.workers, *SILICON, f"kmesh={args.kmesh}")
    si8, dropped = without_wrong_states(si8)
    lines += [f"Si8: {n} cells, {kmesh} k-mesh, pyscf-io run {t_si8:.0f} s (0 when resumed from a finished dataset)"]
    lines += [f"left out (SCF in a wrong state): {', '.join(dropped)}" for _ in dropped[:1]]
    lines += ["", learning_curve(si8, args.sizes, args.test, args.val), ""]
    if not args.skip_2d:
        n2d = max(args.two_d_sizes) + args.two_d_test + args.two_d_val
        two_d, t_2d = dataset(work, "silicane", silicane_cells(n2d, seed=1), args.workers, "kmesh=[2, 2, 1]")
        lines += [f"Silicane Si2H2 (2D, pbc T T F, 2x2x1 k-mesh): {n2d} cells, pyscf-io run {t_2d:.0f} s", "",
                  learning_curve(two_d, args.two_d_sizes, args.two_d_test, args.two_d_val), ""]  # fmt: skip
    if not args.skip_supercell:
        lines += transfer(work, si8, args.sizes, args.test, args.val, args.workers, name)
    print("\n".join(lines))


if __name__ == "__main__":
    try:
        main()
    except subprocess.CalledProcessError as err:
        sys.exit(f"periodic: {err}")
