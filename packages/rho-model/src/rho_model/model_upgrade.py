"""Model file versions: one function per step, applied in a chain on reading (and by ``rho-train upgrade``).

- 1 -> 2: the state dict is keyed by readable names (``head.l0_z8.weight`` instead of
  metatensor-learn's ``head.module_map.module_list.2.weight``), so a file does not depend on
  how metatensor-learn stores its modules; every payload says its ``kind`` (v1 model files had none).

Each step takes a payload of its version and returns one of the next; the frozen fixture of each
version (tests/fixtures/model_v1.pt) must keep loading with the same predictions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import torch

from rho_data.atomic import atomic_output, check_output_location, exclusive_lock
from rho_data.layout import key_name
from rho_data.upgrade_chain import upgrade_chain

from .errors import RhoModelError

MODEL_FORMAT = "rho-model"
MODEL_VERSION = 2

#: v1 files hold torch's state-dict names, in which metatensor-learn 0.6 keeps the module of the
#: i-th key of the head under ``head.module_map.module_list.{i}``.
_V1_KEY_MODULE = re.compile(r"^head\.module_map\.module_list\.(\d+)\.(.*)$")


def upgrade_v1_to_v2(payload: dict) -> dict:
    """Rename the state dict to readable names (``head.{key name}.rest``) and record the payload's kind."""
    keys = [key_name(tuple(k)) for k in json.loads(payload["config"])["keys"]]
    renamed = {}
    for name, value in payload["state_dict"].items():
        match = _V1_KEY_MODULE.match(name)
        if match and int(match.group(1)) < len(keys):
            name = f"head.{keys[int(match.group(1))]}.{match.group(2)}"
        renamed[name] = value
    out = dict(payload)
    out["state_dict"] = renamed
    out.setdefault("kind", "model")
    return out


#: Upgrade steps, keyed by the version they upgrade from: (next version, step).
UPGRADES: dict[int, tuple[int, Callable[[dict], dict]]] = {1: (2, upgrade_v1_to_v2)}


def upgrade_path(version: object, origin: str | Path, what: str = "model") -> list[int]:
    """The versions a payload goes through on its way to :data:`MODEL_VERSION`."""
    if isinstance(version, bool) or not isinstance(version, int):
        raise RhoModelError(f"{origin}: {what} file version {version!r} is not a version number")
    return upgrade_chain(
        version,
        MODEL_VERSION,
        UPGRADES,
        what=f"{what} file version",
        program="rho-model",
        error=lambda message: RhoModelError(f"{origin}: {message}"),
    )


def upgrade_payload(payload: dict, origin: str | Path, what: str = "model") -> tuple[dict, list[int]]:
    """The payload in the current version and the versions it went through (one-line errors for damage)."""
    steps = upgrade_path(payload.get("version", 0), origin, what)
    for version in steps[:-1]:
        next_version, step = UPGRADES[version]
        try:
            payload = step(payload)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise RhoModelError(
                f"{origin}: cannot upgrade {what} file version {version} to {next_version} ({type(err).__name__}: {err})"
            ) from None
        payload["version"] = next_version
    return payload, steps


def upgrade_model_file(path: str | Path, output: str | Path | None = None, *, overwrite: bool = False) -> list[int]:
    """Upgrade a model file or checkpoint (in place, or into ``output``); returns the versions it went through.

    As ``rho-data upgrade``: the upgraded payload is written to a temporary file beside the target
    that replaces it only when complete (a failed or killed upgrade leaves the original as it
    was); ``output`` must not exist unless ``overwrite``; a file already at the current version is
    left as it is (nothing is written).
    """
    from .model_file import load_payload

    path = Path(path)
    target = Path(output) if output is not None else path
    if output is not None:
        check_output_location(target, overwrite=overwrite, what="upgraded model file")
    payload, steps = upgrade_payload(load_payload(path), path)
    if len(steps) == 1:
        return steps
    with exclusive_lock(target, what="upgraded model file"):
        with atomic_output(target, overwrite=output is None or overwrite, what="upgraded model file") as tmp:
            torch.save(payload, tmp)
    return steps
