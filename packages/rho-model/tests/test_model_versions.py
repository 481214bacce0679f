"""Model file versions: the frozen v1 fixture keeps loading with the same predictions, ``rho-train upgrade``."""

from __future__ import annotations

import shutil
from pathlib import Path

import ase
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import rho_model
from rho_model import RhoModelError
from rho_model.cli import app
from rho_model.model_file import load_model, read_payload
from rho_model.model_upgrade import MODEL_VERSION, upgrade_v1_to_v2

FIXTURES = Path(__file__).parent / "fixtures"
V1 = FIXTURES / "model_v1.pt"
runner = CliRunner()


def _assert_frozen(got: np.ndarray, frozen: np.ndarray) -> None:
    """The file's weights give the frozen numbers; descriptor round-off (1e-16 relative) is not the file's doing."""
    np.testing.assert_allclose(got, frozen, rtol=0, atol=1e-12 * np.abs(frozen).max())


def _frozen_prediction(path: Path, version: int = 1) -> tuple[np.ndarray, np.ndarray]:
    frozen = np.load(FIXTURES / f"model_v{version}_prediction.npz")
    atoms = ase.Atoms(numbers=frozen["numbers"], positions=frozen["positions"])
    return rho_model.load(path).predict(atoms).coefficients, frozen["coefficients"]


def test_v1_fixture_is_version_1():
    payload = torch.load(V1, weights_only=True)
    assert payload["version"] == 1 and "kind" not in payload
    assert any(k.startswith("head.module_map.module_list.") for k in payload["state_dict"])


@pytest.mark.parametrize("version", [1, 2])
def test_fixture_of_each_version_loads_and_predicts_its_frozen_numbers(version):
    path = FIXTURES / f"model_v{version}.pt"
    assert torch.load(path, weights_only=True)["version"] == version
    _assert_frozen(*_frozen_prediction(path, version))


def test_upgraded_file_is_v2_and_predicts_the_same_numbers(tmp_path):
    out = tmp_path / "model_v2.pt"
    result = runner.invoke(app, ["upgrade", str(V1), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "upgraded 1 -> 2" in result.output
    payload = torch.load(out, weights_only=True)
    assert payload["version"] == MODEL_VERSION == 2 and payload["kind"] == "model"
    names = set(payload["state_dict"])
    assert {"head.l0_z8.weight", "head.l0_z8.bias", "head.l1_z1.weight"} <= names
    assert not any("module_list" in k for k in names)
    assert names == set(load_model(V1).state_names().values())
    got, frozen = _frozen_prediction(out)
    _assert_frozen(got, frozen)
    np.testing.assert_array_equal(got, _frozen_prediction(V1)[0])
    # a current file is left alone; an existing output is not replaced without --overwrite
    again = runner.invoke(app, ["upgrade", str(out)])
    assert again.exit_code == 0 and "already at model file version 2" in again.output
    refused = runner.invoke(app, ["upgrade", str(V1), "-o", str(out)])
    assert refused.exit_code == 1 and "exists" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert runner.invoke(app, ["upgrade", str(V1), "-o", str(out), "--overwrite"]).exit_code == 0


def test_upgrade_in_place(tmp_path):
    copy = tmp_path / "model.pt"
    shutil.copyfile(V1, copy)
    result = runner.invoke(app, ["upgrade", str(copy)])
    assert result.exit_code == 0, result.output
    assert torch.load(copy, weights_only=True)["version"] == 2
    assert not [p for p in tmp_path.iterdir() if p.name != "model.pt" and not p.name.endswith(".lock")]  # no temporary left


def test_upgrade_step_renames_by_key():
    payload = torch.load(V1, weights_only=True)
    upgraded = upgrade_v1_to_v2(payload)
    assert upgraded["kind"] == "model"
    assert len(upgraded["state_dict"]) == len(payload["state_dict"])
    for old, new in zip(payload["state_dict"], upgraded["state_dict"]):
        if old.startswith("head.module_map.module_list.") and not old.endswith(("_mts_helper", "_extra_state")):
            assert new.startswith(("head.l0_", "head.l1_", "head.l2_")) and new.split(".")[-1] == old.split(".")[-1]
            assert torch.equal(payload["state_dict"][old], upgraded["state_dict"][new])


@pytest.mark.parametrize("version", [3, 99])
def test_future_version_is_refused_in_one_line(tmp_path, version):
    payload = torch.load(V1, weights_only=True)
    payload["version"] = version
    path = tmp_path / "future.pt"
    torch.save(payload, path)
    with pytest.raises(RhoModelError, match=f"version {version} is newer than this rho-model's 2: install a newer rho-model"):
        read_payload(path)
    for args in (["predict", str(path), str(V1), "-o", str(tmp_path / "p.h5")], ["upgrade", str(path)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1 and "Traceback" not in result.output
        err = result.stderr.strip()
        assert len(err.splitlines()) == 1 and "newer than this rho-model" in err, err


@pytest.mark.parametrize("whiten", [False, True])
def test_linear_weights_round_trip(whiten):
    from rho_model.model import build_model

    model = load_model(V1)
    if whiten:  # the same model with an output whitening T: the head holds W T^-1
        model = build_model(dict(model.config, whiten_out=True))
        rng = np.random.default_rng(0)
        with torch.no_grad():
            for t in model.transforms.values():
                a = torch.as_tensor(rng.normal(size=t.out_transform.shape))
                t.out_transform.copy_(a @ a.T + torch.eye(len(a)))
    weights = model.linear_weights()
    assert set(weights) == {n for n in model.transforms}
    shifted = {n: w + 0.5 for n, w in weights.items()}
    model.set_linear_weights(shifted)
    for n, w in model.linear_weights().items():
        torch.testing.assert_close(w, shifted[n], rtol=1e-12, atol=1e-12)
