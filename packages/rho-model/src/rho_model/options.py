"""ML options: defaults -> user YAML -> command-line overrides, validated strictly.

Unknown keys are errors; the expanded options are written next to every run.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from rho_data.settings import load_layers, merge_settings
from rho_data.yaml_input import short_repr

from .errors import RhoModelError
from .option_checks import check_values

DEFAULTS: dict[str, Any] = {
    "descriptor": {
        # featomic SphericalExpansion (new-style hypers); max_angular null = target lmax + 2
        "cutoff": 4.0,
        "cutoff_width": 0.5,
        "density_width": 0.3,
        "max_radial": 6,
        "max_angular": None,
        # atomic numbers of the neighbour channels; null = the elements of the basis
        "neighbor_types": None,
        # body order 3 = lambda-SOAP (the only one implemented)
        "body_order": 3,
        # optional per-key PCA of the features to at most this many components (null = off)
        "pca_components": None,
        # at most this many atoms (centres) per featomic call: small structures are grouped up
        # to it, larger non-periodic ones are cut into compact pieces with their cutoff halo
        "max_atoms": 500,
        # structures per descriptor cache file; cache_dir: a relative path is inside the run
        # folder (-o), an absolute one can be shared by runs; null = no cache
        "cache_chunk": 100,
        "cache_dir": "descriptor-cache",
    },
    "model": {
        # "linear": one metatensor-learn EquivariantLinear per key (bias on invariant blocks);
        # "deep": the metatensor-learn layers below, then an EquivariantLinear to the basis;
        # "python": net(in_keys, in_properties, out_properties, dtype, device) from net_file
        "type": "linear",
        # for "deep": linear: WIDTH | layer_norm: true | activation: silu/tanh/relu (invariant
        # blocks act(x), covariant x*sigmoid(|x|)) | invariant_activation: silu/tanh/relu
        "layers": [{"linear": 64}, {"layer_norm": True}, {"activation": "silu"}],
        "net_file": None,
        "baseline": True,
    },
    "fit": {
        # "exact" (linear models only) or "gradient"
        "method": "exact",
        "alphas": [1e-10, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3],
        "alpha": None,
        # auto: fixed when fit.alpha is set, else the validation split when the run has one, else k-fold CV
        # on the training set; validation | cv | fixed force one (the test split is never used)
        "alpha_selection": "auto",
        "cv_folds": 5,
        # when CV picks an end of the grid, extend the scan by factors of 10 up to this many times per side
        "alpha_extend": 4,
        # stop scanning smaller alphas after this many in a row are worse than the best by > 1 % (0 = scan all)
        "cv_patience": 2,
        # relative CG residual of the CV solves (the final fit uses cg_tol)
        "cv_tol": 1e-5,
        # a warm-started solve (CV, and the final fit from the folds' mean) also stops only once
        # its residual is below warm_tol times the residual it started from
        "warm_tol": 1e-3,
        "cg_tol": 1e-8,
        "cg_max_iter": 5000,
        # problems with at most this many unknowns form the normal matrix once and factorise it per
        # alpha (memory 8 dense_max^2 bytes per problem, per CV fold too); larger ones use CG (0 = always CG)
        "dense_max": 4000,
    },
    "training": {
        "epochs": 100,
        "batch_size": 10,
        "optimizer": "adam",
        "lr": 1e-3,
        "weight_decay": 0.0,
        "scheduler": None,
        "step_size": 50,
        "gamma": 0.5,
        "patience": 10,
        "warmup_epochs": 5,
        "early_stopping": None,
        "grad_clip": None,
        "checkpoint_every": 10,
        "warm_start": True,
        "condition": True,
        "freeze": [],
    },
    "loss": {
        # "overlap": (d - d_ref)^T S (d - d_ref); "projections": d^T S d - 2 d^T w + d_ref^T w
        "form": "overlap",
        # keep only atom pairs closer than this (Angstrom) in training; null = all stored pairs
        "pair_cutoff": None,
    },
    "data": {
        # the field to learn: one of the dataset's targets (rho-data info lists them; e.g. homo,
        # spin_density); null = the dataset's main target
        "target": None,
        "train": None,
        "val": None,
        "test": None,
        "seed": 0,
        "fractions": [0.8, 0.1, 0.1],
    },
    "seed": 0,
    "dtype": "float64",
    "device": "cpu",
}


def _merge(base: dict, update: Mapping, source: str) -> dict:
    out = copy.deepcopy(base)
    merge_settings(out, update, error=lambda message: RhoModelError(f"{source}: {message}"), noun="option")
    return out


def load_options(
    paths: str | Path | Sequence[str | Path] | None = None,
    overrides: Mapping | None = None,
    sets: Sequence[str] = (),
) -> dict[str, Any]:
    """Defaults, then each YAML file of ``paths`` in order (a later file overrides an earlier one),
    then each ``--set`` text of ``sets`` (rho_data.settings.load_layers), then ``overrides``;
    unknown keys and bad values raise, naming the file or ``--set`` that set them."""
    files = [] if paths is None else [paths] if isinstance(paths, (str, Path)) else list(paths)

    def merge(options: dict, update: Mapping, source: str) -> None:
        merged = _merge(options, update, source)
        try:
            check_values(merged)
        except RhoModelError as err:
            raise RhoModelError(f"{source}: {err}") from None
        options.clear()
        options.update(merged)

    options = load_layers(DEFAULTS, files, sets, merge=merge, error=RhoModelError)
    if overrides:
        options = _merge(options, overrides, "command line")
    validate(options)
    return options


def validate(options: dict) -> None:
    """Every value (:func:`check_values`), then the rules that tie options together."""
    check_values(options)
    if options["fit"]["method"] == "exact" and options["model"]["type"] != "linear":
        raise RhoModelError("options: fit.method 'exact' needs model.type 'linear'; use fit.method 'gradient'")
    fit = options["fit"]
    if fit["alpha_selection"] == "fixed" and fit["alpha"] is None:
        raise RhoModelError("options: fit.alpha_selection 'fixed' needs fit.alpha")
    if fit["alpha_selection"] in ("validation", "cv") and fit["alpha"] is not None:
        raise RhoModelError(
            f"options: fit.alpha is set but fit.alpha_selection is '{fit['alpha_selection']}'; "
            "set fit.alpha to null to scan fit.alphas, or alpha_selection to fixed"
        )
    if options["model"]["type"] == "python" and not options["model"]["net_file"]:
        raise RhoModelError("options: model.type 'python' needs model.net_file")
    desc = options["descriptor"]
    if desc["cutoff_width"] > desc["cutoff"]:
        raise RhoModelError(
            f"options: descriptor.cutoff_width must be <= descriptor.cutoff ({desc['cutoff']:g}), "
            f"got {short_repr(desc['cutoff_width'])}"
        )


def dump_options(options: Mapping) -> str:
    return yaml.safe_dump(dict(options), sort_keys=False)
