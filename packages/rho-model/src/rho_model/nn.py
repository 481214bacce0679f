"""Trainable heads built from metatensor-learn modules (``metatensor.torch.learn.nn``).

A head maps a TensorMap of features, keys (o3_lambda, o3_sigma, center_type), samples
(system, atom), components [o3_mu], to a TensorMap of coefficients with the same keys and
samples and properties [n]. Equivariance holds by construction: every module either mixes
only the property axis (``EquivariantLinear``, bias on invariant blocks only), acts only on
invariant blocks (``InvariantLayerNorm``, ``InvariantSiLU``...), or scales covariant blocks by
a function of their norm over o3_mu (``EquivariantTransformation``): for a rotation with real
Wigner matrix D^l, (D x) W = D (x W) and |D x| = |x|.

The YAML ``model.layers`` list describes the hidden layers, one single-key mapping each:

    linear: WIDTH                  EquivariantLinear to WIDTH channels
    layer_norm: true               InvariantLayerNorm (invariant blocks; others unchanged)
    activation: silu|tanh|relu     EquivariantTransformation: act(x) on invariant blocks,
                                   x * sigmoid(|x|) on covariant blocks
    invariant_activation: silu|tanh|relu   InvariantSiLU/Tanh/ReLU (covariant blocks unchanged)

A final EquivariantLinear to the basis's radial channels is always appended.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from metatensor.torch import Labels
from metatensor.torch.learn import nn as mnn

from .layers import check_layers  # the names of _TORCH_ACTIVATIONS are layers.ACTIVATIONS

Key = tuple[int, int]

_TORCH_ACTIVATIONS = {"silu": torch.nn.SiLU, "tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}
_INVARIANT_ACTIVATIONS = {"silu": mnn.InvariantSiLU, "tanh": mnn.InvariantTanh, "relu": mnn.InvariantReLU}


def key_labels(keys: Sequence[Key]) -> Labels:
    """Labels (o3_lambda, o3_sigma=1, center_type) of the keys, in order."""
    return Labels(["o3_lambda", "o3_sigma", "center_type"], torch.tensor([[l, 1, z] for l, z in keys], dtype=torch.int32))


def range_labels(name: str, n: int) -> Labels:
    return Labels([name], torch.arange(n, dtype=torch.int32).reshape(-1, 1))


def component_labels(l: int) -> Labels:
    return Labels(["o3_mu"], torch.arange(-l, l + 1, dtype=torch.int32).reshape(-1, 1))


def linear_head(
    in_keys: Labels, in_properties: list[Labels], out_properties: list[Labels], dtype: torch.dtype, device: str | torch.device
) -> mnn.EquivariantLinear:
    """One EquivariantLinear per key, bias on invariant blocks only (the default model)."""
    return mnn.EquivariantLinear(
        in_keys, [len(p) for p in in_properties], out_properties=out_properties, bias=True, dtype=dtype, device=device
    )


def deep_head(
    in_keys: Labels,
    in_properties: list[Labels],
    out_properties: list[Labels],
    layers: list,
    dtype: torch.dtype,
    device: str | torch.device,
) -> mnn.Sequential:
    """The YAML layer list (see module docstring) followed by an EquivariantLinear to the basis."""
    invariant = [i for i in range(len(in_keys)) if int(in_keys.entry(i)[0]) == 0]
    widths = [len(p) for p in in_properties]
    modules: list[torch.nn.Module] = []
    for kind, value in check_layers(layers):
        if kind == "linear":
            modules.append(mnn.EquivariantLinear(in_keys, widths, [value] * len(widths), bias=True, dtype=dtype, device=device))
            widths = [value] * len(widths)
        elif kind == "layer_norm":
            modules.append(mnn.InvariantLayerNorm(in_keys, [widths[i] for i in invariant], dtype=dtype, device=device))
        elif kind == "invariant_activation":
            modules.append(_INVARIANT_ACTIVATIONS[value](in_keys))
        else:
            act = [_TORCH_ACTIVATIONS[value]() if i in invariant else torch.nn.Sigmoid() for i in range(len(in_keys))]
            modules.append(mnn.EquivariantTransformation(act, in_keys, widths, out_features=widths))
    modules.append(mnn.EquivariantLinear(in_keys, widths, out_properties=out_properties, bias=True, dtype=dtype, device=device))
    return mnn.Sequential(in_keys, *modules)
