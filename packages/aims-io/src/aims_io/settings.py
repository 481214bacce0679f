"""Settings: defaults -> user YAML -> command-line overrides, validated strictly.

The defaults live in ``defaults.yaml`` (printed by ``aims-io options``). Unknown keys, and
values of another type than the default's, are errors. The expanded settings are written
next to the results (``aims-io.yaml`` in the work directory).
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from rho_data.errors import RhoDataError
from rho_data.jobscript import JobScriptError, refuse_control_characters
from rho_data.orbital_fields import parse_field
from rho_data.settings import load_layers, merge_settings
from rho_data.settings import parse_override as rho_parse_override
from rho_data.yaml_input import parse_yaml_text, short_repr

from .errors import AimsIOError
from .layout import write_text
from .periodic import check_k_settings

SETTINGS_FILE = "aims-io.yaml"

# a keyword value written into control.in: one line of plain printable text, no comments
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.+\-: ]*$")
_SAFE_KEYWORD = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def defaults_text() -> str:
    return resources.files("aims_io").joinpath("defaults.yaml").read_text()


def defaults() -> dict:
    return parse_yaml_text(defaults_text(), source="aims-io defaults")


#: Settings whose default is null: the type a value must have when given.
_NULLABLE: dict[str, type] = {
    "dft.default_initial_moment": float,
    "dft.species_defaults": str,
    "dft.default_max_l_prodbas": int,
    "dft.k_grid": list,
    "dft.k_grid_density": float,
    "hpc.partition": str,
    "hpc.account": str,
    "hpc.array_parallel": int,
}
#: Settings that may be null although their default is not (null means empty).
_EMPTY_OK = ("dft.extra_keywords", "hpc.sbatch_options", "hpc.setup_lines")


def _merge(base: dict, update: Mapping, source: str) -> None:
    merge_settings(
        base,
        update,
        error=lambda message: AimsIOError(message, path=source),
        free=("dft.extra_keywords", "hpc.sbatch_options"),
        check=lambda default, value, name: _coerce(default, value, name, source),
    )


def _number(value: Any, name: str, source: str, kind: type) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AimsIOError(f"setting '{name}' must be a number, got {short_repr(value)}", path=source)
    if not math.isfinite(value):
        raise AimsIOError(f"setting '{name}' must be a finite number, got {short_repr(value)}", path=source)
    if kind is int:
        if value != int(value):
            raise AimsIOError(f"setting '{name}' must be a whole number, got {short_repr(value)}", path=source)
        return int(value)
    return float(value)


def _coerce(default: Any, value: Any, name: str, source: str) -> Any:
    """``value`` checked against the type of the default (or of :data:`_NULLABLE`)."""
    value = _typed(default, value, name, source)
    if name.startswith("hpc.") and value is not None:
        _refuse_control(value, name, source)
    return value


def _typed(default: Any, value: Any, name: str, source: str) -> Any:
    if value is None:
        if default is None or name in _EMPTY_OK:
            return value
        raise AimsIOError(f"setting '{name}' must not be null (default: {short_repr(default)})", path=source)
    if default is None:
        kind = _NULLABLE.get(name, str)
        if kind is list:
            if not isinstance(value, list):
                raise AimsIOError(f"setting '{name}' must be a list or null, got {short_repr(value)}", path=source)
            return value
        if kind is str:
            if not isinstance(value, str):
                raise AimsIOError(f"setting '{name}' must be text, got {short_repr(value)}", path=source)
            return value
        return _number(value, name, source, kind)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise AimsIOError(f"setting '{name}' must be true or false, got {short_repr(value)}", path=source)
        return value
    if isinstance(default, (int, float)):
        return _number(value, name, source, type(default))
    if isinstance(default, str) and not isinstance(value, str):
        raise AimsIOError(f"setting '{name}' must be text, got {short_repr(value)}", path=source)
    if isinstance(default, list) and not isinstance(value, list):
        raise AimsIOError(f"setting '{name}' must be a list, got {short_repr(value)}", path=source)
    if isinstance(default, dict) and not isinstance(value, Mapping):
        raise AimsIOError(f"setting '{name}' must be a mapping, got {short_repr(value)}", path=source)
    return value


def _refuse_control(value: Any, name: str, source: str) -> None:
    """No control character (newline, ...) in an hpc setting: they end up in job scripts."""
    try:
        if isinstance(value, Mapping):
            for key, item in value.items():
                refuse_control_characters(key, f"setting '{name}' (an option name)")
                refuse_control_characters(item, f"setting '{name}.{key}'")
        elif isinstance(value, list):
            for k, item in enumerate(value):
                refuse_control_characters(item, f"setting '{name}[{k}]'")
        else:
            refuse_control_characters(value, f"setting '{name}'")
    except JobScriptError as err:
        raise AimsIOError(str(err), path=source) from None


def parse_override(text: str) -> dict:
    """``"dft.xc=pbe"`` -> ``{"dft": {"xc": "pbe"}}`` (the value is read as YAML, no aliases)."""
    return rho_parse_override(text, lambda raw: parse_yaml_text(raw, source=f"--set {text}"), error=AimsIOError)


def load_settings(paths: Sequence[str | Path] = (), overrides: Sequence[str] = ()) -> dict:
    """Defaults, then each YAML file in order, then ``section.key=value`` overrides
    (:func:`rho_data.settings.load_layers`); each layer's values are checked as it is merged,
    so an error names the file or the ``--set`` that holds the bad value."""
    settings = load_layers(defaults(), paths, overrides, merge=_merge_checked, error=AimsIOError)
    _check_consistency(settings)
    return settings


def _merge_checked(settings: dict, update: Mapping, source: str) -> None:
    """Merge one layer (types checked per value), then the choices and ranges of every value:
    those of the layer before were valid, so a failure is this layer's."""
    _merge(settings, update, source)
    try:
        _check_values(settings)
    except AimsIOError as err:
        raise AimsIOError(str(err), path=source) from None


def _at_least(settings: dict, name: str, low: float, *, strict: bool = False) -> None:
    section, key = name.split(".")
    value = settings[section][key]
    if value is not None and (value <= low if strict else value < low):
        raise AimsIOError(f"setting '{name}' must be {'>' if strict else '>='} {low:g}, got {short_repr(value)}")


def validate(settings: dict) -> None:
    """Choices, ranges and consistency of the merged settings (types were checked while merging)."""
    _check_values(settings)
    _check_consistency(settings)


def _check_consistency(settings: dict) -> None:
    """What one setting needs of another (checked once every layer is merged)."""
    dft = settings["dft"]
    if dft["spin"] == "collinear" and dft["default_initial_moment"] is None:
        raise AimsIOError("setting 'dft.spin' is collinear: FHI-aims then needs 'dft.default_initial_moment'")
    if dft["spin"] == "none" and any(parse_field(f).kind == "spin_density" for f in dft["fields"]):
        raise AimsIOError("setting 'dft.fields' holds spin_density but 'dft.spin' is none: the spin density is zero")


def _check_values(settings: dict) -> None:
    """The choices and ranges of every setting, one by one."""
    dft, hpc = settings["dft"], settings["hpc"]
    if dft["spin"] not in ("none", "collinear"):
        raise AimsIOError(f"setting 'dft.spin' must be none or collinear, got {short_repr(dft['spin'])}")
    if hpc["backend"] not in ("local", "slurm"):
        raise AimsIOError(f"setting 'hpc.backend' must be local or slurm, got {short_repr(hpc['backend'])}")
    counts = ("hpc.max_parallel", "hpc.nodes", "hpc.ntasks", "hpc.array_parallel", "dft.elsi_restart_write", "dft.sc_iter_limit")
    for name in counts:
        _at_least(settings, name, 1)
    _at_least(settings, "dft.default_max_l_prodbas", 0)
    _at_least(settings, "dft.default_prodbas_acc", 0, strict=True)
    _at_least(settings, "dft.cube_padding", 0)
    _at_least(settings, "dft.degeneracy_ev", 0)
    dft["fields"] = check_fields(dft["fields"])
    check_k_settings(dft)
    points = dft["cube_points"]
    if len(points) != 3 or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 2 for n in points):
        raise AimsIOError(f"setting 'dft.cube_points' must be 3 integers >= 2, got {short_repr(points)}")
    if not str(hpc["aims_command"]).strip():
        raise AimsIOError(f"setting 'hpc.aims_command' is empty, got {short_repr(hpc['aims_command'])}")
    if not str(hpc["time"]).strip():
        raise AimsIOError(f"setting 'hpc.time' is empty, got {short_repr(hpc['time'])}")
    if not str(dft["guess_ri_density_restart"]).startswith("read"):
        raise AimsIOError(
            f"setting 'dft.guess_ri_density_restart' must start with 'read', got {short_repr(dft['guess_ri_density_restart'])}"
        )
    for name in ("xc", "relativistic", "guess_ri_density_restart"):
        check_value(f"dft.{name}", dft[name])
    for key, value in (dft["extra_keywords"] or {}).items():
        check_keyword(str(key))
        check_value(f"dft.extra_keywords.{key}", value)
    for key, value in (hpc["sbatch_options"] or {}).items():
        if not isinstance(key, str) or not _SAFE_KEYWORD.match(key.replace("-", "_")):
            raise AimsIOError(f"setting 'hpc.sbatch_options': bad option name {short_repr(key)}")
        if isinstance(value, (Mapping, list)):
            raise AimsIOError(f"setting 'hpc.sbatch_options.{key}' must be a single value, got {short_repr(value)}")
    for k, line in enumerate(hpc["setup_lines"] or []):
        if not isinstance(line, str):
            raise AimsIOError(f"setting 'hpc.setup_lines[{k}]' must be one line of text, got {short_repr(line)}")


def check_fields(fields: Any) -> list[str]:
    """The canonical names of setting ``dft.fields`` (:func:`rho_data.orbital_fields.parse_field`): at least one, none twice."""
    if not isinstance(fields, list) or not fields:
        raise AimsIOError(f"setting 'dft.fields' must be a non-empty list of field names, got {short_repr(fields)}")
    names = []
    for k, field in enumerate(fields):
        if not isinstance(field, str):
            raise AimsIOError(f"setting 'dft.fields[{k}]' must be a field name, got {short_repr(field)}")
        try:
            names.append(str(parse_field(field)))
        except RhoDataError as err:
            raise AimsIOError(f"setting 'dft.fields[{k}]': {err}") from None
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise AimsIOError(f"setting 'dft.fields' names {', '.join(twice)} twice")
    return names


def check_keyword(keyword: str) -> str:
    if not _SAFE_KEYWORD.match(keyword):
        raise AimsIOError(f"{short_repr(keyword)} is not a valid FHI-aims keyword name")
    return keyword


def check_value(name: str, value: Any) -> str:
    """A keyword value as control.in text; refuses anything that could break the file."""
    if isinstance(value, bool):
        return ".true." if value else ".false."
    text = str(value)
    if not _SAFE_VALUE.match(text):
        raise AimsIOError(f"setting '{name}' = {short_repr(text)}: only letters, digits, spaces and _ . + - : are allowed")
    return text


def dump(settings: dict, path: str | Path) -> None:
    """Write the expanded settings (through a unique temporary file)."""
    write_text(path, yaml.safe_dump(copy.deepcopy(settings), sort_keys=False), what="settings file")


def merge_into(settings: dict, update: Mapping, source: str = "options") -> dict:
    """A copy of ``settings`` with ``update`` merged in (same validation)."""
    out = copy.deepcopy(settings)
    _merge(out, update, source)
    validate(out)
    return out
