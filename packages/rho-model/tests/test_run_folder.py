"""What a run leaves where: the descriptor cache inside its run folder; the validation %RMSE it reports."""

import json

import numpy as np
import yaml
from helpers import SMALL_DESCRIPTOR
from typer.testing import CliRunner

import rho_model
from rho_data import open_dataset
from rho_model.cli import app

runner = CliRunner()


def test_cache_inside_each_run_folder(water_dataset, tmp_path, monkeypatch):
    """Two runs started from one folder, different -o: separate caches, nothing left in the current directory."""
    opts = tmp_path / "opts.yaml"
    desc = {k: v for k, v in SMALL_DESCRIPTOR.items() if k != "cache_dir"}  # the default cache_dir
    opts.write_text(yaml.safe_dump({"descriptor": desc, "fit": {"alpha": 1e-8}}))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    for name in ("a", "b"):
        result = runner.invoke(app, ["train", str(water_dataset), "-o", str(tmp_path / name), "-c", str(opts)])
        assert result.exit_code == 0, result.output
    assert list(cwd.iterdir()) == []
    chunks = {name: sorted((tmp_path / name / "descriptor-cache").glob("*/chunk_*.npz")) for name in ("a", "b")}
    assert chunks["a"] and chunks["b"]
    assert not set(chunks["a"]) & set(chunks["b"])


def test_validation_rmse_is_salted_formula(water_dataset, tmp_path):
    """The printed val %RMSE is 100 sqrt(sum dc^T S dc / sum (c - cbar)^T S (c - cbar)), cbar from the training set."""
    opts = tmp_path / "opts.yaml"
    opts.write_text(yaml.safe_dump({"descriptor": dict(SMALL_DESCRIPTOR, cache_dir=None), "fit": {"alpha": 1e-8}}))
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(water_dataset), "-o", str(run), "-c", str(opts)])
    assert result.exit_code == 0, result.output
    fit = json.loads((run / "fit.json").read_text())["exact"]
    idx = {s: [int(x) for x in (run / f"splits/{s}.idx").read_text().split() if x.isdigit()] for s in ("train", "val")}
    model = rho_model.load(run / "model.pt")
    with open_dataset(water_dataset) as ds:
        basis = ds.basis
        # species means of the l = 0 coefficients over the training atoms, dense bookkeeping
        sums: dict[int, list] = {}
        for i in idx["train"]:
            s = ds[i]
            start = 0
            for z in s.numbers:
                el = basis[int(z)]
                n0 = el.n_radial[0]
                sums.setdefault(int(z), []).append(s.coefficients[start : start + n0])
                start += int(basis.atom_sizes(np.array([z])).sum())
        means = {z: np.mean(v, axis=0) for z, v in sums.items()}
        err = spread = 0.0
        for i in idx["val"]:
            s = ds[i]
            S = s.overlap.to_dense()
            cbar = np.zeros_like(s.coefficients)
            start = 0
            for z in s.numbers:
                cbar[start : start + basis[int(z)].n_radial[0]] = means[int(z)]
                start += int(basis.atom_sizes(np.array([z])).sum())
            dc = model.predict(s.to_ase()).coefficients - s.coefficients
            err += dc @ S @ dc
            spread += (s.coefficients - cbar) @ S @ (s.coefficients - cbar)
    np.testing.assert_allclose(fit["val_loss"], err / len(idx["val"]), rtol=1e-8)
    np.testing.assert_allclose(fit["val_rmse_percent"], 100 * np.sqrt(err / spread), rtol=1e-8)
    text = (run / "log.txt").read_text()
    assert "val overlap-metric loss" in text and "e^2/bohr^3" in text and "val %RMSE" in text
    assert f"{fit['val_rmse_percent']:.4g}" in text
