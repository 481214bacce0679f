"""Settings: defaults -> user YAML -> command-line overrides, validated strictly.

The defaults live in ``defaults.yaml`` (printed by ``aims-io options``). Unknown keys, and
values of another type than the default's, are errors. The expanded settings are written
next to the results (``aims-io.yaml`` in the work directory).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from rho_data.settings import merge_settings
from rho_data.settings import parse_override as rho_parse_override

from .errors import AimsIOError

SETTINGS_FILE = "aims-io.yaml"

# a keyword value written into control.in: one line of plain printable text, no comments
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.+\-: ]*$")
_SAFE_KEYWORD = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def defaults_text() -> str:
    return resources.files("aims_io").joinpath("defaults.yaml").read_text()


def defaults() -> dict:
    return yaml.safe_load(defaults_text())


def _merge(base: dict, update: Mapping, source: str) -> None:
    merge_settings(
        base,
        update,
        error=lambda message: AimsIOError(message, path=source),
        free=("dft.extra_keywords", "hpc.sbatch_options"),
        check=lambda default, value, name: _coerce(default, value, name, source),
    )


def _coerce(default: Any, value: Any, name: str, source: str) -> Any:
    if value is None or default is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise AimsIOError(f"setting '{name}' must be true or false, got {value!r}", path=source)
        return value
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise AimsIOError(f"setting '{name}' must be a number, got {value!r}", path=source)
        return type(default)(value) if isinstance(default, float) else value
    if isinstance(default, str) and not isinstance(value, str):
        raise AimsIOError(f"setting '{name}' must be text, got {value!r}", path=source)
    if isinstance(default, list) and not isinstance(value, list):
        raise AimsIOError(f"setting '{name}' must be a list, got {value!r}", path=source)
    if isinstance(default, dict) and not isinstance(value, Mapping):
        raise AimsIOError(f"setting '{name}' must be a mapping, got {value!r}", path=source)
    return value


def parse_override(text: str) -> dict:
    """``"dft.xc=pbe"`` -> ``{"dft": {"xc": "pbe"}}`` (the value is read as YAML)."""
    return rho_parse_override(text, yaml.safe_load, error=AimsIOError)


def load_settings(paths: Sequence[str | Path] = (), overrides: Sequence[str] = ()) -> dict:
    """Defaults, then each YAML file in order, then ``section.key=value`` overrides."""
    settings = defaults()
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise AimsIOError("settings file not found", path=path)
        try:
            user = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise AimsIOError(f"not valid YAML ({str(err).splitlines()[0]})", path=path) from None
        if not isinstance(user, Mapping):
            raise AimsIOError("a settings file must hold a mapping", path=path)
        _merge(settings, user, str(path))
    for text in overrides:
        _merge(settings, parse_override(text), "command line")
    validate(settings)
    return settings


def validate(settings: dict) -> None:
    dft, hpc = settings["dft"], settings["hpc"]
    if dft["spin"] not in ("none", "collinear"):
        raise AimsIOError(f"setting 'dft.spin' must be none or collinear, got {dft['spin']!r}")
    if dft["spin"] == "collinear" and dft["default_initial_moment"] is None:
        raise AimsIOError("setting 'dft.spin' is collinear: FHI-aims then needs 'dft.default_initial_moment'")
    if hpc["backend"] not in ("local", "slurm"):
        raise AimsIOError(f"setting 'hpc.backend' must be local or slurm, got {hpc['backend']!r}")
    if int(hpc["max_parallel"]) < 1:
        raise AimsIOError(f"setting 'hpc.max_parallel' must be >= 1, got {hpc['max_parallel']}")
    if not str(hpc["aims_command"]).strip():
        raise AimsIOError("setting 'hpc.aims_command' is empty")
    for name in ("xc", "relativistic"):
        check_value(f"dft.{name}", dft[name])
    for key, value in (dft["extra_keywords"] or {}).items():
        check_keyword(str(key))
        check_value(f"dft.extra_keywords.{key}", value)
    for key, value in (hpc["sbatch_options"] or {}).items():
        if not _SAFE_KEYWORD.match(str(key).replace("-", "_")):
            raise AimsIOError(f"setting 'hpc.sbatch_options': bad option name {key!r}")
        if "\n" in str(value):
            raise AimsIOError(f"setting 'hpc.sbatch_options.{key}' must be one line")
    for line in hpc["setup_lines"] or []:
        if not isinstance(line, str) or "\n" in line:
            raise AimsIOError(f"setting 'hpc.setup_lines': each entry must be one line of text, got {line!r}")


def check_keyword(keyword: str) -> str:
    if not _SAFE_KEYWORD.match(keyword):
        raise AimsIOError(f"'{keyword}' is not a valid FHI-aims keyword name")
    return keyword


def check_value(name: str, value: Any) -> str:
    """A keyword value as control.in text; refuses anything that could break the file."""
    if isinstance(value, bool):
        return ".true." if value else ".false."
    text = str(value)
    if not _SAFE_VALUE.match(text):
        raise AimsIOError(f"setting '{name}' = {text!r}: only letters, digits, spaces and _ . + - : are allowed")
    return text


def dump(settings: dict, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(copy.deepcopy(settings), sort_keys=False))


def merge_into(settings: dict, update: Mapping, source: str = "options") -> dict:
    """A copy of ``settings`` with ``update`` merged in (same validation)."""
    out = copy.deepcopy(settings)
    _merge(out, update, source)
    validate(out)
    return out
