"""Featomic calls of bounded size: whole structures grouped, large ones cut into compact pieces.

A descriptor of a centre depends only on the atoms within the cutoff, so a large
non-periodic structure is cut by recursive coordinate bisection into groups of at most
``max_atoms`` centres, and each group is computed on the sub-structure made of the group
and its halo (atoms within the cutoff). Work and memory per call are bounded, so the
total grows linearly with the number of atoms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rho_data.layout import Key


@dataclass
class Call:
    """One featomic call: whole ``frames``, or (``centres`` is set) some centres of one frame.

    For a split non-periodic frame, ``sub_atoms`` holds the centres and every atom within the
    cutoff of them (the halo), ``sub_index`` maps sub-structure atoms to frame atoms and
    ``local_centres`` are the centres' positions in ``sub_atoms``. A periodic frame is not cut:
    ``sub_atoms`` is the whole frame and only the centres are selected.
    """

    frames: list[int]
    centres: np.ndarray | None = None
    sub_atoms: Any = None
    sub_index: np.ndarray | None = None
    local_centres: np.ndarray | None = None


def plan_calls(frames: Sequence[Any], max_atoms: int, cutoff: float) -> list[Call]:
    """Group whole structures into calls of at most ``max_atoms`` atoms; split larger ones.

    A structure with more than ``max_atoms`` atoms is cut into spatially compact groups of
    centres by recursive coordinate bisection, each computed with its halo of neighbours
    within ``cutoff``: the work per call is bounded, so the total is linear in the atoms.
    """
    max_atoms = max(1, int(max_atoms))
    calls: list[Call] = []
    group: list[int] = []
    count = 0
    for i, atoms in enumerate(frames):
        n = len(atoms)
        if n > max_atoms:
            calls.extend(_split_frame(i, atoms, max_atoms, cutoff))
            continue
        if group and count + n > max_atoms:
            calls.append(Call(group))
            group, count = [], 0
        group.append(i)
        count += n
    if group:
        calls.append(Call(group))
    return calls


def _bisect(indices: np.ndarray, positions: np.ndarray, max_atoms: int) -> list[np.ndarray]:
    if len(indices) <= max_atoms:
        return [indices]
    pos = positions[indices]
    axis = int(np.argmax(pos.max(axis=0) - pos.min(axis=0)))
    order = indices[np.argsort(pos[:, axis], kind="stable")]
    half = len(order) // 2
    return _bisect(order[:half], positions, max_atoms) + _bisect(order[half:], positions, max_atoms)


def _split_frame(i: int, atoms: Any, max_atoms: int, cutoff: float) -> list[Call]:
    from scipy.spatial import cKDTree

    positions = np.asarray(atoms.positions)
    groups = _bisect(np.arange(len(atoms)), positions, max_atoms)
    if np.any(atoms.pbc):
        return [Call([i], np.sort(g), atoms, np.arange(len(atoms)), np.sort(g)) for g in groups]
    tree = cKDTree(positions)
    calls = []
    for g in groups:
        centres = np.sort(g)
        near = tree.query_ball_point(positions[centres], r=cutoff)
        halo = np.setdiff1d(np.unique(np.concatenate([np.asarray(n, dtype=np.int64) for n in near])), centres)
        sub_index = np.concatenate([centres, halo])
        calls.append(Call([i], centres, atoms[sub_index], sub_index, np.arange(len(centres))))
    return calls


def row_positions(frames: Sequence[Any], keys: Sequence[Key]):
    """rank[f][a]: position of atom a among the atoms of its element in frame f; per key the
    offset of each frame's rows; total rows per key."""
    rank = Ranks(frames)
    offsets: dict[Key, np.ndarray] = {}
    totals: dict[Key, int] = {}
    for k in keys:
        counts = np.array([int(np.sum(np.asarray(a.numbers) == k[1])) for a in frames], dtype=np.int64)
        offsets[k] = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        totals[k] = int(counts.sum())
    return rank, offsets, totals


class Ranks:
    def __init__(self, frames: Sequence[Any]):
        self._ranks = []
        for a in frames:
            numbers = np.asarray(a.numbers)
            r = np.zeros(len(numbers), dtype=np.int64)
            for z in np.unique(numbers):
                mask = numbers == z
                r[mask] = np.arange(int(mask.sum()))
            self._ranks.append(r)

    def __getitem__(self, frame: int) -> np.ndarray:
        return self._ranks[frame]


def rows_to_positions(rows: np.ndarray, rank: Ranks, offsets: np.ndarray) -> np.ndarray:
    """Row index in (frame, atom) order of each (frame, atom) pair of one key."""
    out = np.empty(len(rows), dtype=np.int64)
    for f in np.unique(rows[:, 0]):
        mask = rows[:, 0] == f
        out[mask] = offsets[f] + rank[int(f)][rows[mask, 1]]
    return out
