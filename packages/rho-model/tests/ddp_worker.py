"""Run under torchrun: gradient of the overlap-metric loss of one batch, split over the processes."""

import sys

import numpy as np
import torch

from rho_data import open_dataset
from rho_model import distributed as ddp
from rho_model.data import Batch, load_records
from rho_model.metric import batch_loss
from rho_model.model_setup import descriptor_store, new_model
from rho_model.options import load_options


def gradients(dataset, cache, world_override=None):
    from helpers import SMALL_DESCRIPTOR

    opts = load_options(
        overrides={
            "descriptor": dict(SMALL_DESCRIPTOR, cache_dir=cache),
            "fit": {"method": "gradient"},
            "model": {"type": "deep", "layers": [{"linear": 6}, {"layer_norm": True}, {"activation": "tanh"}]},
        }
    )
    ctx = ddp.init("cpu") if world_override is None else ddp.Context()
    ds = open_dataset(dataset)
    store = descriptor_store(opts, ds)
    idx = list(range(7))
    recs = load_records(ds, idx, store.gather(idx))
    model = new_model(opts, ds, recs, store.calc.spec, store.calc.sizes, gradient=True)
    net = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True) if ctx.active else model
    mine = ddp.shard(recs, ctx)
    loss = batch_loss(net, Batch(mine, ds.basis), "overlap") * (ctx.world / len(recs))
    loss.backward()
    grads = {n: p.grad.detach().numpy().copy() for n, p in model.named_parameters()}
    return ctx, grads


if __name__ == "__main__":
    ctx, grads = gradients(sys.argv[1], sys.argv[2])
    if ctx.main:
        np.savez(sys.argv[3], **grads)
    ddp.finish(ctx)
