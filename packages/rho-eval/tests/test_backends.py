"""rho-eval through the real backends, found by entry point (skipped where one is not installed).

pyscf-io: a tiny dataset computed with its command (STO-3G, grid level 1). aims-io: an FHI-aims
workflow run with aims-io's stand-in for aims.x (packages/aims-io/tests/standin, which replays
the recorded CH4 run of the shared fixture and writes grid files in FHI-aims layout, x y z value).
Neither package is imported here.
"""

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rho_data import Structure, create_predictions, open_dataset
from rho_data.field_builders import available_builders
from rich.console import Console

from rho_eval import Settings, evaluate_files

QUIET = Console(quiet=True)
PACKAGES = Path(__file__).resolve().parents[2]
AIMS_FIXTURE = PACKAGES.parent.parent / "shared" / "fixtures" / "fhi-aims"
if not AIMS_FIXTURE.exists():
    AIMS_FIXTURE = Path("/work/shared/fixtures/fhi-aims")
STANDIN = PACKAGES / "aims-io" / "tests" / "standin" / "aims_standin.py"
FHI_AIMS_SQUARED_ERROR = 0.2185265651976613  # FHI-aims grid integral of (rho_ML - rho_RI)^2, CH4 fixture


def need_backend(name: str) -> None:
    if name not in available_builders():
        pytest.skip(f"the {name} field builder is not installed")


def predictions(dataset: Path, out: Path, transform) -> Path:
    with open_dataset(dataset) as ds:
        writer = create_predictions(out, ds.basis, dataset_id=ds.dataset_id)
        for i in range(len(ds)):
            s = ds[i]
            writer.append(Structure(s.numbers, s.positions, label=s.label, coefficients=transform(i, s.coefficients), dataset_index=i))
        writer.close()
    return out


def rows(report: Path) -> list[dict]:
    with open(report / "metrics.csv", newline="") as fh:
        return [{k: (v if k in ("label", "formula") else float(v)) for k, v in r.items()} for r in csv.DictReader(fh)]


@pytest.fixture(scope="module")
def pyscf_dataset(tmp_path_factory) -> Path:
    need_backend("pyscf-io")
    tmp = tmp_path_factory.mktemp("pyscf")
    (tmp / "mols.xyz").write_text("3\nwater\nO 0 0 0.1173\nH 0 0.7572 -0.4692\nH 0 -0.7572 -0.4692\n2\nh2\nH 0 0 0\nH 0 0 0.74\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pyscf_io",
            "run",
            str(tmp / "mols.xyz"),
            "-o",
            str(tmp / "ds.h5"),
            "--basis",
            "sto-3g",
            "--grid-level",
            "2",
            "--metric",
            "overlap",
            "-q",
        ],
        check=True,
        env=env,
        capture_output=True,
    )
    return tmp / "ds.h5"


def test_pyscf_perfect_prediction_and_fit_only(pyscf_dataset, tmp_path):
    pred = predictions(pyscf_dataset, tmp_path / "p.h5", lambda i, d: d)
    evaluate_files(pred, pyscf_dataset, tmp_path / "r", Settings(plots=False), console=QUIET)
    evaluate_files(None, pyscf_dataset, tmp_path / "fit", Settings(plots=False, fit_only=True), console=QUIET)
    for r, f in zip(rows(tmp_path / "r"), rows(tmp_path / "fit")):
        assert r["nmae_ri_percent"] == 0.0
        # pyscf-io measured its fit error on the same DFT grid
        assert r["nmae_scf_percent"] == pytest.approx(r["stored_fit_nmae_percent"], rel=1e-8)
        assert f["nmae_scf_percent"] == pytest.approx(f["stored_fit_nmae_percent"], rel=1e-8)
        assert r["n_electrons_pred"] == pytest.approx(r["n_electrons"], abs=0.05)


def test_pyscf_grid_and_overlap_agree(pyscf_dataset, tmp_path):
    rng = np.random.default_rng(0)
    pred = predictions(pyscf_dataset, tmp_path / "p.h5", lambda i, d: d + 0.01 * rng.normal(size=d.shape))
    summary = evaluate_files(pred, pyscf_dataset, tmp_path / "r", Settings(plots=False, workers=2, chunk_size=1), console=QUIET)
    assert summary["consistency"]["ok"], summary["consistency"]
    assert all(r["squared_error_ri"] > 0 for r in rows(tmp_path / "r"))


@pytest.fixture(scope="module")
def aims_dataset(tmp_path_factory):
    need_backend("aims-io")
    ch4 = AIMS_FIXTURE / "qm7-0-CH4"
    if not (STANDIN.exists() and ch4.exists()):
        pytest.skip("the aims-io stand-in for aims.x or the FHI-aims fixture data is not available")
    tmp = tmp_path_factory.mktemp("aims")
    atoms = [line.split()[1:5] for line in (ch4 / "geometry.in").read_text().splitlines() if line.split()[:1] == ["atom"]]
    (tmp / "ch4.xyz").write_text(f"{len(atoms)}\nch4\n" + "".join(f"{a[3]} {a[0]} {a[1]} {a[2]}\n" for a in atoms))
    aims_io = str(Path(sys.executable).parent / "aims-io")
    settings = ["-s", f"dft.species_defaults={AIMS_FIXTURE / 'species_defaults' / 'tight'}", "-s", f"hpc.aims_command={sys.executable} {STANDIN}"]
    env = {**os.environ, "AIMS_STANDIN_DATA": str(ch4)}
    work = tmp / "work"
    for args in (["prepare", "scf", str(tmp / "ch4.xyz")], ["run", "scf"], ["prepare", "ri"], ["run", "ri"]):
        subprocess.run([aims_io, *args, "-w", str(work), *settings], check=True, env=env, capture_output=True)
    subprocess.run([aims_io, "import", str(work / "ri"), str(tmp / "ds.h5")], check=True, env=env, capture_output=True)
    d_ml = np.array((ch4 / "ml_coeffs.out").read_text().replace("D", "E").split(), dtype=float)
    return tmp / "ds.h5", work, d_ml


@pytest.mark.parametrize("shuffle", ["0", "1"])
def test_aims_grid_files(aims_dataset, tmp_path, monkeypatch, shuffle):
    """The squared error on the grid files reproduces FHI-aims's number; rows of the rho files
    written in another order than partition_tab.out (shuffle) give the same result."""
    dataset, work, d_ml = aims_dataset
    monkeypatch.setenv("AIMS_STANDIN_DATA", str(AIMS_FIXTURE / "qm7-0-CH4"))
    monkeypatch.setenv("AIMS_STANDIN_SHUFFLE", shuffle)
    pred = predictions(dataset, tmp_path / "p.h5", lambda i, d: d_ml)
    backend = {"work": str(tmp_path / "rebuilds"), "settings": str(work / "aims-io.yaml")}
    summary = evaluate_files(pred, dataset, tmp_path / "r", Settings(plots=False, backend=backend), console=QUIET)
    [r] = rows(tmp_path / "r")
    assert r["squared_error_ri"] == pytest.approx(FHI_AIMS_SQUARED_ERROR, rel=2e-7)
    assert r["coef_grid_rel_diff"] < 1e-10 and summary["consistency"]["ok"]
    assert r["n_grid_points"] == 798  # the stand-in's grid
