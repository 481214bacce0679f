"""User networks (``model.type: python``): a net.py the user names, loaded and checked.

A python network is code: it runs only from a file the user names for this call (``--net FILE``,
``model.net_file``). The copy of that code a model file stores is text for review
(:func:`stored_net_source`, ``rho-train show-net``), never run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from metatensor.torch import Labels, TensorBlock, TensorMap

from rho_data.layout import key_name
from rho_data.yaml_input import short_repr

from .errors import RhoModelError
from .nn import component_labels


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


def load_user_net(source: str, origin: str):
    """The ``net`` function of a net.py the user named for this call (``source`` read from that file)."""
    namespace: dict[str, Any] = {"__name__": "rho_model_user_net", "__file__": origin}
    try:
        exec(compile(source, origin, "exec"), namespace)  # noqa: S102 - a net.py the user named for this call
    except Exception as err:  # noqa: BLE001 - report any failure of user code in one line
        raise RhoModelError(f"{origin}: the model file failed to load: {type(err).__name__}: {err}") from None
    if "net" not in namespace or not callable(namespace["net"]):
        raise RhoModelError(f"{origin}: defines no function net(in_keys, in_properties, out_properties, dtype, device)")
    return namespace["net"]


def user_head(
    source: str, origin: str, in_keys: Labels, in_props: list[Labels], out_props: list[Labels], dtype, device
) -> torch.nn.Module:
    """The head ``net(in_keys, in_properties, out_properties, dtype, device)`` of the net.py ``source``, checked."""
    net = load_user_net(source, origin)
    try:
        head = net(in_keys, in_props, out_props, dtype, device)
    except Exception as err:  # noqa: BLE001 - user code fails in many ways
        raise RhoModelError(
            f"{origin}: net(...) failed: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        ) from None
    if not isinstance(head, torch.nn.Module):
        raise RhoModelError(f"{origin}: net(...) must return a torch.nn.Module, got {type(head).__name__}")
    check_user_keys(head, in_keys, in_props, origin, dtype, device)
    return head


def check_user_keys(head: torch.nn.Module, in_keys: Labels, in_props: list[Labels], origin: str, dtype, device) -> None:
    """Run the user's head on one zero atom per key: it must return a TensorMap with the input keys."""
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
    if not is_tensormap(out) or out.keys != in_keys:
        raise RhoModelError(f"{origin}: the network must return a TensorMap with the input keys in the same order")


def check_user_model(model: torch.nn.Module, origin: str) -> None:
    """Run the user's network on one zero atom per key and check keys and shapes of its output."""
    feats = {
        name: torch.zeros(
            1,
            2 * k[0] + 1,
            model.config["feature_sizes"][name],
            dtype=getattr(torch, model.config["dtype"]),
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


def is_tensormap(value: Any) -> bool:
    """metatensor.torch classes are TorchScript classes: isinstance does not work on them."""
    return isinstance(value, torch.ScriptObject) and str(value._type()).endswith("TensorMap")


def network_source(config: dict[str, Any], origin: str | Path, *, net_file: str | Path | None = None) -> tuple[str | None, str]:
    """(source, origin) of the user network a saved model needs; (None, "") for other models.

    Code stored in a model file is never run: a python network comes from ``net_file``, a file
    the user names for this call (``rho-train show-net MODEL`` writes the stored code out for review).
    """
    if config.get("model", {}).get("type") != "python":
        return None, ""
    if net_file is not None:
        return read_net_file(net_file), str(net_file)
    raise RhoModelError(
        f"{origin}: holds a user network (model.type python), whose code is never run from a model file; "
        f"pass --net FILE with its net.py (rho-train show-net {origin} -o net.py writes the stored code out for review)"
    )


def stored_net_source(config: dict[str, Any], origin: str | Path) -> str:
    """The net.py text stored in a model file's config, as text to read (it is never run)."""
    kind = config.get("model", {}).get("type")
    if kind != "python":
        raise RhoModelError(f"{origin}: the model's network is model.type {short_repr(kind)}, not python code: nothing to show")
    stored = config.get("net_source")
    if not isinstance(stored, str):
        raise RhoModelError(f"{origin}: holds a python network but no stored network code")
    return stored
