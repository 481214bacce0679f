"""RhoModel: fixed per-key input/output transforms around a trainable head, and its file format.

    features X_k --(scale s_k, optional projection P_k)--> head --(optional T_k)--> + baseline_k

P_k is a PCA reduction or a whitening of the features, T_k = O_l^{-1/2} whitens the outputs
with the one-centre overlap (gradient training); both are linear maps of the property axis,
so equivariance is kept. Model files hold only tensors and plain data (loaded with
``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import torch
from metatensor.torch import Labels, TensorBlock, TensorMap
from metatensor.torch.learn import nn as mnn
from torch import nn

from rho_data.atomic import atomic_output
from rho_data.layout import Key, key_name
from rho_data.yaml_input import short_repr

from .errors import RhoModelError
from .nn import component_labels, deep_head, key_labels, linear_head, range_labels

MODEL_FORMAT = "rho-model"
MODEL_VERSION = 1
DTYPES = {"float64": torch.float64, "float32": torch.float32}


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

    def pre(self, x: torch.Tensor) -> torch.Tensor:
        x = x * self.scale
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
    ) -> dict[str, torch.Tensor]:
        """``samples[name]`` (atoms, 2) holds (system, atom) of each row; default (0, row).

        Keys without atoms in this input are left out of the TensorMap given to the head
        (metatensor-learn module maps accept a subset of their keys) and get empty outputs.
        """
        blocks: list[TensorBlock] = []
        present: list[int] = []
        pre: list[torch.Tensor] = []
        i = 0
        for name, t in self.transforms.items():
            x = t.pre(features[name])
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


def head_metadata(config: dict[str, Any]) -> tuple[Labels, list[Labels], list[Labels]]:
    """(in_keys, in_properties, out_properties) given to a head, as rholearn's net.py receives them."""
    keys = [tuple(k) for k in config["keys"]]
    return (
        key_labels(keys),
        [range_labels("feature", config["input_sizes"][key_name(k)]) for k in keys],
        [range_labels("n", config["out_sizes"][key_name(k)]) for k in keys],
    )


def _load_user_net(source: str, origin: str):
    namespace: dict[str, Any] = {"__name__": "rho_model_user_net", "__file__": origin}
    try:
        exec(compile(source, origin, "exec"), namespace)  # noqa: S102 - a net.py the user named for this call
    except Exception as err:  # noqa: BLE001 - report any failure of user code in one line
        raise RhoModelError(f"{origin}: the model file failed to load: {type(err).__name__}: {err}") from None
    if "net" not in namespace or not callable(namespace["net"]):
        raise RhoModelError(f"{origin}: defines no function net(in_keys, in_properties, out_properties, dtype, device)")
    return namespace["net"]


def _check_user_head(model: RhoModel, origin: str) -> None:
    """Run the user's network on one zero atom per key and check keys and shapes of its output."""
    feats = {
        name: torch.zeros(
            1,
            2 * k[0] + 1,
            model.config["feature_sizes"][name],
            dtype=DTYPES[model.config["dtype"]],
            device=model.config.get("device", "cpu"),
        )
        for k in model.keys
        for name in [key_name(k)]
    }
    try:
        with torch.no_grad():
            out = model(feats)
    except Exception as err:  # noqa: BLE001 - user code fails in many ways
        raise RhoModelError(
            f"{origin}: the network failed on a test input: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        ) from None
    for k in model.keys:
        name = key_name(k)
        want = (1, 2 * k[0] + 1, model.config["out_sizes"][name])
        if tuple(out[name].shape) != want:
            raise RhoModelError(f"{origin}: the network's block for key {k} has shape {tuple(out[name].shape)}, expected {want}")


def _check_user_keys(head: torch.nn.Module, in_keys: Labels, in_props: list[Labels], origin: str, dtype, device) -> None:
    blocks = [
        TensorBlock(
            torch.zeros(1, 2 * int(in_keys.entry(i)[0]) + 1, len(in_props[i]), dtype=dtype, device=device),
            Labels(["system", "atom"], torch.zeros(1, 2, dtype=torch.int32)),
            [component_labels(int(in_keys.entry(i)[0]))],
            in_props[i],
        )
        for i in range(len(in_keys))
    ]
    try:
        with torch.no_grad():
            out = head(TensorMap(in_keys, blocks))
    except Exception as err:  # noqa: BLE001 - user code fails in many ways
        raise RhoModelError(
            f"{origin}: the network failed on a test TensorMap: {type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}"
        ) from None
    if not _is_tensormap(out) or out.keys != in_keys:
        raise RhoModelError(f"{origin}: the network must return a TensorMap with the input keys in the same order")


def _is_tensormap(value: Any) -> bool:
    """metatensor.torch classes are TorchScript classes: isinstance does not work on them."""
    return isinstance(value, torch.ScriptObject) and str(value._type()).endswith("TensorMap")


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
        origin = net_origin
        net = _load_user_net(net_source, origin)
        try:
            head = net(in_keys, in_props, out_props, dtype, device)
        except Exception as err:  # noqa: BLE001 - user code fails in many ways
            raise RhoModelError(
                f"{origin}: net(...) failed: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            ) from None
        if not isinstance(head, torch.nn.Module):
            raise RhoModelError(f"{origin}: net(...) must return a torch.nn.Module, got {type(head).__name__}")
        _check_user_keys(head, in_keys, in_props, origin, dtype, device)
    else:
        raise RhoModelError(f"model.type {short_repr(kind)} is not one of linear, deep, python")
    model = RhoModel(config, head)
    if kind == "python":
        _check_user_head(model, net_origin)
    return model


def read_net_file(path: str | Path) -> str:
    """The text of a user's net.py named on the command line or in the options."""
    path = Path(path)
    if path.is_dir():
        raise RhoModelError(f"{path}: is a directory, not a net.py file")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise RhoModelError(f"{path}: the network file is not UTF-8 text") from None
    except OSError as err:
        raise RhoModelError(f"{path}: cannot read the network file ({err.strerror})") from None


def network_source(
    config: dict[str, Any],
    origin: str | Path,
    *,
    net_file: str | Path | None = None,
    trust_model_code: bool = False,
    show: Callable[[str], None] | None = None,
) -> tuple[str | None, str]:
    """(source, origin) of the user network a saved model needs; (None, "") for other models.

    Code stored in a model file is never run silently: it comes from ``net_file`` (a file the user
    names for this call) or, with ``trust_model_code``, from the model file after ``show`` (default:
    standard error) has printed it.
    """
    if config.get("model", {}).get("type") != "python":
        return None, ""
    if net_file is not None:
        return read_net_file(net_file), str(net_file)
    stored = config.get("net_source")
    if trust_model_code:
        if not isinstance(stored, str):
            raise RhoModelError(f"{origin}: holds a python network but no network code; pass --net FILE")
        (show or _to_stderr)(f"running the network code stored in {origin}:\n{stored}")
        return stored, f"{origin} (stored net.py)"
    raise RhoModelError(
        f"{origin}: holds a user network (model.type python), whose code is never run on loading; "
        "pass --net FILE with its net.py, or --trust-model-code to print and run the code stored in the file"
    )


def _to_stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def state_dict_cpu(model: torch.nn.Module) -> dict[str, Any]:
    """The state dict with tensors on the CPU (metatensor extra state kept as it is)."""
    return {k: (v.detach().cpu() if isinstance(v, torch.Tensor) else v) for k, v in model.state_dict().items()}


def save_model(model: RhoModel, path: str | Path, *, overwrite: bool = True) -> None:
    """Weights and config (plain data) through a temporary file; refuses non-finite weights."""
    require_finite_weights(model, path)
    payload = {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "config": json.dumps(model.config),
        "state_dict": state_dict_cpu(model),
    }
    with atomic_output(path, overwrite=overwrite, what="model file") as tmp:
        torch.save(payload, tmp)


def read_payload(path: str | Path, what: str = "model") -> dict:
    """torch.load with weights_only=True; any failure is a one-line RhoModelError."""
    path = Path(path)
    if not path.exists():
        raise RhoModelError(f"{path}: no such {what} file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - corrupt or foreign files fail in many ways
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RhoModelError(f"{path}: not a readable {what} file ({first})") from None
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise RhoModelError(f"{path}: not a rho-model {what} file")
    if int(payload.get("version", 0)) != MODEL_VERSION:
        raise RhoModelError(f"{path}: {what} file version {payload.get('version')}, this rho-model reads {MODEL_VERSION}")
    return payload


def require_finite_weights(model: torch.nn.Module, where: str | Path) -> None:
    """Refuse a model whose parameters or buffers hold NaN or infinity (a wrong model is never kept)."""
    for name, value in model.state_dict().items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise RhoModelError(f"{where}: the model's {name} holds non-finite values (NaN or infinity); nothing was written")


def load_model(
    path: str | Path,
    device: str = "cpu",
    *,
    net_file: str | Path | None = None,
    trust_model_code: bool = False,
    show: Callable[[str], None] | None = None,
) -> RhoModel:
    """Rebuild a saved model (needs only rho-model); a python network needs ``net_file`` or ``trust_model_code``."""
    payload = read_payload(path)
    config = model_config_of(payload, path)
    config["device"] = device
    source, origin = network_source(config, path, net_file=net_file, trust_model_code=trust_model_code, show=show)
    model = build_from_payload(config, payload, path, source, origin)
    return model.to(device)


def model_config_of(payload: dict, path: str | Path) -> dict[str, Any]:
    """The JSON config of a model file or checkpoint, checked to be a mapping with the keys a model needs."""
    try:
        config = json.loads(payload["config"])
    except (KeyError, TypeError, ValueError):
        raise RhoModelError(f"{path}: the file holds no readable model config") from None
    needed = ("keys", "basis", "descriptor", "feature_sizes", "input_sizes", "out_sizes", "model", "dtype")
    if not isinstance(config, dict) or any(k not in config for k in needed) or not isinstance(config["model"], dict):
        raise RhoModelError(f"{path}: the model config is incomplete (needs {', '.join(needed)})")
    if config["dtype"] not in DTYPES:
        raise RhoModelError(f"{path}: unknown dtype {short_repr(config['dtype'])} in the model config")
    return config


def build_from_payload(config: dict[str, Any], payload: dict, path: str | Path, source: str | None, origin: str) -> RhoModel:
    """The model of ``config`` with the weights of ``payload`` (one-line errors for a damaged file)."""
    try:
        model = build_model(config, net_source=source, net_origin=origin or str(path))
    except (KeyError, TypeError, IndexError) as err:
        raise RhoModelError(f"{path}: the model config is damaged ({type(err).__name__}: {err})") from None
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError, TypeError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise RhoModelError(f"{path}: weights do not match the model config ({first})") from None
    return model
