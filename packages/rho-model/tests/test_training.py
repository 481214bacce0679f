import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import yaml

from rho_model.model_file import load_model
from rho_model.train import run_training


def _gradient_options(small_options, **training):
    small_options["fit"]["method"] = "gradient"
    small_options["fit"]["alpha"] = 1e-8
    small_options["training"].update({"epochs": 6, "batch_size": 4, "lr": 1e-2, "checkpoint_every": 1, **training})
    return small_options


def test_conditioned_gradient_training_decreases_loss_from_random_start(water_dataset, small_options, tmp_path):
    opts = _gradient_options(small_options, warm_start=False, epochs=8)
    run_training(opts, water_dataset, tmp_path / "run", echo=None)
    rows = np.genfromtxt(tmp_path / "run/log.csv", delimiter=",", names=True)
    assert rows["train_loss"][-1] < 0.2 * rows["train_loss"][0]
    assert rows["val_loss"][-1] < rows["val_loss"][0]
    text = (tmp_path / "run/log.txt").read_text()
    assert "epoch 1 train_loss" in text and "dt_train" in text and "lr" in text


def test_gradient_training_from_exact_solution_does_not_get_worse(water_dataset, small_options, tmp_path):
    opts = _gradient_options(small_options, warm_start=True, lr=1e-4, epochs=3)
    summary = run_training(opts, water_dataset, tmp_path / "run", echo=None)
    rows = np.genfromtxt(tmp_path / "run/log.csv", delimiter=",", names=True)
    exact_val = summary["exact"]["val_loss"]
    assert rows["val_loss"].min() <= exact_val * (1 + 1e-3)
    assert summary["gradient"]["best_val_loss"] <= exact_val * (1 + 1e-3)


def _train_cmd(dataset, out, options_file, *extra):
    return [sys.executable, "-m", "rho_model.cli", "train", str(dataset), "-o", str(out), "-c", str(options_file), *extra]


@pytest.mark.slow
def test_restart_after_sigkill_gives_identical_weights(water_dataset, small_options, tmp_path):
    opts = _gradient_options(small_options, warm_start=False, epochs=6, scheduler="cosine", warmup_epochs=2)
    opts_file = tmp_path / "opts.yaml"
    opts_file.write_text(yaml.safe_dump(opts))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run(_train_cmd(water_dataset, tmp_path / "full", opts_file), check=True, env=env, capture_output=True)
    proc = subprocess.Popen(
        _train_cmd(water_dataset, tmp_path / "killed", opts_file), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    target = tmp_path / "killed/checkpoints/epoch_000003.pt"
    deadline = time.time() + 120
    while not target.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert target.exists()
    assert not (tmp_path / "killed/checkpoints/epoch_000006.pt").exists()
    subprocess.run(
        _train_cmd(water_dataset, tmp_path / "killed", opts_file, "--restart"), check=True, env=env, capture_output=True
    )
    a = load_model(tmp_path / "full/last.pt").state_dict()
    b = load_model(tmp_path / "killed/last.pt").state_dict()
    tensors = [k for k in a if isinstance(a[k], torch.Tensor)]
    assert any(k.endswith("weight") for k in tensors)
    for k in tensors:
        assert torch.equal(a[k], b[k]), k


def test_finetune_with_frozen_keys(water_dataset, small_options, tmp_path):
    run_training(small_options, water_dataset, tmp_path / "exact", echo=None)
    opts = _gradient_options(small_options, epochs=2, freeze=["head.l0_z8*"])
    run_training(opts, water_dataset, tmp_path / "ft", init_model=tmp_path / "exact/model.pt", echo=None)
    exact = load_model(tmp_path / "exact/model.pt")
    raw = {nice: name for name, nice in exact.parameter_names().items()}
    a = exact.state_dict()
    b = load_model(tmp_path / "ft/last.pt").state_dict()
    for nice in ("head.l0_z8.weight", "head.l0_z8.bias"):
        assert torch.equal(a[raw[nice]], b[raw[nice]])
    assert not torch.equal(a[raw["head.l1_z8.weight"]], b[raw["head.l1_z8.weight"]])
    assert not torch.equal(a[raw["head.l0_z1.weight"]], b[raw["head.l0_z1.weight"]])
    assert "frozen parameters: head.l0_z8.weight, head.l0_z8.bias" in (tmp_path / "ft/log.txt").read_text()


def test_deep_model_trains(water_dataset, small_options, tmp_path):
    small_options["model"].update({"type": "deep", "layers": [{"linear": 8}, {"layer_norm": True}, {"activation": "silu"}]})
    opts = _gradient_options(small_options, epochs=4, lr=5e-3)
    run_training(opts, water_dataset, tmp_path / "run", echo=None)
    rows = np.genfromtxt(tmp_path / "run/log.csv", delimiter=",", names=True)
    assert rows["train_loss"][-1] < rows["train_loss"][0]


def test_restart_from_a_version_1_checkpoint(water_dataset, small_options, tmp_path):
    """A checkpoint written before model files were version 2 is upgraded on reading: the restart equals the run."""
    import shutil

    opts = _gradient_options(small_options, epochs=3)
    run_training(opts, water_dataset, tmp_path / "full", echo=None)
    for name in ("v2", "v1"):
        shutil.copytree(tmp_path / "full", tmp_path / name)
        (tmp_path / name / "checkpoints/epoch_000003.pt").unlink()
        (tmp_path / name / "last.pt").unlink()
    ckpt = tmp_path / "v1/checkpoints/epoch_000002.pt"
    payload = torch.load(ckpt, weights_only=True)
    internal = {new: old for old, new in load_model(ckpt).state_names().items()}
    payload["state_dict"] = {internal[k]: v for k, v in payload["state_dict"].items()}  # v1: torch's own names
    payload["version"] = 1
    assert any(k.startswith("head.module_map.module_list.") for k in payload["state_dict"])
    torch.save(payload, ckpt)
    for name in ("v2", "v1"):
        run_training(opts, water_dataset, tmp_path / name, restart=True, echo=None)
    a = load_model(tmp_path / "full/last.pt").state_dict()
    for name in ("v2", "v1"):
        b = load_model(tmp_path / name / "last.pt").state_dict()
        for k in a:
            if isinstance(a[k], torch.Tensor):
                assert torch.equal(a[k], b[k]), (name, k)
    assert torch.load(tmp_path / "v1/checkpoints/epoch_000003.pt", weights_only=True)["version"] == 2
