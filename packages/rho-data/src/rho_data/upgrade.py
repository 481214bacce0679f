"""Schema upgrades: one function per version step, applied in a chain.

Each step ``(major, minor) -> next`` rewrites a file of the older version into the layout of
the next one. Minor steps only add optional content, so their functions only record the new
version (a reader of 1.x reads every 1.y as it is; ``upgrade`` is needed only for writers that
append to an old file).

- 1.0 -> 1.1: datasets may hold further targets under ``/structures/targets``; a 1.0 file has none.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from os import PathLike
from pathlib import Path

import h5py

from .atomic import atomic_output, check_output_location, exclusive_lock
from .errors import RhoDataError
from .header import version_attribute
from .schema import SCHEMA_NAME, SCHEMA_VERSION
from .upgrade_chain import upgrade_chain

Version = tuple[int, int]


def upgrade_v1_0_to_v1_1(h5: h5py.File) -> None:
    """1.0 -> 1.1 adds optional further targets only: nothing to rewrite."""


#: Upgrade steps, keyed by the version they upgrade from; each function rewrites the layout, the
#: chain then records the new version.
UPGRADES: dict[Version, tuple[Version, Callable[[h5py.File], None]]] = {(1, 0): ((1, 1), upgrade_v1_0_to_v1_1)}


def file_version(path: str | PathLike) -> Version:
    try:
        with h5py.File(path, "r", swmr=True, locking=False) as h5:
            if h5.attrs.get("schema", "") not in (SCHEMA_NAME, SCHEMA_NAME.encode()):
                raise RhoDataError("not a rho-data file", path=path)
            return version_attribute(h5.attrs.get("schema_version"), path)
    except FileNotFoundError:
        raise RhoDataError("no such file", path=path) from None
    except OSError as err:
        raise RhoDataError(f"cannot be read as HDF5: {str(err).splitlines()[0]}", path=path) from None


def upgrade_path(version: Version) -> list[Version]:
    """The versions a file goes through on its way to the current one."""
    return upgrade_chain(
        tuple(version), SCHEMA_VERSION, UPGRADES, what="schema version", program="rho-data", show=lambda v: f"{v[0]}.{v[1]}"
    )


def upgrade_file(path: str | PathLike, output: str | PathLike | None = None, *, overwrite: bool = False) -> list[Version]:
    """Upgrade a file (in place, or into ``output``); returns the versions it went through.

    The upgrade runs on a copy (a temporary file beside the target) that replaces the target
    only when every step succeeded: a failed or killed upgrade leaves the original as it was.
    ``output`` must not exist unless ``overwrite``.
    """
    path = Path(path)
    target = Path(output) if output is not None else path
    if output is not None:
        check_output_location(target, overwrite=overwrite, what="upgraded file")
    steps = upgrade_path(file_version(path))
    if len(steps) == 1:
        return steps
    with exclusive_lock(target, what="upgraded file"):
        with atomic_output(target, overwrite=output is None or overwrite, what="upgraded file") as tmp:
            shutil.copyfile(path, tmp)
            with h5py.File(tmp, "r+", libver="latest") as h5:
                for version in steps[:-1]:
                    next_version, step = UPGRADES[version]
                    step(h5)
                    h5.attrs["schema_version"] = list(next_version)
    return steps
