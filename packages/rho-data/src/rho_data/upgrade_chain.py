"""The chain of upgrade steps from a file's version to the current one (datasets, model files).

A format keeps one step per version, ``{from_version: (next_version, step)}``; a file is
upgraded by applying the steps from its version until the current one. Versions are anything
ordered (``(major, minor)`` tuples for datasets, integers for model files).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from .errors import RhoDataError

V = TypeVar("V")


def upgrade_chain(
    version: V,
    current: V,
    steps: Mapping[V, tuple[V, Any]],
    *,
    what: str,
    program: str,
    show: Callable[[V], str] = str,
    error: Callable[[str], Exception] = RhoDataError,
) -> list[V]:
    """``[version, ..., current]``: the versions a file goes through; a version newer than
    ``current`` or one without a step is an error (``what`` names it, e.g. "schema version")."""
    if version > current:  # type: ignore[operator]
        raise error(f"{what} {show(version)} is newer than this {program}'s {show(current)}: install a newer {program}")
    chain = [version]
    while chain[-1] != current:
        if chain[-1] not in steps:
            raise error(f"no upgrade is known from {what} {show(chain[-1])}")
        chain.append(steps[chain[-1]][0])
    return chain
