"""Layered settings (defaults, then files, then command-line overrides) with strict keys.

Every rho command reads its settings the same way (:func:`load_layers`): a nested mapping of
defaults is updated key by key by each ``-c/--config`` YAML file in order, then by each
``--set section.key=value``; a key the defaults do not have is an error, so a typo never passes
silently, and every error names the file or the ``--set`` it came from. :func:`commented_yaml`
prints defaults with a comment per setting (the ``options`` command of every rho CLI).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Mapping, Sequence
from os import PathLike
from typing import Any

import yaml

from .errors import RhoDataError
from .text_input import read_text
from .yaml_input import MAX_BYTES, parse_yaml_text, short_repr

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


def load_layers(
    defaults: Mapping,
    files: Sequence[str | PathLike] = (),
    overrides: Sequence[str] = (),
    *,
    merge: Callable[[dict, Mapping, str], None],
    error: ErrorFactory = RhoDataError,
) -> dict:
    """The one layering of every rho command: a copy of ``defaults``, then each YAML file in
    order (a later file overrides an earlier one), then each ``--set section.key=value``.

    ``merge(settings, update, source)`` merges one layer with the caller's checks; ``source``
    (for its error messages) is the file's path or ``--set TEXT``. An override's value is read
    as YAML (no aliases, bounded). Every error is ``error(message)``, one line naming its source.
    """
    settings = copy.deepcopy(dict(defaults))
    for path in files:
        try:
            text = read_text(path, what="settings file", missing="settings file not found (no such file)", max_bytes=MAX_BYTES)
            data = parse_yaml_text(text, source=str(path))
        except RhoDataError as err:
            raise error(str(err)) from None
        if data is None:  # an empty file changes nothing
            continue
        if not isinstance(data, Mapping):
            raise error(
                f"{path}: a settings file must hold a mapping of settings (its top level must be a mapping of "
                f"names to values), got {type(data).__name__}"
            )
        merge(settings, data, str(path))
    for text in overrides:
        source = f"--set {short_repr(text, 60)}"

        def parse_value(raw: str, source: str = source) -> Any:
            try:
                return parse_yaml_text(raw, source=source)
            except RhoDataError as err:
                raise error(str(err)) from None

        merge(settings, parse_override(text, parse_value, error=lambda m, s=source: error(f"{s}: {m}")), source)
    return settings


def _yaml_value(value: Any) -> str:
    """``value`` as one line of flow-style YAML (``null``, ``1.0e-05``, ``[1, 2]``, ``{}``)."""
    return yaml.safe_dump([value], default_flow_style=True, width=1 << 30, sort_keys=False).strip()[1:-1]


def commented_yaml(defaults: Mapping, comments: Mapping[str, str], *, header: str = "", free: Collection[str] = ()) -> str:
    """The defaults as block YAML with the comment ``comments[dotted name]`` after every setting.

    Nested mappings (except those named in ``free``, which are values) become sections; every
    leaf must have a comment. ``yaml.safe_load`` of the text gives ``defaults`` back.
    """
    rows: list[tuple[str, str]] = []

    def walk(node: Mapping, prefix: str, indent: str) -> None:
        for key, value in node.items():
            name, shown = f"{prefix}{key}", _yaml_value(key)  # a key such as 'on' or '1' is quoted
            if isinstance(value, Mapping) and value and name not in free:
                rows.append((f"{indent}{shown}:", comments.get(name, "")))
                walk(value, f"{name}.", indent + "  ")
            else:
                if not comments.get(name):
                    raise ValueError(f"setting '{name}' has no comment")
                rows.append((f"{indent}{shown}: {_yaml_value(value)}", comments[name]))

    walk(defaults, "", "")
    width = max((len(text) for text, _ in rows), default=0) + 2
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    lines += [f"{text:<{width}}# {comment}" if comment else text for text, comment in rows]
    return "\n".join(lines) + "\n"


def leaf_comments(text: str) -> dict[str, str]:
    """Every leaf setting of a YAML text (dotted name) -> the comment that documents it: the one at
    the end of its line, else the comment line just above it ("" when it has none)."""
    lines = text.splitlines()
    found: dict[str, str] = {}

    def comment_of(key: yaml.Node, value: yaml.Node) -> str:
        line = lines[key.start_mark.line]
        if value.end_mark.line == key.start_mark.line:
            rest = line[value.end_mark.column :].strip()
            if rest.startswith("#"):
                return rest[1:].strip()
        above = lines[key.start_mark.line - 1].strip() if key.start_mark.line > 0 else ""
        return above[1:].strip() if above.startswith("#") else ""

    def walk(node: yaml.Node, prefix: str) -> None:
        for key, value in node.value:
            name = f"{prefix}{key.value}"
            if isinstance(value, yaml.MappingNode) and value.value and not value.flow_style:
                walk(value, f"{name}.")
            else:
                found[name] = comment_of(key, value)

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if isinstance(root, yaml.MappingNode):
        walk(root, "")
    return found
