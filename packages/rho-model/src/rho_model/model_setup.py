"""A new model from a dataset and options: descriptors, basis check, model config, transforms set from statistics."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rho_data import AuxiliaryBasis
from rho_data.elements import atomic_number
from rho_data.layout import Key, basis_keys, key_name
from rho_data.orbital_fields import DENSITY_TARGET

from .cache import DescriptorStore, geometry_digest
from .data import Record, dataset_target
from .descriptors import DescriptorSpec, LambdaSoap
from .errors import RhoModelError
from .model import RhoModel, build_model
from .netcode import read_net_file
from .statistics import baseline_means, feature_statistics, one_centre_inverse_sqrt


def descriptor_store(
    options: dict, dataset, *, progress=None, spec: DescriptorSpec | None = None, base_dir: str | Path | None = None
) -> DescriptorStore:
    """Cached lambda-SOAP features of every structure of a rho-data dataset.

    A relative ``descriptor.cache_dir`` is taken relative to ``base_dir`` (the run folder in
    :func:`rho_model.train.run_training`; the current directory when None).
    """
    basis = dataset.basis
    cache_dir = options["descriptor"]["cache_dir"]
    if cache_dir is not None and base_dir is not None:
        cache_dir = Path(base_dir) / Path(cache_dir).expanduser()
    if spec is None:
        keys = basis_keys(basis)
        spec = DescriptorSpec.from_options(options["descriptor"], keys, [atomic_number(s) for s in basis.symbols])
    calc = LambdaSoap(spec)
    return DescriptorStore(
        calc,
        lambda idx: [g.to_ase() for g in dataset.geometries(idx)],
        len(dataset),
        dataset.numbers,
        content_key=geometry_digest(dataset) if cache_dir is not None else "",
        cache_dir=cache_dir,
        chunk=options["descriptor"]["cache_chunk"],
        max_atoms=options["descriptor"]["max_atoms"],
        progress=progress,
    )


def basis_counts(basis: AuxiliaryBasis) -> dict[str, list[int]]:
    return {s: list(basis[s].n_radial) for s in basis.symbols}


def check_basis(model_config: dict, basis: AuxiliaryBasis, where: str) -> None:
    """Refuse data whose auxiliary basis differs from the model's."""
    mine = model_config["basis"]
    theirs = basis_counts(basis)
    for sym, counts in theirs.items():
        if sym not in mine:
            raise RhoModelError(f"{where}: element {sym} is not known to the model (it knows {sorted(mine)})")
        if list(counts) != list(mine[sym]):
            raise RhoModelError(f"{where}: the basis of {sym} has radial counts {counts}, the model was trained with {mine[sym]}")


def model_config(
    options: dict,
    basis: AuxiliaryBasis,
    spec: DescriptorSpec,
    feature_sizes: dict[str, int],
    stats: dict[str, Any],
    *,
    whiten_out: bool,
    dataset_id: str,
    net_source: str | None = None,
    target: str = DENSITY_TARGET,
) -> dict[str, Any]:
    keys = list(spec.keys)
    input_sizes = {
        key_name(k): (
            stats["projection"][key_name(k)].shape[1] if key_name(k) in stats["projection"] else feature_sizes[key_name(k)]
        )
        for k in keys
    }
    return {
        "keys": [list(k) for k in keys],
        "basis": basis_counts(basis),
        "descriptor": spec.hypers(),
        "feature_sizes": feature_sizes,
        "input_sizes": input_sizes,
        "out_sizes": {key_name(k): basis[k[1]].n_radial[k[0]] for k in keys},
        "project": bool(stats["projection"]),
        "whiten_out": whiten_out,
        "model": dict(options["model"]),
        "net_source": net_source,
        "dtype": options["dtype"],
        "device": options["device"],
        "dataset_id": dataset_id,
        "target": target,
    }


def set_statistics(
    model: RhoModel, stats: dict[str, Any], baselines: dict[str, np.ndarray | None], out_transform: dict[str, np.ndarray] | None
) -> None:
    with torch.no_grad():
        for name, t in model.transforms.items():
            t.scale.fill_(float(stats["scale"][name]))
            if name in stats["projection"]:
                t.projection.copy_(torch.as_tensor(stats["projection"][name]))
            if out_transform is not None and t.out_transform.shape[0]:
                t.out_transform.copy_(torch.as_tensor(out_transform[name]))
            if t.baseline.shape[0] and baselines.get(name) is not None:
                t.baseline.copy_(torch.as_tensor(baselines[name]))


def new_model(
    options: dict, dataset, train_records: Sequence[Record], spec: DescriptorSpec, sizes: dict[Key, int], *, gradient: bool
) -> RhoModel:
    """Model with statistics from the training records (scale, projection, baseline, whitening)."""
    basis = dataset.basis
    condition = gradient and bool(options["training"]["condition"])
    stats = feature_statistics(train_records, spec.keys, options, whiten=condition)
    net_source = None
    if options["model"]["type"] == "python":
        net_source = read_net_file(options["model"]["net_file"])
    config = model_config(
        options,
        basis,
        spec,
        {key_name(k): v for k, v in sizes.items()},
        stats,
        whiten_out=condition,
        dataset_id=dataset.dataset_id,
        net_source=net_source,
        target=dataset_target(dataset, options["data"]["target"]),
    )
    torch.manual_seed(int(options["seed"]))
    model = build_model(config, net_source=net_source, net_origin=str(options["model"]["net_file"]))
    baselines = baseline_means(train_records, spec.keys, basis) if options["model"]["baseline"] else {}
    out_t = one_centre_inverse_sqrt(train_records, basis) if condition else None
    set_statistics(model, stats, baselines, out_t)
    return model
