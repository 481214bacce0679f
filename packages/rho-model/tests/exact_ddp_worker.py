"""Run under torchrun: the exact fit data-parallel over the processes (fixed alpha by CG, validation scan dense)."""

import sys

import numpy as np
import torch

from rho_data import open_dataset
from rho_model import distributed as ddp
from rho_model.data import load_records
from rho_model.exact_fit import fit_exact
from rho_model.model_setup import descriptor_store, new_model
from rho_model.options import load_options

RUNS = {
    "fixed_cg": {"alpha_selection": "fixed", "alpha": 1e-6, "dense_max": 0, "cg_tol": 1e-13, "cg_max_iter": 20000},
    "validation_dense": {"alpha_selection": "validation", "dense_max": 10**6, "cg_tol": 1e-12},
}


def fits(dataset, cache, world_override=None):
    """{run: weights of the head (flat), chosen alpha} for 9 training and 4 validation waters."""
    from helpers import SMALL_DESCRIPTOR

    ctx = ddp.init("cpu") if world_override is None else ddp.Context()
    ds = open_dataset(dataset)
    out = {}
    for name, fit in RUNS.items():
        opts = load_options(
            overrides={"descriptor": dict(SMALL_DESCRIPTOR, cache_dir=cache), "fit": {"alphas": [1e-8, 1e-6, 1e-4], **fit}}
        )
        store = descriptor_store(opts, ds)
        train, val = list(range(9)), list(range(9, 13))
        recs = load_records(ds, train, store.gather(train))
        val_recs = load_records(ds, val, store.gather(val))
        model = new_model(opts, ds, recs, store.calc.spec, store.calc.sizes, gradient=False)
        info = fit_exact(model, recs, ds.basis, opts["fit"], 0, lambda _: None, val_records=val_recs, reducer=ddp.Reducer(ctx))
        out[name] = torch.cat([p.detach().reshape(-1) for p in model.head.parameters()]).numpy()
        out[name + "_alpha"] = np.array([info["alpha"]])
        out[name + "_processes"] = np.array([info["processes"]])
    return ctx, out


if __name__ == "__main__":
    ctx, result = fits(sys.argv[1], sys.argv[2])
    if ctx.main:
        np.savez(sys.argv[3], **result)
    ddp.finish(ctx)
