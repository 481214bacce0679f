"""ML options: defaults -> user YAML -> command-line overrides, validated strictly.

Unknown keys are errors; the expanded options are written next to every run.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from rho_data.settings import merge_settings
from rho_data.settings import parse_override as rho_parse_override

from .errors import RhoModelError
from .nn import check_layers

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
        # structures per descriptor cache file (null cache_dir = no cache)
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


def load_options(path: str | Path | None = None, overrides: Mapping | None = None) -> dict[str, Any]:
    """Defaults, then the YAML file at ``path``, then ``overrides``; unknown keys raise."""
    options = copy.deepcopy(DEFAULTS)
    if path is not None:
        path = Path(path)
        try:
            user = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise RhoModelError(f"{path}: cannot read the options file: {err}".splitlines()[0]) from None
        if not isinstance(user, Mapping):
            raise RhoModelError(f"{path}: the options file must hold a mapping, got {type(user).__name__}")
        options = _merge(options, user, str(path))
    if overrides:
        options = _merge(options, overrides, "command line")
    validate(options)
    return options


def parse_override(text: str) -> dict:
    """``a.b=value`` (value parsed as YAML) -> {"a": {"b": value}}."""
    return rho_parse_override(text, yaml.safe_load, error=lambda message: RhoModelError(f"command line: {message}"))


def validate(options: Mapping) -> None:
    """Value checks that the merge cannot do."""
    choices = {
        ("model", "type"): ("linear", "deep", "python"),
        ("fit", "method"): ("exact", "gradient"),
        ("training", "optimizer"): ("adam", "adamw"),
        ("training", "scheduler"): (None, "step", "exponential", "plateau", "cosine"),
        ("loss", "form"): ("overlap", "projections"),
    }
    for (section, key), allowed in choices.items():
        if options[section][key] not in allowed:
            raise RhoModelError(f"options: {section}.{key} must be one of {list(allowed)}, got {options[section][key]!r}")
    if options["dtype"] not in ("float64", "float32"):
        raise RhoModelError(f"options: dtype must be float64 or float32, got {options['dtype']!r}")
    if options["descriptor"]["body_order"] != 3:
        raise RhoModelError("options: descriptor.body_order: only 3 (lambda-SOAP) is implemented")
    if options["fit"]["method"] == "exact" and options["model"]["type"] != "linear":
        raise RhoModelError("options: fit.method 'exact' needs model.type 'linear'; use fit.method 'gradient'")
    check_layers(options["model"]["layers"])
    for key in ("max_atoms", "cache_chunk"):
        if not isinstance(options["descriptor"][key], int) or int(options["descriptor"][key]) < 1:
            raise RhoModelError(f"options: descriptor.{key} must be an integer >= 1, got {options['descriptor'][key]!r}")
    if options["model"]["type"] == "python" and not options["model"]["net_file"]:
        raise RhoModelError("options: model.type 'python' needs model.net_file")
    fr = options["data"]["fractions"]
    if len(fr) != 3 or any(f < 0 for f in fr) or sum(fr) > 1 + 1e-9:
        raise RhoModelError(f"options: data.fractions must be three fractions (train, val, test) summing to <= 1, got {fr}")
    for key in ("epochs", "batch_size", "checkpoint_every"):
        if int(options["training"][key]) < 1:
            raise RhoModelError(f"options: training.{key} must be >= 1, got {options['training'][key]}")
    for key in ("alpha_extend", "cv_patience"):
        if int(options["fit"][key]) < 0:
            raise RhoModelError(f"options: fit.{key} must be >= 0, got {options['fit'][key]}")
    if not all(0 < float(options["fit"][k]) < 1 for k in ("cv_tol", "warm_tol", "cg_tol")):
        raise RhoModelError("options: fit.cv_tol, fit.warm_tol and fit.cg_tol must be relative residuals between 0 and 1")
    if int(options["fit"]["cv_folds"]) < 2:
        raise RhoModelError(f"options: fit.cv_folds must be >= 2, got {options['fit']['cv_folds']}")


def dump_options(options: Mapping) -> str:
    return yaml.safe_dump(dict(options), sort_keys=False)
