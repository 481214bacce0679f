"""Schema upgrades: one function per version step, applied in a chain.

Each step ``(major, minor) -> next`` rewrites a file of the older version into the layout of
the next one. Schema 1.0 is the first released version, so the chain is empty today; the
machinery and its checks are in place for the first change of the schema.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from os import PathLike
from pathlib import Path

import h5py

from .errors import RhoDataError
from .schema import SCHEMA_NAME, SCHEMA_VERSION

Version = tuple[int, int]

#: Upgrade steps, keyed by the version they upgrade from: ``{(1, 0): upgrade_v1_0_to_v1_1}``.
UPGRADES: dict[Version, tuple[Version, Callable[[h5py.File], None]]] = {}


def file_version(path: str | PathLike) -> Version:
    try:
        with h5py.File(path, "r", swmr=True, locking=False) as h5:
            if str(h5.attrs.get("schema", "")) != SCHEMA_NAME:
                raise RhoDataError("not a rho-data file", path=path)
            major, minor = (int(v) for v in h5.attrs["schema_version"])
            return major, minor
    except OSError as err:
        raise RhoDataError(f"cannot be read as HDF5: {str(err).splitlines()[0]}", path=path) from None


def upgrade_path(version: Version) -> list[Version]:
    """The versions a file goes through on its way to the current one."""
    if version[0] > SCHEMA_VERSION[0] or (version[0] == SCHEMA_VERSION[0] and version[1] > SCHEMA_VERSION[1]):
        raise RhoDataError(
            f"schema version {version[0]}.{version[1]} is newer than this rho-data's "
            f"{SCHEMA_VERSION[0]}.{SCHEMA_VERSION[1]}: install a newer rho-data"
        )
    steps = [version]
    while steps[-1] != SCHEMA_VERSION:
        if steps[-1] not in UPGRADES:
            raise RhoDataError(f"no upgrade is known from schema version {steps[-1][0]}.{steps[-1][1]}")
        steps.append(UPGRADES[steps[-1]][0])
    return steps


def upgrade_file(path: str | PathLike, output: str | PathLike | None = None) -> list[Version]:
    """Upgrade a file (in place, or into ``output``); returns the versions it went through."""
    path = Path(path)
    steps = upgrade_path(file_version(path))
    if len(steps) == 1:
        return steps
    target = Path(output) if output is not None else path.with_name(path.name + ".upgrading")
    shutil.copyfile(path, target)
    with h5py.File(target, "r+", libver="latest") as h5:
        for version in steps[:-1]:
            next_version, step = UPGRADES[version]
            step(h5)
            h5.attrs["schema_version"] = list(next_version)
    if output is None:
        target.replace(path)
    return steps
