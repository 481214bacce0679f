"""Reading the input structures: any file ASE reads, with an optional index selection.

A file that cannot be read at all (missing, empty, unknown format) or a frame that is
malformed becomes an :class:`InputProblem`; the frames read before it still run.

Per-structure charge and spin come from the frame's info keys (extxyz comment line):
``charge`` (total charge), ``spin`` (2S = N_alpha - N_beta, as the ``spin`` setting) or
``multiplicity`` (2S + 1). A frame without them uses the run's settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np

from rho_data.yaml_input import short_repr

from .cell import cell_problem
from .errors import PyscfIoError


@dataclass(frozen=True)
class InputStructure:
    """One selected structure: where it came from and its geometry (Angstrom)."""

    source: str
    frame: int
    label: str
    numbers: tuple[int, ...]
    positions: tuple[tuple[float, float, float], ...]
    charge: int | None = None  # None: the run's setting
    spin: int | None = None  # 2S; None: the run's setting
    cell: tuple[tuple[float, float, float], ...] | None = None  # lattice vectors as rows (Angstrom); None: a molecule
    pbc: tuple[bool, bool, bool] = (False, False, False)

    def to_json(self) -> dict:
        out = {
            "source": self.source,
            "frame": self.frame,
            "label": self.label,
            "numbers": list(self.numbers),
            "positions": [list(p) for p in self.positions],
            "charge": self.charge,
            "spin": self.spin,
        }
        if self.periodic:  # molecules keep the layout of earlier work directories
            out["cell"] = [list(v) for v in self.cell]  # type: ignore[union-attr]
            out["pbc"] = list(self.pbc)
        return out

    @classmethod
    def from_json(cls, data: dict) -> InputStructure:
        charge, spin = data.get("charge"), data.get("spin")
        return cls(
            data["source"],
            int(data["frame"]),
            data["label"],
            tuple(int(z) for z in data["numbers"]),
            tuple(tuple(float(x) for x in p) for p in data["positions"]),
            None if charge is None else int(charge),
            None if spin is None else int(spin),
            None if data.get("cell") is None else tuple(tuple(float(x) for x in v) for v in data["cell"]),
            tuple(bool(p) for p in data.get("pbc", (False, False, False))),  # type: ignore[arg-type]
        )

    @property
    def periodic(self) -> bool:
        return any(self.pbc)

    @property
    def cell_array(self) -> np.ndarray:
        """Lattice vectors as rows (Angstrom); zeros for a molecule."""
        return np.zeros((3, 3)) if self.cell is None else np.array(self.cell, dtype=np.float64).reshape(3, 3)

    def charge_spin(self, settings: dict) -> tuple[int, int]:
        """(charge, 2S): the structure's own values where given, else the run's settings."""
        return (settings["charge"] if self.charge is None else self.charge, settings["spin"] if self.spin is None else self.spin)

    @property
    def positions_array(self) -> np.ndarray:
        return np.array(self.positions, dtype=np.float64).reshape(-1, 3)


@dataclass(frozen=True)
class InputProblem:
    """A file or frame that could not be read."""

    source: str
    message: str


def _selection(index: str | None):
    from ase.io.formats import string2index

    if index is None or index == "":
        return slice(None)
    bad = ValueError(f"index {short_repr(index)} is not an integer or a slice like ':10' or '::2'")
    try:
        selection = string2index(index)
    except ValueError:
        raise bad from None
    if isinstance(selection, slice):
        if selection.step == 0:
            raise ValueError(f"index {short_repr(index)}: the step of a slice must not be 0")
        return selection
    if isinstance(selection, int):
        return selection
    raise bad


def check_index(index: str | None) -> None:
    """Refuse a bad ``--index`` value before anything is read (one line)."""
    try:
        _selection(index)
    except ValueError as err:
        raise PyscfIoError(f"--index: {err}") from None


def _integer(info: dict, key: str) -> int | None:
    """An integer info value (ints, or floats with no fraction); None when absent."""
    if key not in info:
        return None
    value = info[key]
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not float(value).is_integer()
    ):
        raise ValueError(f"info key '{key}' must be an integer, got {value.item() if isinstance(value, np.generic) else value!r}")
    return int(value)


def charge_and_spin(info: dict) -> tuple[int | None, int | None]:
    """(charge, 2S) from a frame's info keys ``charge``, ``spin`` (2S) and ``multiplicity`` (2S + 1)."""
    charge, spin, multiplicity = _integer(info, "charge"), _integer(info, "spin"), _integer(info, "multiplicity")
    if multiplicity is not None:
        if multiplicity < 1:
            raise ValueError(f"info key 'multiplicity' (2S + 1) must be >= 1, got {multiplicity}")
        if spin is not None and spin != multiplicity - 1:
            raise ValueError(f"info keys 'spin' = {spin} (2S) and 'multiplicity' = {multiplicity} (2S + 1) disagree")
        spin = multiplicity - 1
    if spin is not None and spin < 0:
        raise ValueError(f"info key 'spin' (2S) must be >= 0, got {spin}")
    return charge, spin


def read_structures(path: str | PathLike, index: str | None = None) -> tuple[list[InputStructure], list[InputProblem]]:
    """The selected frames of one geometry file, and what could not be read."""
    import ase.io

    path = Path(path)
    source = str(path)
    try:
        selection = _selection(index)
    except ValueError as err:
        return [], [InputProblem(source, str(err))]
    if not path.is_file():
        return [], [InputProblem(source, "no such file")]
    if path.stat().st_size == 0:
        return [], [InputProblem(source, "the geometry file is empty")]
    frames = []
    problems: list[InputProblem] = []
    try:
        for atoms in ase.io.iread(source, index=":"):
            frames.append(atoms)  # noqa: PERF402 - keep the frames read before an error
    except Exception as err:  # noqa: BLE001 - ASE raises many types for malformed input
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        problems.append(
            InputProblem(
                source, f"structure {len(frames)}: cannot be read ({reason}); the {len(frames)} structures before it are used"
            )
        )
    if not frames and not problems:
        problems.append(InputProblem(source, "the geometry file holds no structures"))
    numbered = list(enumerate(frames))
    if isinstance(selection, int):
        if not -len(frames) <= selection < len(frames):
            problems.append(InputProblem(source, f"index {selection} is out of range ({len(frames)} structures read)"))
            return [], problems
        chosen = [numbered[selection]]
    else:
        chosen = numbered[selection]
    out = []
    for frame, atoms in chosen:
        label = str(atoms.info.get("label", atoms.info.get("name", f"{path.name}:{frame}")))
        if len(atoms) == 0:
            problems.append(InputProblem(source, f"structure {frame}: has no atoms"))
            continue
        problem = cell_problem(np.asarray(atoms.cell[:]), atoms.pbc)
        if problem:
            problems.append(InputProblem(source, f"structure {frame} ({label}): {problem}"))
            continue
        try:
            charge, spin = charge_and_spin(atoms.info)
        except ValueError as err:
            problems.append(InputProblem(source, f"structure {frame}: {err}"))
            continue
        positions = tuple(tuple(float(x) for x in p) for p in atoms.positions)
        cell, pbc = None, (False, False, False)
        if atoms.pbc.any():
            cell = tuple(tuple(float(x) for x in v) for v in np.asarray(atoms.cell[:]))
            pbc = tuple(bool(p) for p in atoms.pbc)
        numbers = tuple(int(z) for z in atoms.numbers)
        out.append(InputStructure(source, frame, label, numbers, positions, charge, spin, cell, pbc))  # type: ignore[arg-type]
    return out, problems
