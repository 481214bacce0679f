"""ML options: defaults -> user YAML -> command-line overrides, validated strictly.

Unknown keys are errors; the expanded options are written next to every run.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from rho_data.settings import merge_settings
from rho_data.settings import parse_override as rho_parse_override
from rho_data.yaml_input import load_yaml_file, parse_yaml_text, short_repr

from .errors import RhoModelError
from .layers import check_layers

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
    """Defaults, then the YAML file at ``path``, then ``overrides``; unknown keys and bad values raise."""
    options = copy.deepcopy(DEFAULTS)
    if path is not None:
        path = Path(path)
        user = load_yaml_file(path)
        if user is None:
            user = {}
        if not isinstance(user, Mapping):
            raise RhoModelError(f"{path}: the options file must hold a mapping, got {type(user).__name__}")
        options = _merge(options, user, str(path))
        try:
            check_values(options)
        except RhoModelError as err:
            raise RhoModelError(f"{path}: {err}") from None
    if overrides:
        options = _merge(options, overrides, "command line")
    validate(options)
    return options


def parse_override(text: str) -> dict:
    """``a.b=value`` (value parsed as YAML, no aliases) -> {"a": {"b": value}}."""
    return rho_parse_override(
        text,
        lambda raw: parse_yaml_text(raw, source=f"--set {short_repr(text)}"),
        error=lambda message: RhoModelError(f"command line: {message}"),
    )


# ---- value checks: every option's type and range, errors name the dotted key ----------------


def _fail(key: str, want: str, value: Any) -> RhoModelError:
    return RhoModelError(f"options: {key} must be {want}, got {short_repr(value)}")


def _number(key: str, value: Any) -> float:
    """A real number; YAML 1.1 reads ``1e-8`` as a string, so numeric strings are accepted."""
    if isinstance(value, bool):
        raise _fail(key, "a number", value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise _fail(key, "a number", value)


def _real(key: str, value: Any, *, low: float | None = None, high: float | None = None, open_low=True, open_high=True) -> float:
    """A finite number in the given range (open or closed ends)."""
    x = _number(key, value)
    if not math.isfinite(x):
        raise _fail(key, "a finite number", value)
    if low is not None and (x < low or (open_low and x == low)):
        raise _fail(key, f"{'>' if open_low else '>='} {low:g}", value)
    if high is not None and (x > high or (open_high and x == high)):
        raise _fail(key, f"{'<' if open_high else '<='} {high:g}", value)
    return x


def _integer(key: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(key, f"an integer >= {low}", value)
    if value < low:
        raise _fail(key, f"an integer >= {low}", value)
    return value


def _choice(key: str, value: Any, allowed: tuple) -> Any:
    if isinstance(value, (dict, list)) or value not in allowed:
        raise RhoModelError(f"options: {key} must be one of {list(allowed)}, got {short_repr(value)}")
    return value


def _flag(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(key, "true or false", value)
    return value


def _text(key: str, value: Any, *, optional: bool = True) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise _fail(key, "a non-empty string" + (" or null" if optional else ""), value)
    return value


def _optional(check, key: str, value: Any, *args, **kwargs):
    return None if value is None else check(key, value, *args, **kwargs)


def _positive(key: str, value: Any) -> float:
    return _real(key, value, low=0.0)


def _fraction(key: str, value: Any) -> float:
    return _real(key, value, low=0.0, high=1.0)


def _alphas(key: str, value: Any) -> list[float]:
    if not isinstance(value, list) or not value:
        raise _fail(key, "a non-empty list of positive numbers", value)
    return [_real(f"{key}[{i}]", a, low=0.0) for i, a in enumerate(value)]


def _neighbor_types(key: str, value: Any) -> list[int] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise _fail(key, "null or a non-empty list of atomic numbers", value)
    out = [_integer(f"{key}[{i}]", z, 1) for i, z in enumerate(value)]
    if max(out) > 118:
        raise _fail(key, "a list of atomic numbers (1..118)", value)
    return out


def _fractions(key: str, value: Any) -> list[float]:
    if not isinstance(value, list) or len(value) != 3:
        raise _fail(key, "three fractions (train, val, test)", value)
    out = [_real(f"{key}[{i}]", f, low=0.0, high=1.0, open_low=False, open_high=False) for i, f in enumerate(value)]
    if sum(out) > 1 + 1e-9:
        raise RhoModelError(f"options: {key} must be three fractions (train, val, test) summing to <= 1, got {short_repr(value)}")
    return out


def _freeze(key: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(p, str) and p for p in value):
        raise _fail(key, "a list of parameter name globs", value)
    return value


def _device(key: str, value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", value):
        raise _fail(key, "'cpu', 'cuda' or 'cuda:N'", value)
    return value


#: dotted key -> check(key, value) returning the value to keep (numbers as float/int).
CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "descriptor.cutoff": _positive,
    "descriptor.cutoff_width": _positive,
    "descriptor.density_width": _positive,
    "descriptor.max_radial": lambda k, v: _integer(k, v, 0),
    "descriptor.max_angular": lambda k, v: _optional(_integer, k, v, 0),
    "descriptor.neighbor_types": _neighbor_types,
    "descriptor.body_order": lambda k, v: _choice(k, v, (3,)),
    "descriptor.pca_components": lambda k, v: _optional(_integer, k, v, 1),
    "descriptor.max_atoms": lambda k, v: _integer(k, v, 1),
    "descriptor.cache_chunk": lambda k, v: _integer(k, v, 1),
    "descriptor.cache_dir": _text,
    "model.type": lambda k, v: _choice(k, v, ("linear", "deep", "python")),
    "model.layers": lambda k, v: (check_layers(v, f"options: {k}"), v)[1],
    "model.net_file": _text,
    "model.baseline": _flag,
    "fit.method": lambda k, v: _choice(k, v, ("exact", "gradient")),
    "fit.alphas": _alphas,
    "fit.alpha": lambda k, v: _optional(_positive, k, v),
    "fit.alpha_selection": lambda k, v: _choice(k, v, ("auto", "validation", "cv", "fixed")),
    "fit.cv_folds": lambda k, v: _integer(k, v, 2),
    "fit.alpha_extend": lambda k, v: _integer(k, v, 0),
    "fit.cv_patience": lambda k, v: _integer(k, v, 0),
    "fit.cv_tol": _fraction,
    "fit.warm_tol": _fraction,
    "fit.cg_tol": _fraction,
    "fit.cg_max_iter": lambda k, v: _integer(k, v, 1),
    "fit.dense_max": lambda k, v: _integer(k, v, 0),
    "training.epochs": lambda k, v: _integer(k, v, 0),
    "training.batch_size": lambda k, v: _integer(k, v, 1),
    "training.optimizer": lambda k, v: _choice(k, v, ("adam", "adamw")),
    "training.lr": _positive,
    "training.weight_decay": lambda k, v: _real(k, v, low=0.0, open_low=False),
    "training.scheduler": lambda k, v: _choice(k, v, (None, "step", "exponential", "plateau", "cosine")),
    "training.step_size": lambda k, v: _integer(k, v, 1),
    "training.gamma": lambda k, v: _real(k, v, low=0.0, high=1.0, open_high=False),
    "training.patience": lambda k, v: _integer(k, v, 0),
    "training.warmup_epochs": lambda k, v: _integer(k, v, 0),
    "training.early_stopping": lambda k, v: _optional(_integer, k, v, 1),
    "training.grad_clip": lambda k, v: _optional(_positive, k, v),
    "training.checkpoint_every": lambda k, v: _integer(k, v, 1),
    "training.warm_start": _flag,
    "training.condition": _flag,
    "training.freeze": _freeze,
    "loss.form": lambda k, v: _choice(k, v, ("overlap", "projections")),
    "loss.pair_cutoff": lambda k, v: _optional(_positive, k, v),
    "data.train": _text,
    "data.val": _text,
    "data.test": _text,
    "data.seed": lambda k, v: _integer(k, v, 0),
    "data.fractions": _fractions,
    "seed": lambda k, v: _integer(k, v, 0),
    "dtype": lambda k, v: _choice(k, v, ("float64", "float32")),
    "device": _device,
}


def check_values(options: dict) -> None:
    """Check every option's type and range (in place: numeric strings become numbers)."""
    for dotted, check in CHECKS.items():
        *sections, key = dotted.split(".")
        node = options
        for section in sections:
            node = node[section]
        node[key] = check(dotted, node[key])


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
