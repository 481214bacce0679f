"""Optimizers and per-epoch learning-rate schedules."""

from __future__ import annotations

import math

import torch


def make_optimizer(params, training: dict) -> torch.optim.Optimizer:
    cls = torch.optim.AdamW if training["optimizer"] == "adamw" else torch.optim.Adam
    return cls(params, lr=float(training["lr"]), weight_decay=float(training["weight_decay"]))


def make_scheduler(optimizer: torch.optim.Optimizer, training: dict):
    """step, exponential, plateau (on validation loss) or cosine with linear warm-up; None for constant."""
    kind = training["scheduler"]
    if kind is None:
        return None
    if kind == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, int(training["step_size"]), float(training["gamma"]))
    if kind == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, float(training["gamma"]))
    if kind == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=float(training["gamma"]), patience=int(training["patience"])
        )
    warm, total = int(training["warmup_epochs"]), int(training["epochs"])

    def factor(epoch: int) -> float:
        if epoch < warm:
            return (epoch + 1) / (warm + 1)
        progress = (epoch - warm) / max(1, total - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def step_scheduler(scheduler, val_loss: float) -> None:
    if scheduler is None:
        return
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(val_loss)
    else:
        scheduler.step()
