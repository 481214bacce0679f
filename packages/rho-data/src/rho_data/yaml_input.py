"""Reading user YAML (settings, options) safely, and showing user values in bounded form.

YAML anchors and aliases let a few lines stand for a structure of billions of nodes (the
"billion laughs"): loading shares the nodes, but any code that walks or prints the value
expands it. Settings never need aliases, so they are refused, and so are files over
:data:`MAX_BYTES` and nesting deeper than :data:`MAX_DEPTH`. Only plain data types load
(``yaml.SafeLoader``: no Python objects).
"""

from __future__ import annotations

from os import PathLike
from typing import Any

import yaml

from .errors import RhoDataError
from .text_input import read_text

MAX_BYTES = 1 << 20
MAX_DEPTH = 32


class _NoAliasLoader(yaml.SafeLoader):
    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed in rho settings", event.start_mark)
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nesting deeper than {MAX_DEPTH} levels", self.peek_event().start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def short_repr(value: object, limit: int = 80, _depth: int = 0) -> str:
    """``repr(value)`` cut to ``limit`` characters, without building the repr of a huge value."""
    if isinstance(value, (dict, list, tuple, set, frozenset)):
        if len(value) > 8 or _depth > 2:
            return f"<{type(value).__name__} of {len(value)} items>"
        if isinstance(value, (set, frozenset)):
            shown = "{" + ", ".join(short_repr(v, limit, _depth + 1) for v in value) + "}"
        elif isinstance(value, dict):
            inner = ", ".join(f"{short_repr(k, limit, _depth + 1)}: {short_repr(v, limit, _depth + 1)}" for k, v in value.items())
            shown = "{" + inner + "}"
        else:
            shown = "[" + ", ".join(short_repr(v, limit, _depth + 1) for v in value) + "]"
    elif isinstance(value, (str, bytes)) and len(value) > limit:
        shown = repr(value[:limit])
    elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 4 * limit:
        shown = f"<int of {value.bit_length()} bits>"  # repr of a huge int is slow, or refused
    else:
        try:
            shown = repr(value)
        except Exception:  # a value whose repr fails still gets a name
            shown = f"<{type(value).__name__}>"
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def parse_yaml_text(text: str, *, source: str = "<text>") -> Any:
    """Parse YAML ``text`` (no aliases, bounded size and depth); errors name ``source``."""
    if len(text) > MAX_BYTES:
        raise RhoDataError(f"is larger than {MAX_BYTES // 1024} KiB; a settings file is never this large", path=source)
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise RhoDataError(f"not valid YAML{where}: {problem}", path=source) from None
    except (ValueError, OverflowError, RecursionError) as err:  # e.g. an integer of more than 4300 digits
        raise RhoDataError(f"not valid YAML: {str(err).splitlines()[0][:120]}", path=source) from None


def load_yaml_file(path: str | PathLike) -> Any:
    """Parse a YAML file: one-line errors for a missing, unreadable, non-UTF-8 or bad file."""
    text = read_text(path, what="YAML file", max_bytes=MAX_BYTES)
    return parse_yaml_text(text, source=str(path))
