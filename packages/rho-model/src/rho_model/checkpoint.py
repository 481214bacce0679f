"""Checkpoints: model, optimizer, scheduler, epoch, RNG state and config; loaded weights-only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .errors import RhoModelError
from .model import MODEL_FORMAT, MODEL_VERSION, read_payload, state_dict_cpu


def save_checkpoint(
    path: Path, *, model, optimizer, scheduler, epoch: int, best_val: float, bad_epochs: int, options: dict
) -> None:
    payload = {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "kind": "checkpoint",
        "config": json.dumps(model.config),
        "options": json.dumps(options),
        "state_dict": state_dict_cpu(model),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else {},
        "epoch": int(epoch),
        "best_val": float(best_val),
        "bad_epochs": int(bad_epochs),
        "torch_rng": torch.get_rng_state(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    payload = read_payload(path, "checkpoint")
    if payload.get("kind") != "checkpoint":
        raise RhoModelError(f"{path}: is a model file, not a training checkpoint")
    for key in ("state_dict", "optimizer", "epoch", "torch_rng", "config", "options"):
        if key not in payload:
            raise RhoModelError(f"{path}: checkpoint lacks '{key}'")
    return payload


def latest_checkpoint(folder: Path) -> Path | None:
    files = sorted(folder.glob("epoch_*.pt"))
    return files[-1] if files else None
