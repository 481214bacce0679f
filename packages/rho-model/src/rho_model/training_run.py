"""What the steps of one training run share: options, run folder, log, data, and the model it starts from."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rho_data import AuxiliaryBasis
from rho_data.atomic import write_text_atomic

from . import distributed as ddp
from .checkpoint import checkpoint_files
from .data import Record
from .model_file import save_model
from .run_log import RunLog
from .validation import validation_metrics


@dataclass
class StartingModel:
    """A saved model a run starts from: the checkpoint of ``--restart`` or the model of ``--init``."""

    payload: dict
    origin: str
    config: dict[str, Any]
    net: tuple[str | None, str]  # (network source, its origin) of a python network, else (None, "")


@dataclass
class TrainingRun:
    """One run of :func:`rho_model.train.run_training`: what its steps read and write.

    ``device`` and ``dtype`` come from the options of this call; on ``--restart`` the other
    ``options`` are the checkpoint's.
    """

    options: dict
    out: Path
    ctx: ddp.Context
    log: RunLog
    device: str
    dtype: torch.dtype
    progress: Any = None
    resume: dict | None = None  # the checkpoint a --restart continues
    stale: list[Path] = field(default_factory=list)  # checkpoints of the run being replaced (--overwrite)
    basis: AuxiliaryBasis | None = None
    train: list[Record] = field(default_factory=list)
    val: list[Record] = field(default_factory=list)
    means: dict[str, np.ndarray | None] = field(default_factory=dict)  # cbar of the validation %RMSE
    split_sizes: dict[str, int] = field(default_factory=dict)  # structures per split

    @property
    def checkpoints(self) -> Path:
        return self.out / "checkpoints"

    def val_metrics(self, model) -> dict[str, float]:
        """:func:`rho_model.validation.validation_metrics` on the validation records."""
        return validation_metrics(model, self.val, self.basis, self.options, self.dtype, self.device, self.means)

    def save(self, model, name: str) -> None:
        """Write ``name`` (model.pt, last.pt) in the run folder (first process only)."""
        if self.ctx.main:
            save_model(model, self.out / name)

    def drop_stale(self) -> None:
        """Drop the checkpoints of a replaced run once the new run has written its own result."""
        for path in self.stale:
            path.unlink(missing_ok=True)
        self.stale.clear()

    def write_summary(self, summary: dict) -> None:
        if self.ctx.main:
            write_text_atomic(self.out / "fit.json", json.dumps(summary, indent=1), what="fit summary")


def existing_run(folder: Path) -> Path | None:
    """The file that makes ``folder`` a run: its model.pt, last.pt or a checkpoint (None for a new folder)."""
    if not folder.is_dir():
        return None
    for name in ("model.pt", "last.pt"):
        if (folder / name).exists():
            return folder / name
    files = checkpoint_files(folder / "checkpoints")
    return files[-1] if files else None
