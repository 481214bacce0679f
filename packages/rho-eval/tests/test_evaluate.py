"""End-to-end evaluation with the test-only Gaussian field builder (gaussian_builder.py)."""

import csv
import functools
import json

import numpy as np
import pytest
from gaussian_builder import GaussianFieldBuilder, GridOnlyBuilder
from rho_data import open_dataset
from rich.console import Console

from rho_eval import Settings, evaluate_files

QUIET = Console(quiet=True)


def run(pred, ref, out, factory=GaussianFieldBuilder, restart=False, **settings):
    settings.setdefault("plots", False)
    return evaluate_files(pred, ref, out, Settings(**settings).validate(), factory=factory, restart=restart, console=QUIET)


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_perfect_prediction(dataset_path, make_predictions, tmp_path):
    """0 %NMAE against RI; against SCF exactly the dataset's stored fit error."""
    pred = make_predictions(lambda i, d: d)
    summary = run(pred, dataset_path, tmp_path / "report")
    rows = read_csv(tmp_path / "report" / "metrics.csv")
    assert len(rows) == 4
    with open_dataset(dataset_path) as ds:
        stored = ds.metadata_column("fit_nmae_percent")
        electrons = ds.metadata_column("n_electrons")
    for r in rows:
        i = int(r["dataset_index"])
        assert float(r["nmae_ri_percent"]) == 0.0 and float(r["squared_error_ri"]) == 0.0
        assert float(r["squared_error_coef_ri"]) == 0.0
        # the producer stored the fit error measured on its own grid
        assert float(r["nmae_scf_percent"]) == pytest.approx(stored[i], rel=1e-10)
        assert float(r["norm_scf"]) == pytest.approx(electrons[i], rel=1e-8)
        assert float(r["stored_fit_nmae_percent"]) == stored[i]
    assert summary["metrics"]["nmae_ri_percent"]["max"] == 0.0
    assert summary["metrics"]["nmae_scf_percent"]["mean"] == pytest.approx(stored.mean(), rel=1e-10)
    assert summary["elements"] == {"H": {"atoms": 7, "structures": 4}, "O": {"atoms": 4, "structures": 3}}


def test_known_perturbation_gives_expected_squared_error(dataset_path, make_predictions, tmp_path):
    """All basis functions are normalised: d_k += eps gives integral (eps phi_k)^2 = eps^2 exactly."""
    eps = {0: 0.02, 1: -0.05, 2: 0.1, 3: 0.03}
    positions = {0: 1, 1: 3, 2: 21, 3: 25}  # H s (contracted), O p, H p, O d (H2, OH, H2O, H2O2)

    def perturb(i, d):
        d[positions[i]] += eps[i]
        return d

    run(make_predictions(perturb), dataset_path, tmp_path / "r")
    for r in read_csv(tmp_path / "r" / "metrics.csv"):
        i = int(r["dataset_index"])
        assert float(r["squared_error_ri"]) == pytest.approx(eps[i] ** 2, rel=1e-8)
        assert float(r["squared_error_coef_ri"]) == pytest.approx(eps[i] ** 2, rel=1e-8)


def test_grid_and_coefficient_errors_agree(dataset_path, make_predictions, tmp_path):
    rng = np.random.default_rng(3)
    pred = make_predictions(lambda i, d: d + 0.05 * rng.normal(size=d.shape))
    summary = run(pred, dataset_path, tmp_path / "r")
    assert summary["consistency"]["ok"]
    assert summary["consistency"]["max_relative_difference"] < 1e-8
    rows = read_csv(tmp_path / "r" / "metrics.csv")
    assert all(float(r["nmae_ri_percent"]) > 0.1 for r in rows)
    # the check can fail: a wrong overlap (here: scaled) is reported as inconsistent
    assert not any(summary["notes"])


def test_inconsistent_overlap_is_reported(dataset_path, make_predictions, tmp_path):
    rng = np.random.default_rng(4)
    pred = make_predictions(lambda i, d: d + 0.05 * rng.normal(size=d.shape))
    coarse = functools.partial(GaussianFieldBuilder, spacing=0.9)  # far too coarse a grid for these Gaussians
    summary = run(pred, dataset_path, tmp_path / "r", factory=coarse)
    assert not summary["consistency"]["ok"]
    assert any("differ by up to" in n for n in summary["notes"])


def test_fit_only(dataset_path, tmp_path):
    summary = run(None, dataset_path, tmp_path / "fit", fit_only=True)
    rows = read_csv(tmp_path / "fit" / "metrics.csv")
    assert "nmae_ri_percent" not in rows[0]
    for r in rows:
        assert float(r["nmae_scf_percent"]) == pytest.approx(float(r["stored_fit_nmae_percent"]), rel=1e-10)
    assert summary["mode"] == "fit-only" and "consistency" not in summary


def test_fit_only_on_the_predicted_subset(dataset_path, make_predictions, tmp_path):
    pred = make_predictions(lambda i, d: 2 * d, indices=[3, 1])
    run(pred, dataset_path, tmp_path / "fit", fit_only=True)
    rows = read_csv(tmp_path / "fit" / "metrics.csv")
    assert [int(r["dataset_index"]) for r in rows] == [3, 1]
    assert [int(r["row"]) for r in rows] == [0, 1]


def test_scf_on_a_separate_shuffled_grid_is_matched(dataset_path, make_predictions, tmp_path):
    pred = make_predictions(lambda i, d: 1.01 * d)
    run(pred, dataset_path, tmp_path / "a")
    run(pred, dataset_path, tmp_path / "b", factory=functools.partial(GaussianFieldBuilder, scf_on_own_grid=True))
    a, b = read_csv(tmp_path / "a" / "metrics.csv"), read_csv(tmp_path / "b" / "metrics.csv")
    for ra, rb in zip(a, b):
        assert float(ra["nmae_scf_percent"]) == pytest.approx(float(rb["nmae_scf_percent"]), rel=1e-12)


def test_scf_on_another_grid_is_refused(dataset_path, make_predictions, tmp_path):
    pred = make_predictions(lambda i, d: d)
    with pytest.raises(ValueError, match=r"structure 0: the grids hold different points"):
        run(pred, dataset_path, tmp_path / "r", factory=functools.partial(GaussianFieldBuilder, shifted_scf_grid=True))


def test_backend_without_scf(dataset_path, make_predictions, tmp_path):
    pred = make_predictions(lambda i, d: d)
    summary = run(pred, dataset_path, tmp_path / "r", factory=functools.partial(GaussianFieldBuilder, no_scf=True))
    assert summary["metrics"]["nmae_scf_percent"]["count"] == 0
    assert any("no SCF density" in n for n in summary["notes"])
    json.loads((tmp_path / "r" / "summary.json").read_text())  # no NaN in the JSON


def test_subset_and_parallel_workers(dataset_path, make_predictions, tmp_path):
    rng = np.random.default_rng(5)
    pred = make_predictions(lambda i, d: d + 0.01 * rng.normal(size=d.shape))
    run(pred, dataset_path, tmp_path / "serial", select="1:")
    run(pred, dataset_path, tmp_path / "parallel", select="1:", workers=2, chunk_size=1)
    serial, parallel = read_csv(tmp_path / "serial" / "metrics.csv"), read_csv(tmp_path / "parallel" / "metrics.csv")
    assert [r["dataset_index"] for r in serial] == ["1", "2", "3"]
    assert [r["dataset_index"] for r in parallel] == ["1", "2", "3"]
    for a, b in zip(serial, parallel):  # equal up to summation order (BLAS threads differ)
        assert a["label"] == b["label"]
        assert [float(a[k]) for k in a if k not in ("label", "formula")] == pytest.approx(
            [float(b[k]) for k in b if k not in ("label", "formula")], rel=1e-12, abs=1e-12
        )


class CountingBuilder(GaussianFieldBuilder):
    seen: list = []

    def build(self, dataset, requests):
        CountingBuilder.seen += [r.index for r in requests]
        yield from super().build(dataset, requests)


def test_resume_and_restart(dataset_path, make_predictions, tmp_path):
    pred = make_predictions(lambda i, d: 1.02 * d)
    out = tmp_path / "r"
    run(pred, dataset_path, out, chunk_size=1)
    lines = (out / "metrics.csv").read_text().splitlines()
    (out / "metrics.csv").write_text("\n".join(lines[:3]) + "\n")  # as if killed after two structures
    CountingBuilder.seen = []
    summary = run(pred, dataset_path, out, factory=CountingBuilder, chunk_size=1)
    assert sorted(CountingBuilder.seen) == [2, 3] and summary["n_structures"] == 4
    assert len(read_csv(out / "metrics.csv")) == 4
    with pytest.raises(ValueError, match="another evaluation"):
        run(pred, dataset_path, out, select="0:2")
    run(pred, dataset_path, out, select="0:2", restart=True)
    assert len(read_csv(out / "metrics.csv")) == 2


def test_plots_and_cubes(dataset_path, make_predictions, tmp_path):
    from ase.io.cube import read_cube

    rng = np.random.default_rng(6)
    pred = make_predictions(lambda i, d: d + 0.02 * rng.normal(size=d.shape))
    summary = run(pred, dataset_path, tmp_path / "r", plots=True, cubes="2", cube_spacing_bohr=0.3)
    for name in ("error_distribution", "nmae_vs_size", "parity_by_l", "density_difference_slice"):
        png = tmp_path / "r" / "plots" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    names = sorted(p.name for p in (tmp_path / "r" / "cubes").iterdir())
    assert names == [f"000002_H2O_{k}.cube" for k in ("diff_predicted_minus_ri", "diff_predicted_minus_scf", "predicted", "ri", "scf")]
    assert "cubes/000002_H2O_scf.cube" in summary["files"]
    with open(tmp_path / "r" / "cubes" / "000002_H2O_scf.cube") as fh:
        cube = read_cube(fh)
    with open_dataset(dataset_path) as ds:
        s = ds[2]
    assert np.allclose(cube["atoms"].positions, s.positions, atol=1e-5)
    voxel = abs(np.linalg.det(cube["atoms"].cell)) / cube["data"].size / 0.529177210903**3  # bohr^3
    assert cube["data"].sum() * voxel == pytest.approx(s.metadata["n_electrons"], rel=1e-3)


def test_fit_only_slice_and_cubes(dataset_path, tmp_path):
    summary = run(None, dataset_path, tmp_path / "r", fit_only=True, plots=True, cubes="worst", select="0:2")
    assert "plots/density_difference_slice.png" in summary["files"]
    assert sum(f.startswith("cubes/") for f in summary["files"]) == 3


def test_backend_without_points(dataset_path, make_predictions, tmp_path):
    pred = make_predictions(lambda i, d: d)
    summary = run(pred, dataset_path, tmp_path / "r", factory=GridOnlyBuilder, plots=True)
    assert "plots/density_difference_slice.png" not in summary["files"]
    assert any("build_on_points" in n for n in summary["notes"])
    with pytest.raises(ValueError, match="cannot evaluate fields at arbitrary points"):
        run(pred, dataset_path, tmp_path / "r2", factory=GridOnlyBuilder, cubes="0")
    assert not (tmp_path / "r2" / "metrics.csv").exists()  # refused before any work
