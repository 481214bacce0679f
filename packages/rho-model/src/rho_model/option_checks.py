"""Value checks of the ML options: every option's type and range; errors name the dotted key.

:data:`CHECKS` maps each dotted key to ``check(key, value)``, which returns the value to keep
(numeric strings, as YAML 1.1 reads ``1e-8``, become numbers) or raises a one-line
:class:`RhoModelError`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from rho_data.yaml_input import short_repr

from .errors import RhoModelError
from .layers import check_layers


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
    "fit.coarse_max": lambda k, v: _integer(k, v, 0),
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
    "data.target": _text,
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
