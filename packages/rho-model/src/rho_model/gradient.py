"""Gradient training: epochs of the overlap-metric loss, validation, best model, checkpoints, early stopping.

A checkpoint every ``training.checkpoint_every`` epochs (and at the last) holds the model, the
optimiser and scheduler, the epoch, the best validation loss, the epochs without improvement and
the torch RNG state: ``--restart`` continues from it as if the run had not stopped (the batch
order of epoch e is a permutation seeded by (seed, e)).
"""

from __future__ import annotations

import fnmatch
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from . import distributed as ddp
from .checkpoint import save_checkpoint
from .data import Batch
from .errors import RhoModelError
from .metric import batch_loss
from .model import RhoModel
from .schedules import make_optimizer, make_scheduler, step_scheduler
from .training_run import TrainingRun


@dataclass
class GradientState:
    """What a checkpoint saves and ``--restart`` restores."""

    model: RhoModel
    params: list[torch.nn.Parameter]
    optimizer: torch.optim.Optimizer
    scheduler: Any
    epoch: int = 0  # the last finished epoch
    best_val: float = math.inf
    bad_epochs: int = 0  # epochs since the validation loss last improved
    saved: bool = False  # model.pt holds this run's best model


def freeze(model: RhoModel, patterns: Sequence[str]) -> list[str]:
    """Stop gradients of parameters whose readable name (:meth:`RhoModel.parameter_names`) matches a glob,
    e.g. 'head.l0_*' (all invariant keys) or 'head.*.0.*' (first layer of a deep head)."""
    frozen = []
    readable = model.parameter_names()
    for name, p in model.named_parameters():
        nice = readable[name]
        if any(fnmatch.fnmatch(nice, pat) or nice.startswith(pat) for pat in patterns):
            p.requires_grad_(False)
            frozen.append(nice)
    if patterns and not frozen:
        raise RhoModelError(
            f"options: training.freeze {list(patterns)} matches no parameter (names look like {sorted(readable.values())[:3]})"
        )
    return frozen


def start_state(run: TrainingRun, model: RhoModel) -> GradientState:
    """Optimiser and scheduler of the trainable parameters, restored from the checkpoint of a restart."""
    training = run.options["training"]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(params, training)
    state = GradientState(model, params, optimizer, make_scheduler(optimizer, training))
    if run.resume is not None:
        optimizer.load_state_dict(run.resume["optimizer"])
        if state.scheduler is not None:
            state.scheduler.load_state_dict(run.resume["scheduler"])
        state.epoch, state.best_val = int(run.resume["epoch"]), float(run.resume["best_val"])
        state.bad_epochs = int(run.resume["bad_epochs"])
        torch.set_rng_state(run.resume["torch_rng"])
        state.saved = (run.out / "model.pt").exists()
    return state


def gradient_training(run: TrainingRun, model: RhoModel) -> dict:
    """Train ``model`` for ``training.epochs`` (from the checkpoint's epoch on a restart); writes
    model.pt (best validation loss), last.pt, checkpoints and log.csv. Returns the summary part."""
    training = run.options["training"]
    run.log.line(
        "train_loss, val_loss: mean dc^T S dc per structure (e^2/bohr^3; val_loss = train_loss without a validation set); "
        "val_rmse_percent: SALTED's %RMSE 100 sqrt(sum dc^T S dc / sum (c - cbar)^T S (c - cbar)), cbar from train"
    )
    frozen = freeze(model, training["freeze"])
    if frozen:
        run.log.line(f"frozen parameters: {', '.join(frozen)}")
    state = start_state(run, model)
    net = model
    if run.ctx.active:
        net = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)  # keys absent from a shard
    bs = int(training["batch_size"])
    if run.ctx.active and bs < run.ctx.world:
        raise RhoModelError(f"options: training.batch_size {bs} is smaller than the {run.ctx.world} processes")
    epochs = int(training["epochs"])
    task = None
    if run.progress is not None and run.ctx.main:
        task = run.progress.add_task("training", total=epochs, completed=state.epoch)
    for epoch in range(state.epoch + 1, epochs + 1):
        t0 = time.perf_counter()
        train_loss = train_epoch(run, state, net, epoch)
        dt_train = time.perf_counter() - t0
        t1 = time.perf_counter()
        metrics = run.val_metrics(model) if run.val else None
        val_loss = metrics["loss"] if metrics is not None else train_loss
        dt_val = time.perf_counter() - t1
        lr = state.optimizer.param_groups[0]["lr"]
        step_scheduler(state.scheduler, val_loss)
        run.log.epoch(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "val_rmse_percent": metrics["rmse_percent"] if metrics is not None else float("nan"),
                "dt_train": dt_train,
                "dt_val": dt_val,
                "lr": lr,
            }
        )
        end_epoch(run, state, epoch, val_loss)
        if task is not None:
            run.progress.advance(task)
        if training["early_stopping"] is not None and state.bad_epochs >= int(training["early_stopping"]):
            run.log.line(f"early stopping at epoch {epoch}: no improvement of val_loss for {state.bad_epochs} epochs")
            break
    if not state.saved:  # no epoch ran (training.epochs 0): the starting model is the result
        run.save(model, "model.pt")
    run.save(model, "last.pt")
    if run.ctx.main:
        run.drop_stale()
    best = state.best_val
    return {"best_val_loss": best if math.isfinite(best) else None, "epochs": state.epoch}


def train_epoch(run: TrainingRun, state: GradientState, net: torch.nn.Module, epoch: int) -> float:
    """One pass over the training records in the epoch's seeded order; the mean loss per structure."""
    training = run.options["training"]
    bs = int(training["batch_size"])
    form, cutoff = run.options["loss"]["form"], run.options["loss"]["pair_cutoff"]
    ctx = run.ctx
    order = np.random.default_rng([int(run.options["seed"]), epoch]).permutation(len(run.train))
    total = 0.0
    for start in range(0, len(order), bs):
        chunk = [run.train[i] for i in order[start : start + bs]]
        batch = Batch(ddp.shard(chunk, ctx), run.basis, dtype=run.dtype, device=run.device, pair_cutoff=cutoff)
        state.optimizer.zero_grad(set_to_none=True)
        loss = batch_loss(net, batch, form) * (ctx.world / len(chunk))
        if not bool(torch.isfinite(loss)):
            raise RhoModelError(
                f"epoch {epoch}: the training loss is {float(loss)} (diverged); nothing of this epoch was kept: "
                "lower training.lr or set training.grad_clip"
            )
        loss.backward()
        if training["grad_clip"] is not None:
            torch.nn.utils.clip_grad_norm_(state.params, float(training["grad_clip"]))
        state.optimizer.step()
        total += ddp.all_sum(float(loss.detach()) * len(chunk) / ctx.world, ctx, run.device)
    return total / len(run.train)


def end_epoch(run: TrainingRun, state: GradientState, epoch: int, val_loss: float) -> None:
    """Keep the best model (model.pt), count epochs without improvement, write the epoch's checkpoint."""
    state.epoch = epoch
    if not math.isfinite(val_loss):
        raise RhoModelError(f"epoch {epoch}: the validation loss is {val_loss} (diverged): lower training.lr")
    if val_loss < state.best_val:
        state.best_val, state.bad_epochs = val_loss, 0
        if run.ctx.main:
            run.save(state.model, "model.pt")
            state.saved = True
            run.drop_stale()
    else:
        state.bad_epochs += 1
    every = int(run.options["training"]["checkpoint_every"])
    if run.ctx.main and (epoch % every == 0 or epoch == int(run.options["training"]["epochs"])):
        ckpt = run.checkpoints / f"epoch_{epoch:06d}.pt"
        run.stale[:] = [p for p in run.stale if p != ckpt]  # replaced in place, atomically
        save_checkpoint(
            ckpt,
            model=state.model,
            optimizer=state.optimizer,
            scheduler=state.scheduler,
            epoch=epoch,
            best_val=state.best_val,
            bad_epochs=state.bad_epochs,
            options=run.options,
        )
        run.drop_stale()
