"""The YAML ``model.layers`` list of a deep model, checked without importing torch (see :mod:`rho_model.nn`)."""

from __future__ import annotations

from typing import Any

from rho_data.yaml_input import short_repr

from .errors import RhoModelError

LAYER_KINDS = ("linear", "layer_norm", "activation", "invariant_activation")
ACTIVATIONS = ("relu", "silu", "tanh")


def check_layers(layers: Any, where: str = "options: model.layers") -> list[tuple[str, Any]]:
    """The YAML layer list as (kind, value) pairs; a clear error for anything else."""
    if not isinstance(layers, list):
        raise RhoModelError(f"{where} must be a list of single-key mappings, got {short_repr(layers)}")
    out = []
    for i, item in enumerate(layers):
        if not isinstance(item, dict) or len(item) != 1:
            raise RhoModelError(f"{where}[{i}] must be a single-key mapping like {{linear: 64}}, got {short_repr(item)}")
        kind, value = next(iter(item.items()))
        if kind not in LAYER_KINDS:
            raise RhoModelError(f"{where}[{i}]: unknown layer '{kind}' (known: {', '.join(LAYER_KINDS)})")
        if kind == "linear" and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise RhoModelError(f"{where}[{i}]: linear needs a positive integer width, got {short_repr(value)}")
        if kind == "layer_norm" and value is not True:
            raise RhoModelError(f"{where}[{i}]: layer_norm takes the value true, got {short_repr(value)}")
        if kind in ("activation", "invariant_activation") and value not in ACTIVATIONS:
            raise RhoModelError(f"{where}[{i}]: {kind} must be one of {sorted(ACTIVATIONS)}, got {short_repr(value)}")
        out.append((kind, value))
    return out
