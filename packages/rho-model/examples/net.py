"""Example user network for ``model.type: python`` (``model.net_file: examples/net.py``).

rho-train calls ``net(in_keys, in_properties, out_properties, dtype, device)`` with the
metadata of the features (keys o3_lambda, o3_sigma, center_type; one properties Labels per
key) and of the basis (properties [n] per key), as rholearn's net.py receives them. The
returned module maps a TensorMap of features to a TensorMap of coefficients with the same
keys, samples (system, atom) and components [o3_mu].

This one: EquivariantLinear to 16 channels -> InvariantLayerNorm -> InvariantTanh on invariant
blocks and a sigmoid norm gate on covariant ones -> EquivariantLinear to the basis.
"""

import torch
from metatensor.torch.learn import nn


def net(in_keys, in_properties, out_properties, dtype, device) -> torch.nn.Module:
    hidden = 16
    invariant = [i for i in range(len(in_keys)) if int(in_keys.entry(i)[0]) == 0]
    gates = [torch.nn.Identity() if i in invariant else torch.nn.Sigmoid() for i in range(len(in_keys))]
    return nn.Sequential(
        in_keys,
        nn.EquivariantLinear(in_keys, [len(p) for p in in_properties], hidden, dtype=dtype, device=device),
        nn.InvariantLayerNorm(in_keys, [hidden] * len(invariant), dtype=dtype, device=device),
        nn.InvariantTanh(in_keys),
        nn.EquivariantTransformation(gates, in_keys, hidden, out_features=hidden),
        nn.EquivariantLinear(in_keys, hidden, out_properties=out_properties, dtype=dtype, device=device),
    )
