"""The quickstart chain through the command lines on tiny data, checking every file between
stages with ``rho-data validate``: pyscf-io -> rho-data split -> rho-train -> rho-eval."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def run(*args, cwd: Path) -> subprocess.CompletedProcess:
    command = [str(BIN / args[0]) if (BIN / args[0]).exists() else args[0], *map(str, args[1:])]
    result = subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def validate(path: Path, cwd: Path) -> None:
    assert "valid" in run("rho-data", "validate", path, cwd=cwd).stdout


def split_train_predict(work: Path, n_train: int) -> None:
    """rho-data split (n_train / 0 / 2 test) -> rho-train train (exact fit at a fixed alpha) -> rho-train
    predict of the test split, in ``work`` beside data.h5; the predictions file is validated."""
    run("rho-data", "split", "data.h5", "-s", str(n_train), "-s", "0", "-s", "2", "--seed", "1", "-o", "splits", cwd=work)
    run(
        "rho-train",
        "train",
        "data.h5",
        "-o",
        "model",
        "--set",
        "data.train=splits/train.idx",
        "--set",
        "data.test=splits/test.idx",
        "--set",
        "fit.alpha=1.0e-6",
        "--set",
        "descriptor.max_radial=4",
        cwd=work,
    )
    run("rho-train", "predict", "model/model.pt", "data.h5", "--indices", "splits/test.idx", "-o", "predictions.h5", cwd=work)
    validate(work / "predictions.h5", work)


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("chain")
    run(
        sys.executable,
        ROOT / "examples" / "make_molecules.py",
        "-o",
        "molecules.xyz",
        "--conformers",
        "4",
        "--molecules",
        "H2O",
        "NH3",
        cwd=work,
    )
    run("pyscf-io", "run", "molecules.xyz", "-o", "data.h5", "--workers", "2", "--basis", "sto-3g", "-q", cwd=work)
    validate(work / "data.h5", work)
    split_train_predict(work, 6)
    run("rho-eval", "predictions.h5", "--reference", "data.h5", "-o", "report", "--no-plots", cwd=work)
    return work


def test_every_stage_wrote_its_files(chain: Path) -> None:
    for name in (
        "data.h5",
        "splits/train.idx",
        "splits/test.idx",
        "model/model.pt",
        "predictions.h5",
        "report/metrics.csv",
        "report/summary.json",
    ):
        assert (chain / name).exists(), name


def test_report_has_errors_against_ri_and_scf(chain: Path) -> None:
    summary = json.loads((chain / "report" / "summary.json").read_text())
    text = json.dumps(summary)
    assert "nmae" in text.lower()
    rows = (chain / "report" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + 2  # header + the two test structures


def test_predictions_belong_to_the_dataset(chain: Path) -> None:
    from rho_data import open_dataset, open_predictions

    with open_dataset(chain / "data.h5") as data, open_predictions(chain / "predictions.h5") as predictions:
        assert predictions.dataset_id == data.dataset_id
        assert len(predictions) == 2
        for p in predictions:
            assert (p.numbers == data[p.dataset_index].numbers).all()
