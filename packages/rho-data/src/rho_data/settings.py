"""Layered settings (defaults, then files, then command-line overrides) with strict keys.

Every rho command reads its settings the same way: a nested mapping of defaults is updated
key by key; a key the defaults do not have is an error, so a typo never passes silently.
The file format (YAML) is the caller's: this module only merges mappings.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from .errors import RhoDataError
from .yaml_input import short_repr

ErrorFactory = Callable[[str], Exception]


def merge_settings(
    base: dict,
    update: Mapping,
    *,
    error: ErrorFactory = RhoDataError,
    free: Collection[str] = (),
    check: Callable[[Any, Any, str], Any] | None = None,
    noun: str = "setting",
    _where: str = "",
) -> None:
    """Merge ``update`` into ``base`` in place; every key of ``update`` must exist in ``base``.

    Nested mappings merge key by key, except those whose dotted name is in ``free`` (mappings
    of user-chosen keys, replaced whole). ``check(default, value, name)`` may convert a value
    or raise; ``error(message)`` makes the exception for an unknown key or a non-mapping.
    """
    for key, value in update.items():
        name = f"{_where}{key}"
        if key not in base:
            raise error(f"unknown {noun} '{name}' (known: {', '.join(sorted(map(str, base)))})")
        current = base[key]
        if isinstance(current, dict) and name not in free:
            if not isinstance(value, Mapping):
                raise error(f"{noun} '{name}' must be a mapping, got {short_repr(value)}")
            merge_settings(current, value, error=error, free=free, check=check, noun=noun, _where=f"{name}.")
        else:
            base[key] = check(current, value, name) if check is not None else value


def parse_override(text: str, parse_value: Callable[[str], Any], *, error: ErrorFactory = RhoDataError) -> dict:
    """``"section.key=value"`` -> ``{"section": {"key": parse_value("value")}}`` (empty value: None)."""
    if "=" not in text:
        raise error(f"override '{text}' must look like section.key=value")
    dotted, raw = text.split("=", 1)
    parts = dotted.strip().split(".")
    if not all(parts):
        raise error(f"override '{text}' has an empty name part")
    out: dict = {}
    node = out
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = parse_value(raw) if raw.strip() else None
    return out
