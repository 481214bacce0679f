"""Model files and checkpoints: tensors and plain data only, versioned, read with ``torch.load(weights_only=True)``.

A payload is a dict: ``format`` "rho-model", ``version`` (:data:`MODEL_VERSION`), ``kind``
("model" or "checkpoint"), ``config`` (the model config as JSON text) and ``state_dict``
(tensors keyed by readable names, :meth:`RhoModel.state_names`); a checkpoint adds what a
restart needs (:mod:`rho_model.checkpoint`). Files of older versions are upgraded on reading
(:mod:`rho_model.model_upgrade`); ``rho-train upgrade`` rewrites them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from rho_data.atomic import atomic_output
from rho_data.yaml_input import short_repr

from .errors import RhoModelError
from .model import DTYPES, RhoModel, build_model
from .model_upgrade import MODEL_FORMAT, MODEL_VERSION, upgrade_payload
from .netcode import network_source


def model_payload(model: RhoModel, kind: str) -> dict[str, Any]:
    """The payload of a model file (``kind`` "model") or the model part of a checkpoint (callers check finiteness)."""
    names = model.state_names()
    return {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "kind": kind,
        "config": json.dumps(model.config),
        "state_dict": {names[k]: (v.detach().cpu() if isinstance(v, torch.Tensor) else v) for k, v in model.state_dict().items()},
    }


def save_model(model: RhoModel, path: str | Path, *, overwrite: bool = True) -> None:
    """Weights and config (plain data) through a temporary file; refuses non-finite weights."""
    require_finite_weights(model, path)
    payload = model_payload(model, "model")
    with atomic_output(path, overwrite=overwrite, what="model file") as tmp:
        torch.save(payload, tmp)


def load_payload(path: str | Path, what: str = "model") -> dict:
    """The payload as stored (any version): torch.load with weights_only=True; failures are one line."""
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
    return payload


def read_payload(path: str | Path, what: str = "model") -> dict:
    """The payload in the current version (older files upgraded in memory, newer ones refused)."""
    return upgrade_payload(load_payload(path, what), path, what)[0]


def require_finite_weights(model: torch.nn.Module, where: str | Path) -> None:
    """Refuse a model whose parameters or buffers hold NaN or infinity (a wrong model is never kept)."""
    for name, value in model.state_dict().items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise RhoModelError(f"{where}: the model's {name} holds non-finite values (NaN or infinity); nothing was written")


def load_model(path: str | Path, device: str = "cpu", *, net_file: str | Path | None = None) -> RhoModel:
    """Rebuild a saved model (needs only rho-model); a python network needs ``net_file``."""
    payload = read_payload(path)
    config = model_config_of(payload, path)
    config["device"] = device
    source, origin = network_source(config, path, net_file=net_file)
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
        internal = {readable: name for name, readable in model.state_names().items()}
        model.load_state_dict({internal.get(k, k): v for k, v in payload["state_dict"].items()})
    except (RuntimeError, KeyError, TypeError, AttributeError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise RhoModelError(f"{path}: weights do not match the model config ({first})") from None
    return model
