"""A training run: splits, descriptors, exact fit and/or gradient training, logs, checkpoints.

:func:`run_training` is a sequence of named steps on one :class:`~rho_model.training_run.TrainingRun`:
refuse a folder that already holds a run, read the model to start from (:func:`starting_model`),
write options and splits, load descriptors and records (:func:`load_data`), build or fit the
model (:func:`first_model`), then either save it (exact fit) or train it by gradient descent
(:func:`rho_model.gradient.gradient_training`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rho_data import open_dataset
from rho_data.atomic import write_text_atomic

from . import distributed as ddp
from .checkpoint import checkpoint_files, latest_checkpoint, load_checkpoint
from .data import load_records
from .descriptors import DescriptorSpec
from .errors import RhoModelError
from .exact_fit import fit_exact
from .gradient import gradient_training
from .model import DTYPES, RhoModel
from .model_file import build_from_payload, model_config_of, read_payload
from .model_setup import check_basis, descriptor_store, new_model
from .netcode import network_source
from .options import dump_options, validate
from .run_log import RunLog
from .splits import make_splits, write_index_file
from .statistics import baseline_means
from .training_run import StartingModel, TrainingRun, existing_run
from .validation import metrics_line


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
) -> dict[str, Any]:
    """Train (exact linear fit and/or gradient training) and write everything under ``out_dir``.

    A folder that already holds a run (:func:`existing_run`) is refused unless ``restart``
    (continue it) or ``overwrite`` (replace it). A python network of an ``init_model`` or a
    checkpoint is built from ``net_file``, never from code stored in the file.
    """
    out = Path(out_dir)
    device = str(options["device"])
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RhoModelError("options: device 'cuda' requested but torch sees no GPU")
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
        last = latest_checkpoint(out / "checkpoints")
        if last is None:
            raise RhoModelError(f"{out / 'checkpoints'}: --restart found no checkpoint to continue from")
        resume = load_checkpoint(last)
        options = json.loads(resume["options"])
        validate(options)
        start = starting_model(resume, str(last), device, net_file)
    else:
        start = starting_model(read_payload(init_model), str(init_model), device, net_file) if init_model is not None else None
    if ctx.main:
        out.mkdir(parents=True, exist_ok=True)
    run = TrainingRun(
        options,
        out,
        ctx,
        RunLog(out, echo, ctx.main, append=restart),
        device,
        dtype,
        progress=progress,
        resume=resume,
        stale=[] if restart else checkpoint_files(out / "checkpoints"),
    )
    ds = None
    try:
        if ctx.active:
            run.log.line(f"data parallel: {ctx.world} processes ({'nccl' if device.startswith('cuda') else 'gloo'})")
        ds = open_dataset(dataset_path)
        store = load_data(run, ds, Path(dataset_path), start, write_options=not restart)
        summary: dict[str, Any] = {"splits": run.split_sizes}
        model = first_model(run, ds, store, start, summary)
        if options["fit"]["method"] != "gradient":
            run.save(model, "model.pt")
            if ctx.main:
                run.drop_stale()
        else:
            summary["gradient"] = gradient_training(run, model)
        run.write_summary(summary)
        ddp.finish(ctx)
        return summary
    finally:
        run.log.close()
        if ds is not None:
            ds.close()


def starting_model(payload: dict, origin: str, device: str, net_file: str | Path | None) -> StartingModel:
    """The model a run starts from, read before anything is written (its network from ``net_file``)."""
    config = model_config_of(payload, origin)
    config["device"] = device
    return StartingModel(payload, origin, config, network_source(config, origin, net_file=net_file))


def load_data(run: TrainingRun, ds, dataset_path: Path, start: StartingModel | None, *, write_options: bool):
    """Write options.yaml and the split files, compute (or read cached) descriptors, load the records."""
    options, out = run.options, run.out
    if run.ctx.main and write_options:
        write_text_atomic(out / "options.yaml", dump_options(options), what="options file")
    splits = make_splits(len(ds), options["data"], ds.dataset_id)
    if run.ctx.main:
        (out / "splits").mkdir(exist_ok=True)
        for name, idx in splits.items():
            write_index_file(
                out / "splits" / f"{name}.idx", idx, dataset_id=ds.dataset_id, comment=f"{name} indices of {dataset_path.name}"
            )
    spec = None
    if start is not None:
        check_basis(start.config, ds.basis, str(dataset_path))
        spec = DescriptorSpec.from_hypers(start.config["descriptor"])
    store = descriptor_store(options, ds, progress=run.progress, spec=spec, base_dir=out)
    t0 = time.perf_counter()
    run.basis = ds.basis
    target = options["data"]["target"]
    run.train = load_records(ds, splits["train"], store.gather(splits["train"]), target=target)
    run.val = load_records(ds, splits["val"], store.gather(splits["val"]), target=target) if splits["val"] else []
    run.log.line(f"descriptors for {len(run.train)} train + {len(run.val)} val structures in {time.perf_counter() - t0:.2f} s")
    run.means = baseline_means(run.train, store.calc.spec.keys, ds.basis)
    run.split_sizes = {k: len(v) for k, v in splits.items()}
    return store


def first_model(run: TrainingRun, ds, store, start: StartingModel | None, summary: dict[str, Any]) -> RhoModel:
    """The saved model to start from, or a new one; a new linear model is fitted exactly unless a
    gradient run skips the warm start (``training.warm_start``)."""
    if start is not None:
        return build_from_payload(start.config, start.payload, start.origin, *start.net).to(run.device)
    options = run.options
    gradient = options["fit"]["method"] == "gradient"
    model = new_model(options, ds, run.train, store.calc.spec, store.calc.sizes, gradient=gradient)
    if options["model"]["type"] == "linear" and (not gradient or options["training"]["warm_start"]):
        exact = fit_exact(
            model,
            run.train,
            ds.basis,
            options["fit"],
            int(options["seed"]),
            run.log.line,
            val_records=run.val,
            reducer=ddp.Reducer(run.ctx),
        )
        metrics = run.val_metrics(model)
        exact["val_loss"] = metrics["loss"]
        exact["val_rmse_percent"] = metrics["rmse_percent"]
        run.log.line(metrics_line("exact fit: ", metrics))
        summary["exact"] = exact
    return model
