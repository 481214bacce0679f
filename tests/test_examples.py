"""The examples in examples/ run as documented (CI-sized)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def test_python_api_example(tmp_path: Path) -> None:
    """examples/python_api.py: pyscf-io data, rho-train fit, rho_model.load(...).predict, a predictions file."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "python_api.py"), "--output", str(tmp_path / "out")],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "blocks (atoms, 2l+1, n): l0_z1 (" in result.stdout
    assert "relative overlap-metric error" in result.stdout
    assert "electrons predicted" in result.stdout and "%NMAE vs RI" in result.stdout
    from rho_data import open_predictions

    with open_predictions(tmp_path / "out" / "predictions.h5") as predictions:
        assert len(predictions) == 1 and predictions[0].dataset_index >= 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing lands in the current folder
    _validation_rmse_is_rho_evals(tmp_path / "out")


def _validation_rmse_is_rho_evals(work: Path) -> None:
    """The val %RMSE rho-train reports is rho-eval's SALTED %RMSE of the same structure (cbar from the training set)."""
    import json

    import rho_eval
    import rho_model
    from rho_data import open_dataset
    from rho_model.splits import read_index_file

    fit = json.loads((work / "run" / "fit.json").read_text())["exact"]
    with open_dataset(work / "data.h5") as ds:
        split = {
            s: read_index_file(work / "run" / "splits" / f"{s}.idx", dataset_id=ds.dataset_id, n_structures=len(ds))
            for s in ("train", "val")
        }
        (val,) = split["val"]
        c = rho_model.load(work / "run" / "model.pt").predict(ds[val].to_ase()).coefficients
        metrics = rho_eval.evaluate(ds, val, c, reference_indices=split["train"])
    assert abs(metrics["rmse_coef_ri_percent"] - fit["val_rmse_percent"]) <= 1e-6 * fit["val_rmse_percent"]
