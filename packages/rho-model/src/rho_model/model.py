"""RhoModel: fixed per-key input/output transforms around a trainable head (its file: :mod:`rho_model.model_file`).

    features X_k --(scale s_k, optional projection P_k)--> head --(optional T_k)--> + baseline_k

P_k is a PCA reduction or a whitening of the features, T_k = O_l^{-1/2} whitens the outputs
with the one-centre overlap (gradient training); both are linear maps of the property axis,
so equivariance is kept.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from metatensor.torch import Labels, TensorBlock, TensorMap
from metatensor.torch.learn import nn as mnn
from torch import nn

from rho_data.layout import Key, key_name
from rho_data.yaml_input import short_repr

from .errors import RhoModelError
from .netcode import check_user_model, user_head
from .nn import component_labels, deep_head, key_labels, linear_head, range_labels

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def split_weights(weights: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
    """(W (q, n), bias (n) or None) per key from the stacked form (the bias is the last row for l = 0)."""
    return {n: ((w[:-1], w[-1]) if n.startswith("l0_") else (w, None)) for n, w in weights.items()}


class KeyTransform(nn.Module):
    """Fixed maps of one key: x -> (s x) P before the head, y -> y T + baseline after it."""

    def __init__(
        self,
        l: int,
        n_features: int,
        n_inputs: int,
        n_out: int,
        project: bool,
        whiten_out: bool,
        dtype: torch.dtype,
        device: str | torch.device,
    ):
        super().__init__()
        self.l = l
        self.n_out = n_out
        self.register_buffer("scale", torch.ones((), dtype=dtype, device=device))
        self.register_buffer(
            "projection",
            torch.eye(n_features, n_inputs, dtype=dtype, device=device)
            if project
            else torch.zeros(0, 0, dtype=dtype, device=device),
        )
        self.register_buffer(
            "out_transform",
            torch.eye(n_out, dtype=dtype, device=device) if whiten_out else torch.zeros(0, 0, dtype=dtype, device=device),
        )
        self.register_buffer("baseline", torch.zeros(n_out if l == 0 else 0, dtype=dtype, device=device))

    def pre(self, x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        """(s x) P; ``inplace`` scales x itself (a caller's own temporary: saves a copy of the features)."""
        x = x.mul_(self.scale) if inplace else x * self.scale
        if self.projection.shape[0] > 0:
            x = x @ self.projection
        return x

    def post(self, y: torch.Tensor) -> torch.Tensor:
        if self.out_transform.shape[0] > 0:
            y = y @ self.out_transform
        if self.baseline.shape[0] > 0:
            y = y + self.baseline
        return y


class RhoModel(mnn.Module):
    """{key name: features (atoms, 2l+1, q)} -> {key name: coefficients (atoms, 2l+1, n_radial)}.

    The head sees and returns metatensor TensorMaps (keys o3_lambda, o3_sigma, center_type;
    samples system, atom; components o3_mu); the fixed transforms act on plain tensors.
    """

    __jit_unused_properties__ = ["keys"]

    def __init__(self, config: dict[str, Any], head: torch.nn.Module):
        super().__init__()
        self.config = config
        dtype, device = DTYPES[config["dtype"]], config.get("device", "cpu")
        keys = [tuple(k) for k in config["keys"]]
        self.transforms = nn.ModuleDict()
        for k in keys:
            name = key_name(k)
            self.transforms[name] = KeyTransform(
                k[0],
                config["feature_sizes"][name],
                config["input_sizes"][name],
                config["out_sizes"][name],
                config["project"],
                config["whiten_out"],
                dtype,
                device,
            )
        in_keys, in_props, _ = head_metadata(config)
        self.register_buffer("in_keys", in_keys, persistent=False)
        self.register_buffer("in_properties", in_props, persistent=False)
        self.register_buffer("components", [component_labels(k[0]) for k in keys], persistent=False)
        self.head = head

    @property
    def keys(self) -> list[Key]:
        return [tuple(k) for k in self.config["keys"]]  # type: ignore[misc]

    def forward(
        self,
        features: dict[str, torch.Tensor],
        samples: Optional[dict[str, torch.Tensor]] = None,  # noqa: UP045 - TorchScript reads Optional
        overwrite_features: bool = False,
    ) -> dict[str, torch.Tensor]:
        """``samples[name]`` (atoms, 2) holds (system, atom) of each row; default (0, row).
        ``overwrite_features``: the features are the caller's temporaries and may be scaled in place.

        Keys without atoms in this input are left out of the TensorMap given to the head
        (metatensor-learn module maps accept a subset of their keys) and get empty outputs.
        """
        blocks: list[TensorBlock] = []
        present: list[int] = []
        pre: list[torch.Tensor] = []
        i = 0
        for name, t in self.transforms.items():
            x = t.pre(features[name], overwrite_features)
            pre.append(x)
            if x.shape[0] > 0:
                if samples is not None:
                    s = samples[name].to(torch.int32)
                else:
                    rows = torch.arange(x.shape[0], dtype=torch.int32, device=x.device)
                    s = torch.stack([torch.zeros_like(rows), rows], dim=1)
                blocks.append(TensorBlock(x, Labels(["system", "atom"], s), [self.components[i]], self.in_properties[i]))
                present.append(i)
            i += 1  # noqa: SIM113 - TorchScript cannot enumerate a ModuleDict
        keys = Labels(self.in_keys.names, self.in_keys.values[torch.tensor(present, dtype=torch.long)])
        y = self.head(TensorMap(keys, blocks))
        out: dict[str, torch.Tensor] = {}
        i = 0
        j = 0
        for name, t in self.transforms.items():
            if j < len(present) and present[j] == i:
                values = y.block(j).values
                j += 1
            else:
                values = pre[i].new_zeros((0, pre[i].shape[1], t.n_out))
            out[name] = t.post(values)
            i += 1  # noqa: SIM113 - TorchScript cannot enumerate a ModuleDict
        return out

    # ---- names and weights ----------------------------------------------------------------------
    def key_modules(self) -> dict[str, tuple[str, torch.nn.Module]]:
        """Key name -> (state-dict prefix, module) of the head's per-key modules ({} for other heads).

        The one place that knows metatensor-learn's layout: a ``ModuleMap`` (``head.module_map`` of
        ``EquivariantLinear`` and ``Sequential``) keeps the module of its i-th key in its
        ``module_list`` attribute, which metatensor-learn has no public accessor for.
        """
        module_map = getattr(self.head, "module_map", None)
        if not isinstance(module_map, mnn.ModuleMap):
            return {}
        names = [key_name(k) for k in self.keys]
        return {names[i]: (f"head.module_map.module_list.{i}", m) for i, m in enumerate(module_map.module_list) if i < len(names)}

    def state_names(self) -> dict[str, str]:
        """State-dict name -> readable name: ``head.{key name}.rest`` for the per-key modules of the head
        (:meth:`key_modules`), e.g. ``head.l0_z8.weight`` (linear head) or ``head.l1_z8.0.weight``
        (first layer of a deep head); other names are kept (``transforms.l0_z8.scale``)."""
        prefixes = [(prefix + ".", f"head.{name}.") for name, (prefix, _) in self.key_modules().items()]
        out = {}
        for name in self.state_dict():
            out[name] = next((new + name[len(old) :] for old, new in prefixes if name.startswith(old)), name)
        if len(set(out.values())) != len(out):
            raise RhoModelError("the model's parameter names are not unique once read by key (a user network's module names?)")
        return out

    def parameter_names(self) -> dict[str, str]:
        """Parameter name -> readable name (:meth:`state_names`), as ``training.freeze`` matches them."""
        names = self.state_names()
        return {name: names[name] for name, _ in self.named_parameters()}

    def set_linear_weights(self, weights: dict[str, torch.Tensor]) -> None:
        """Set the linear head to the map x -> x W + b of the exact fit (before the baseline).

        ``weights[key name]`` is W (q, n) with, for l = 0 keys, the bias b as a last row (the form
        of :meth:`rho_model.normal_equations.LinearProblem.weights`). The output whitening T is
        undone (the head's W T^-1), and torch's Linear holds W transposed.
        """
        linears = self._linears()
        with torch.no_grad():
            for name, (w, b) in split_weights(weights).items():
                t = self.transforms[name]
                if t.out_transform.shape[0]:
                    inv = torch.linalg.inv(t.out_transform)
                    w, b = w @ inv, (b @ inv if b is not None else None)
                linears[name].weight.copy_(w.T)
                if b is not None:
                    linears[name].bias.copy_(b)

    def linear_weights(self) -> dict[str, torch.Tensor]:
        """The inverse of :meth:`set_linear_weights`: W (q, n) per key, with the bias row for l = 0."""
        out = {}
        with torch.no_grad():
            for name, lin in self._linears().items():
                t = self.transforms[name]
                w = lin.weight.T
                b = lin.bias if lin.bias is not None and name.startswith("l0_") else None
                if t.out_transform.shape[0]:
                    w, b = w @ t.out_transform, (b @ t.out_transform if b is not None else None)
                out[name] = torch.cat([w, b[None]]) if b is not None else w.clone()
        return out

    def _linears(self) -> dict[str, torch.nn.Linear]:
        if not isinstance(self.head, mnn.EquivariantLinear):
            raise RhoModelError(f"linear weights need an EquivariantLinear head, got {type(self.head).__name__}")
        return {name: module for name, (_, module) in self.key_modules().items()}


def head_metadata(config: dict[str, Any]) -> tuple[Labels, list[Labels], list[Labels]]:
    """(in_keys, in_properties, out_properties) given to a head, as rholearn's net.py receives them."""
    keys = [tuple(k) for k in config["keys"]]
    return (
        key_labels(keys),
        [range_labels("feature", config["input_sizes"][key_name(k)]) for k in keys],
        [range_labels("n", config["out_sizes"][key_name(k)]) for k in keys],
    )


def build_model(config: dict[str, Any], *, net_source: str | None = None, net_origin: str = "net.py") -> RhoModel:
    """A model with freshly initialised head from a full model config (see :func:`model_config`).

    A user network (``model.type: python``) is built from ``net_source``, code the caller read
    from a file the user named; the ``net_source`` stored in a config is never run from here.
    """
    dtype, device = DTYPES[config["dtype"]], config.get("device", "cpu")
    kind = config["model"]["type"]
    in_keys, in_props, out_props = head_metadata(config)
    if kind == "linear":
        head: torch.nn.Module = linear_head(in_keys, in_props, out_props, dtype, device)
    elif kind == "deep":
        head = deep_head(in_keys, in_props, out_props, list(config["model"]["layers"]), dtype, device)
    elif kind == "python":
        if net_source is None:
            raise RhoModelError(f"{net_origin}: a python network needs its net.py source (none was given)")
        head = user_head(net_source, net_origin, in_keys, in_props, out_props, dtype, device)
    else:
        raise RhoModelError(f"model.type {short_repr(kind)} is not one of linear, deep, python")
    model = RhoModel(config, head)
    if kind == "python":
        check_user_model(model, net_origin)
    return model
