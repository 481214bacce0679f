"""A training run: splits, descriptors, exact fit and/or gradient training, logs, checkpoints."""

from __future__ import annotations

import csv
import fnmatch
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rho_data import open_dataset
from rho_data.atomic import write_text_atomic
from rho_data.layout import key_name

from . import distributed as ddp
from .checkpoint import checkpoint_files, latest_checkpoint, load_checkpoint, save_checkpoint
from .data import Batch, Record, load_records
from .descriptors import DescriptorSpec
from .errors import RhoModelError
from .model import DTYPES, RhoModel, build_from_payload, model_config_of, network_source, read_payload, save_model
from .options import dump_options, validate
from .pipeline import baseline_means, check_basis, descriptor_store, fit_exact, new_model
from .schedules import make_optimizer, make_scheduler, step_scheduler
from .splits import make_splits, write_index_file


class RunLog:
    """Lines to ``log.txt`` (and a callback), epochs to ``log.csv``."""

    FIELDS = ["epoch", "train_loss", "val_loss", "val_rmse_percent", "dt_train", "dt_val", "lr"]

    def __init__(self, folder: Path, echo: Callable[[str], None] | None, enabled: bool, append: bool):
        self.folder, self.echo, self.enabled = folder, echo, enabled
        if enabled:
            mode = "a" if append else "w"
            self.text = open(folder / "log.txt", mode)
            new_csv = not append or not (folder / "log.csv").exists()
            self.csv_file = open(folder / "log.csv", mode if not new_csv else "w", newline="")
            self.csv = csv.writer(self.csv_file)
            if new_csv:
                self.csv.writerow(self.FIELDS)

    def line(self, text: str) -> None:
        if not self.enabled:
            return
        self.text.write(text + "\n")
        self.text.flush()
        if self.echo:
            self.echo(text)

    def epoch(self, values: dict[str, float]) -> None:
        self.line(" ".join(f"{k} {values[k]:.6g}" if k != "epoch" else f"epoch {values[k]}" for k in self.FIELDS))
        if self.enabled:
            self.csv.writerow([values[k] for k in self.FIELDS])
            self.csv_file.flush()

    def close(self) -> None:
        if self.enabled:
            self.text.close()
            self.csv_file.close()


def batch_loss(model, batch: Batch, form: str) -> torch.Tensor:
    """Sum over the batch's structures of the overlap-metric loss."""
    pred = batch.assemble(model(batch.features, batch.samples))
    if form == "projections":
        return batch.overlap.quadratic(pred) - 2.0 * torch.dot(pred, batch.projections) + batch.constant
    return batch.overlap.quadratic(pred - batch.reference)


#: what the printed validation loss is: the mean over structures of the overlap-metric error.
LOSS_NAME = "val overlap-metric loss (mean dc^T S dc per structure, e^2/bohr^3)"
#: SALTED's coefficient %RMSE 100 sqrt(sum dc^T S dc / sum (c - cbar)^T S (c - cbar)), cbar = species-mean l=0 of train.
RMSE_NAME = "val %RMSE (SALTED)"


def evaluate(model, records: Sequence[Record], basis, options: dict, dtype, device) -> float:
    """Mean per-structure overlap-metric loss (no pair cutoff, overlap form)."""
    return validation_metrics(model, records, basis, options, dtype, device)["loss"]


def validation_metrics(
    model, records: Sequence[Record], basis, options: dict, dtype, device, means: dict[str, np.ndarray | None] | None = None
) -> dict[str, float]:
    """``loss``: mean per-structure overlap-metric loss (no pair cutoff, overlap form); with the
    species means ``means`` of the training set's l = 0 coefficients (:func:`baseline_means`) also
    ``rmse_percent``, SALTED's coefficient %RMSE 100 sqrt(sum dc^T S dc / sum (c - cbar)^T S (c - cbar))."""
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


def _metrics_line(prefix: str, metrics: dict[str, float]) -> str:
    return f"{prefix}{LOSS_NAME} {metrics['loss']:.6g}; {RMSE_NAME} {metrics['rmse_percent']:.4g}"


def parameter_names(model: RhoModel) -> dict[str, str]:
    """Readable parameter names: ``head.module_map.module_list.{i}`` becomes ``head.{key name}``,
    e.g. ``head.l0_z8.weight`` (linear) or ``head.l1_z8.0.weight`` (first layer of a deep head)."""
    names = [key_name(tuple(k)) for k in model.config["keys"]]
    out = {}
    for name, _ in model.named_parameters():
        match = re.match(r"^head\.module_map\.module_list\.(\d+)\.(.*)$", name)
        out[name] = f"head.{names[int(match.group(1))]}.{match.group(2)}" if match and int(match.group(1)) < len(names) else name
    return out


def freeze(model: RhoModel, patterns: Sequence[str]) -> list[str]:
    """Stop gradients of parameters whose readable name (:func:`parameter_names`) matches a glob,
    e.g. 'head.l0_*' (all invariant keys) or 'head.*.0.*' (first layer of a deep head)."""
    frozen = []
    readable = parameter_names(model)
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


def run_training(
    options: dict,
    dataset_path: str | Path,
    out_dir: str | Path,
    *,
    restart: bool = False,
    init_model: str | Path | None = None,
    echo: Callable[[str], None] | None = print,
    progress=None,
    overwrite: bool = False,
    net_file: str | Path | None = None,
    trust_model_code: bool = False,
) -> dict[str, Any]:
    """Train (exact linear fit and/or gradient training) and write everything under ``out_dir``.

    A folder that already holds a run (:func:`existing_run`) is refused unless ``restart``
    (continue it) or ``overwrite`` (replace it). A python network of an ``init_model`` or a
    checkpoint is built from ``net_file`` (or, with ``trust_model_code``, from the printed
    code stored in the file), never silently from the file.
    """
    out = Path(out_dir)
    device = str(options["device"])
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RhoModelError("options: device 'cuda' requested but torch sees no GPU")
    ckpt_dir = out / "checkpoints"
    found = existing_run(out)
    if found is not None and not restart and not overwrite:
        raise RhoModelError(
            f"{out}: already holds a run ({found.name}); pass --restart to continue it or --overwrite to replace it"
        )
    if out.exists() and not out.is_dir():
        raise RhoModelError(f"{out}: is not a directory")
    ctx = ddp.init(device)
    dtype = DTYPES[options["dtype"]]
    torch.manual_seed(int(options["seed"]))
    np.random.seed(int(options["seed"]) % 2**32)
    resume = None
    if restart:
        last = latest_checkpoint(ckpt_dir)
        if last is None:
            raise RhoModelError(f"{ckpt_dir}: --restart found no checkpoint to continue from")
        resume = load_checkpoint(last)
        options = json.loads(resume["options"])
        validate(options)
    start_payload, start_origin, cfg, net = None, "", {}, (None, "")
    if resume is not None or init_model is not None:  # the model to start from, read before anything is written
        start_payload = resume if resume is not None else read_payload(init_model)
        start_origin = str(last) if resume is not None else str(init_model)
        cfg = model_config_of(start_payload, start_origin)
        cfg["device"] = device
        net = network_source(cfg, start_origin, net_file=net_file, trust_model_code=trust_model_code)
    if ctx.main:
        out.mkdir(parents=True, exist_ok=True)
    stale = [] if restart else checkpoint_files(ckpt_dir)  # of the run being replaced (--overwrite)
    log = RunLog(out, echo, ctx.main, append=restart)
    ds = None
    try:
        if ctx.active:
            log.line(f"data parallel: {ctx.world} processes ({'nccl' if device.startswith('cuda') else 'gloo'})")
        ds = open_dataset(dataset_path)
        if ctx.main and not restart:
            write_text_atomic(out / "options.yaml", dump_options(options), what="options file")
        splits = make_splits(len(ds), options["data"], ds.dataset_id)
        if ctx.main:
            (out / "splits").mkdir(exist_ok=True)
            for name, idx in splits.items():
                write_index_file(
                    out / "splits" / f"{name}.idx",
                    idx,
                    dataset_id=ds.dataset_id,
                    comment=f"{name} indices of {Path(dataset_path).name}",
                )
        spec = None
        if start_payload is not None:
            check_basis(cfg, ds.basis, str(dataset_path))
            spec = DescriptorSpec.from_hypers(cfg["descriptor"])
        store = descriptor_store(options, ds, progress=progress, spec=spec, base_dir=out)
        t0 = time.perf_counter()
        train = load_records(ds, splits["train"], store.gather(splits["train"]))
        val = load_records(ds, splits["val"], store.gather(splits["val"])) if splits["val"] else []
        log.line(f"descriptors for {len(train)} train + {len(val)} val structures in {time.perf_counter() - t0:.2f} s")
        means = baseline_means(train, store.calc.spec.keys, ds.basis)  # cbar of the validation %RMSE
        gradient = options["fit"]["method"] == "gradient"
        summary: dict[str, Any] = {"splits": {k: len(v) for k, v in splits.items()}}

        if start_payload is not None:
            model = build_from_payload(cfg, start_payload, start_origin, *net).to(device)
        else:
            model = new_model(options, ds, train, store.calc.spec, store.calc.sizes, gradient=gradient)
            if options["model"]["type"] == "linear" and (not gradient or options["training"]["warm_start"]):
                summary["exact"] = fit_exact(
                    model,
                    train,
                    ds.basis,
                    options["fit"],
                    int(options["seed"]),
                    log.line,
                    val_records=val,
                    reducer=ddp.Reducer(ctx),
                )
                metrics = validation_metrics(model, val, ds.basis, options, dtype, device, means)
                summary["exact"]["val_loss"] = metrics["loss"]
                summary["exact"]["val_rmse_percent"] = metrics["rmse_percent"]
                log.line(_metrics_line("exact fit: ", metrics))
        if not gradient:
            if ctx.main:
                save_model(model, out / "model.pt")
                _remove(stale)
                write_text_atomic(out / "fit.json", json.dumps(summary, indent=1), what="fit summary")
            ddp.finish(ctx)
            return summary

        summary["gradient"] = _gradient_loop(
            model, train, val, ds.basis, options, out, ckpt_dir, resume, log, ctx, dtype, device, progress, stale, means
        )
        if ctx.main:
            write_text_atomic(out / "fit.json", json.dumps(summary, indent=1), what="fit summary")
        ddp.finish(ctx)
        return summary
    finally:
        log.close()
        if ds is not None:
            ds.close()


def existing_run(folder: Path) -> Path | None:
    """The file that makes ``folder`` a run: its model.pt, last.pt or a checkpoint (None for a new folder)."""
    if not folder.is_dir():
        return None
    for name in ("model.pt", "last.pt"):
        if (folder / name).exists():
            return folder / name
    files = checkpoint_files(folder / "checkpoints")
    return files[-1] if files else None


def _remove(files: list[Path]) -> None:
    """Drop the checkpoints of a replaced run once the new run has written its own result."""
    for path in files:
        path.unlink(missing_ok=True)
    files.clear()


def _gradient_loop(
    model, train, val, basis, options, out, ckpt_dir, resume, log, ctx, dtype, device, progress, stale, means
) -> dict:
    training = options["training"]
    log.line(
        "train_loss, val_loss: mean dc^T S dc per structure (e^2/bohr^3; val_loss = train_loss without a validation set); "
        "val_rmse_percent: SALTED's %RMSE 100 sqrt(sum dc^T S dc / sum (c - cbar)^T S (c - cbar)), cbar from train"
    )
    frozen = freeze(model, training["freeze"])
    if frozen:
        log.line(f"frozen parameters: {', '.join(frozen)}")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(params, training)
    scheduler = make_scheduler(optimizer, training)
    start_epoch, best_val, bad = 1, math.inf, 0
    if resume is not None:
        optimizer.load_state_dict(resume["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(resume["scheduler"])
        start_epoch, best_val, bad = int(resume["epoch"]) + 1, float(resume["best_val"]), int(resume["bad_epochs"])
        torch.set_rng_state(resume["torch_rng"])
    net = model
    if ctx.active:
        net = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)  # keys absent from a shard
    bs = int(training["batch_size"])
    if ctx.active and bs < ctx.world:
        raise RhoModelError(f"options: training.batch_size {bs} is smaller than the {ctx.world} processes")
    form, cutoff = options["loss"]["form"], options["loss"]["pair_cutoff"]
    epochs = int(training["epochs"])
    task = progress.add_task("training", total=epochs, completed=start_epoch - 1) if progress is not None and ctx.main else None
    epoch = start_epoch - 1
    saved = (out / "model.pt").exists() and resume is not None
    for epoch in range(start_epoch, epochs + 1):
        t0 = time.perf_counter()
        order = np.random.default_rng([int(options["seed"]), epoch]).permutation(len(train))
        total = 0.0
        for start in range(0, len(order), bs):
            chunk = [train[i] for i in order[start : start + bs]]
            mine = ddp.shard(chunk, ctx)
            batch = Batch(mine, basis, dtype=dtype, device=device, pair_cutoff=cutoff)
            optimizer.zero_grad(set_to_none=True)
            loss = batch_loss(net, batch, form) * (ctx.world / len(chunk))
            if not bool(torch.isfinite(loss)):
                raise RhoModelError(
                    f"epoch {epoch}: the training loss is {float(loss)} (diverged); nothing of this epoch was kept: "
                    "lower training.lr or set training.grad_clip"
                )
            loss.backward()
            if training["grad_clip"] is not None:
                torch.nn.utils.clip_grad_norm_(params, float(training["grad_clip"]))
            optimizer.step()
            total += ddp.all_sum(float(loss.detach()) * len(chunk) / ctx.world, ctx, device)
        dt_train = time.perf_counter() - t0
        t1 = time.perf_counter()
        metrics = validation_metrics(model, val, basis, options, dtype, device, means) if val else None
        val_loss = metrics["loss"] if metrics is not None else total / len(train)
        dt_val = time.perf_counter() - t1
        lr = optimizer.param_groups[0]["lr"]
        step_scheduler(scheduler, val_loss)
        log.epoch(
            {
                "epoch": epoch,
                "train_loss": total / len(train),
                "val_loss": val_loss,
                "val_rmse_percent": metrics["rmse_percent"] if metrics is not None else float("nan"),
                "dt_train": dt_train,
                "dt_val": dt_val,
                "lr": lr,
            }
        )
        improved = val_loss < best_val
        if not math.isfinite(val_loss):
            raise RhoModelError(f"epoch {epoch}: the validation loss is {val_loss} (diverged): lower training.lr")
        if improved:
            best_val, bad = val_loss, 0
            if ctx.main:
                save_model(model, out / "model.pt")
                saved = True
                _remove(stale)
        else:
            bad += 1
        if ctx.main and (epoch % int(training["checkpoint_every"]) == 0 or epoch == epochs):
            ckpt = ckpt_dir / f"epoch_{epoch:06d}.pt"
            stale[:] = [p for p in stale if p != ckpt]  # replaced in place, atomically
            save_checkpoint(
                ckpt,
                model=model,
                optimizer=optimizer,
                scheduler=scheduler,
                epoch=epoch,
                best_val=best_val,
                bad_epochs=bad,
                options=options,
            )
            _remove(stale)
        if task is not None:
            progress.advance(task)
        if training["early_stopping"] is not None and bad >= int(training["early_stopping"]):
            log.line(f"early stopping at epoch {epoch}: no improvement of val_loss for {bad} epochs")
            break
    if ctx.main:
        if not saved:  # no epoch ran (training.epochs 0): the starting model is the result
            save_model(model, out / "model.pt")
        save_model(model, out / "last.pt")
        _remove(stale)
    return {"best_val_loss": best_val if math.isfinite(best_val) else None, "epochs": epoch}
