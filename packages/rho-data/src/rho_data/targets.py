"""A dataset's targets (schema 1.1): the main one (root attribute ``target``) and the further ones
under ``/structures/targets`` on the same overlap; their names and their columns."""

from __future__ import annotations

import h5py

from .errors import RhoDataError
from .header import names_attr, names_under
from .orbital_fields import target_name

GROUP = "structures/targets"


def further_targets(h5: h5py.File, kind: str, path) -> list[str]:
    """The further targets in the order the producer gave (attribute ``names``), else sorted."""
    stored = names_under(h5, GROUP) if kind == "dataset" else ()
    if not stored:
        return []
    order = names_attr(h5[GROUP].attrs.get("names", sorted(stored)))
    if sorted(order) != sorted(stored):
        raise RhoDataError(f"/{GROUP}: attribute 'names' {order} does not list the groups {sorted(stored)}", path=path)
    return order


def target_column(name: str, target: str | None, main: str, further: list[str], path) -> str:
    """The column of ``name`` (coefficients or projections) of ``target`` (None: the main target)."""
    if target is None or target == main:
        return name
    if target not in further:
        raise RhoDataError(f"no target '{target}' (the file holds {', '.join([main, *further])})", path=path)
    return f"targets/{target}/{name}"


def resolve_target(asked: str | None, targets: list[str], path) -> str:
    """The stored target ``asked`` means: a stored name, or a field name spelled another way
    (``density`` is ``electron_density``, ``HOMO`` is ``homo``); None is the main target."""
    if asked is None:
        return targets[0]
    if asked in targets:
        return asked
    try:
        name = target_name(asked)
    except RhoDataError:
        name = asked
    if name not in targets:
        raise RhoDataError(f"no target '{asked}' (the dataset holds {', '.join(targets)})", path=path)
    return name
