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

#: The default of every option; its meaning: :data:`rho_model.option_help.OPTION_HELP` (``rho-train options``).
DEFAULTS: dict[str, Any] = {
    "descriptor": {
        "cutoff": 4.0,
        "cutoff_width": 0.5,
        "density_width": 0.3,
        "max_radial": 6,
        "max_angular": None,
        "neighbor_types": None,
        "body_order": 3,
        "pca_components": None,
        "max_atoms": 500,
        "cache_chunk": 100,
        "cache_dir": "descriptor-cache",
    },
    "model": {
        "type": "linear",
        "layers": [{"linear": 64}, {"layer_norm": True}, {"activation": "silu"}],
        "net_file": None,
        "baseline": True,
    },
    "fit": {
        "method": "exact",
        "alphas": [1e-10, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3],
        "alpha": None,
        "alpha_selection": "auto",
        "cv_folds": 5,
        "alpha_extend": 4,
        "cv_patience": 2,
        "cv_tol": 1e-5,
        "warm_tol": 1e-3,
        "cg_tol": 1e-8,
        "cg_max_iter": 5000,
        "dense_max": 4000,
        "coarse_max": 3000,
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
        "form": "overlap",
        "pair_cutoff": None,
    },
    "data": {
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
