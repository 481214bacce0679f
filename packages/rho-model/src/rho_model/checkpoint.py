"""Checkpoints: model, optimizer, scheduler, epoch, RNG state and config; loaded weights-only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from rho_data.atomic import atomic_output

from .errors import RhoModelError
from .model_file import model_payload, read_payload, require_finite_weights


def save_checkpoint(
    path: Path, *, model, optimizer, scheduler, epoch: int, best_val: float, bad_epochs: int, options: dict
) -> None:
    """Everything a restart needs, written through a temporary file; refuses non-finite weights."""
    require_finite_weights(model, path)
    payload = model_payload(model, "checkpoint")
    payload.update(
        {
            "options": json.dumps(options),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else {},
            "epoch": int(epoch),
            "best_val": float(best_val),
            "bad_epochs": int(bad_epochs),
            "torch_rng": torch.get_rng_state(),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, overwrite=True, what="checkpoint") as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    payload = read_payload(path, "checkpoint")
    if payload.get("kind") != "checkpoint":  # v1 model files had no kind: "model" since v2
        raise RhoModelError(f"{path}: is a model file, not a training checkpoint")
    for key in ("state_dict", "optimizer", "epoch", "torch_rng", "config", "options"):
        if key not in payload:
            raise RhoModelError(f"{path}: checkpoint lacks '{key}'")
    return payload


def checkpoint_files(folder: Path) -> list[Path]:
    """The checkpoints of a run folder, oldest epoch first."""
    return sorted(p for p in folder.glob("epoch_*.pt") if p.name[len("epoch_") : -len(".pt")].isdigit())


def latest_checkpoint(folder: Path) -> Path | None:
    files = checkpoint_files(folder)
    return files[-1] if files else None
