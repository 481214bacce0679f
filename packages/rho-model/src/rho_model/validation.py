"""Validation metrics of a model on held-out records: the overlap-metric loss and SALTED's %RMSE."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from rho_data.layout import key_name

from .data import Batch, Record
from .metric import batch_loss

#: what the printed validation loss is: the mean over structures of the overlap-metric error.
LOSS_NAME = "val overlap-metric loss (mean dc^T S dc per structure, e^2/bohr^3)"
#: SALTED's coefficient %RMSE 100 sqrt(sum dc^T S dc / sum (c - cbar)^T S (c - cbar)), cbar = species-mean l=0 of train.
RMSE_NAME = "val %RMSE (SALTED)"


def validation_metrics(
    model, records: Sequence[Record], basis, options: dict, dtype, device, means: dict[str, np.ndarray | None] | None = None
) -> dict[str, float]:
    """``loss``: mean per-structure overlap-metric loss (no pair cutoff, overlap form); with the
    species means ``means`` of the training set's l = 0 coefficients (:func:`rho_model.statistics.baseline_means`)
    also ``rmse_percent``, SALTED's coefficient %RMSE 100 sqrt(sum dc^T S dc / sum (c - cbar)^T S (c - cbar))."""
    if not records:
        return {"loss": float("nan"), "rmse_percent": float("nan")}
    total, spread = 0.0, 0.0
    size = int(options["training"]["batch_size"])
    with torch.no_grad():
        for start in range(0, len(records), size):
            batch = Batch(records[start : start + size], basis, dtype=dtype, device=device)
            total += float(batch_loss(model, batch, "overlap"))
            if means is not None:
                cbar = batch.assemble(_mean_blocks(batch, means))
                spread += float(batch.overlap.quadratic(batch.reference - cbar))
    out = {"loss": total / len(records), "rmse_percent": float("nan")}
    if means is not None and spread > 0:
        out["rmse_percent"] = 100.0 * math.sqrt(total / spread)
    return out


def _mean_blocks(batch: Batch, means: dict[str, np.ndarray | None]) -> dict[str, torch.Tensor]:
    """Per-key blocks holding each atom's species-mean l = 0 coefficients (zero for l > 0)."""
    blocks = {}
    for key in batch.layout.keys:
        name = key_name(key)
        rows = len(batch.layout.atoms[key])
        block = torch.zeros(rows, 2 * key[0] + 1, batch.layout.index[key].shape[1], dtype=batch.dtype, device=batch.device)
        if key[0] == 0 and means.get(name) is not None:
            block[:] = torch.as_tensor(means[name], dtype=batch.dtype, device=batch.device)
        blocks[name] = block
    return blocks


def metrics_line(prefix: str, metrics: dict[str, float]) -> str:
    return f"{prefix}{LOSS_NAME} {metrics['loss']:.6g}; {RMSE_NAME} {metrics['rmse_percent']:.4g}"
