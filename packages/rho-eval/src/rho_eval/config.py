"""Settings of an evaluation: defaults -> YAML files (``-c``, in order) -> ``--set`` -> named options.

Every setting is a field of :class:`Settings` with its default and its meaning (what
``rho-eval options`` prints as commented YAML). The layers are merged by
:func:`rho_data.settings.load_layers`; each layer's values are checked as it is merged, so an error
names the file, the ``--set`` or the command line, the key and the value. Unknown keys are
errors; the expanded settings are written next to the results (``config.yaml``) so that a run
can be repeated and resumed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from os import PathLike
from typing import Any

from rho_data import RhoDataError
from rho_data.settings import commented_yaml, load_layers, merge_settings
from rho_data.yaml_input import parse_yaml_text, short_repr

from .errors import RhoEvalError


def _setting(default: Any, help: str) -> Any:
    """A field of :class:`Settings`: its default and the one-line help ``rho-eval options`` shows."""
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class Settings:
    """Every setting of ``rho-eval`` (``rho-eval options`` prints them with their meaning)."""

    select: str | None = _setting(None, 'rows of the predictions (of the dataset with fit_only and no predictions): "0:100,120"')
    fit_only: bool = _setting(False, "evaluate the RI fit against the SCF density instead of the predictions")
    target: str | None = _setting(
        None, "the dataset target (field) compared, e.g. homo; null: the predictions' target (fit_only: the dataset's main one)"
    )
    workers: int = _setting(1, "worker processes")
    chunk_size: int = _setting(4, "structures per worker task")
    backend: dict = _setting({}, "options passed to the producer's field builder factory (key: value)")
    grid_tolerance_bohr: float = _setting(1e-5, "largest distance (bohr) at which points of a structure's separate grids are the same point")
    position_tolerance_angstrom: float = _setting(1e-6, "largest difference (angstrom) of prediction and dataset positions")
    consistency_tolerance: float = _setting(1e-4, "largest accepted relative difference of the grid and the coefficient-space squared error")
    plots: bool = _setting(True, "write PNG plots")
    slice_structure: int | None = _setting(None, "dataset index of the density-difference slice (null: the worst structure)")
    slice_resolution: int = _setting(121, "points along each side of the slice (>= 2)")
    slice_margin_bohr: float = _setting(3.0, "space (bohr) around the atoms in the slice")
    cubes: str | None = _setting(None, 'dataset indices to write cube files for ("0,5", "worst"); null: no cubes')
    cube_spacing_bohr: float = _setting(0.25, "cube grid spacing, bohr")
    cube_margin_bohr: float = _setting(5.0, "space (bohr) around the atoms in a cube")

    def validate(self) -> Settings:
        """The type and range of every setting; the error names the key and the value."""
        positive = {
            "workers": self.workers,
            "chunk_size": self.chunk_size,
            "grid_tolerance_bohr": self.grid_tolerance_bohr,
            "position_tolerance_angstrom": self.position_tolerance_angstrom,
            "consistency_tolerance": self.consistency_tolerance,
            "slice_margin_bohr": self.slice_margin_bohr,
            "cube_spacing_bohr": self.cube_spacing_bohr,
            "cube_margin_bohr": self.cube_margin_bohr,
        }
        for name, value in positive.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
                raise RhoEvalError(f"setting '{name}' must be a positive number, got {short_repr(value)}")
        for name in ("workers", "chunk_size", "slice_resolution"):
            if not isinstance(getattr(self, name), int) or isinstance(getattr(self, name), bool):
                raise RhoEvalError(f"setting '{name}' must be an integer, got {short_repr(getattr(self, name))}")
        if self.slice_resolution < 2:
            raise RhoEvalError(f"setting 'slice_resolution' must be >= 2, got {self.slice_resolution}")
        if not isinstance(self.backend, dict):
            raise RhoEvalError(f"setting 'backend' must be a mapping of backend options, got {short_repr(self.backend)}")
        for name in ("fit_only", "plots"):
            if not isinstance(getattr(self, name), bool):
                raise RhoEvalError(f"setting '{name}' must be true or false, got {short_repr(getattr(self, name))}")
        for name in ("select", "cubes", "target"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), (str, int)):
                raise RhoEvalError(f"setting '{name}' must be text, got {short_repr(getattr(self, name))}")
        if self.slice_structure is not None and (not isinstance(self.slice_structure, int) or isinstance(self.slice_structure, bool)):
            raise RhoEvalError(f"setting 'slice_structure' must be a dataset index, got {short_repr(self.slice_structure)}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def options_text() -> str:
    """The defaults as YAML with a comment per setting (``rho-eval options``)."""
    comments = {f.name: f.metadata["help"] for f in fields(Settings)}
    header = (
        "rho-eval settings (defaults). Override with -c FILE (repeatable: a later file wins), --set key=value\n"
        "and the named options (--workers, --select, ...; -b key=value adds a backend option)."
    )
    return commented_yaml(Settings().to_dict(), comments, header=header, free=("backend",))


def _apply(current: dict, values: Mapping[str, Any], source: str) -> None:
    """Merge ``values`` into the settings ``current`` (unknown keys refused; ``backend`` options
    add up key by key), then check every setting: those before were valid, so a failure is this layer's."""
    unknown = sorted(map(str, set(values) - set(current)))
    if unknown:
        raise RhoEvalError(f"{source}: unknown setting(s) {short_repr(unknown)}; known settings are {sorted(current)}")
    values = dict(values)
    backend = values.pop("backend", None)
    merge_settings(current, values, error=lambda message: RhoEvalError(f"{source}: {message}"), free=(), noun="setting")
    if backend is not None:
        if not isinstance(backend, Mapping):
            raise RhoEvalError(f"{source}: setting 'backend' must be a mapping of backend options, got {short_repr(backend)}")
        for key in backend:
            if not isinstance(key, str):
                raise RhoEvalError(f"{source}: backend option names must be text, got {short_repr(key)}")
        current["backend"] = {**current["backend"], **dict(backend)}
    try:
        Settings(**current).validate()
    except RhoEvalError as err:
        raise RhoEvalError(f"{source}: {err}") from None


def load_settings(
    path: str | PathLike | Sequence[str | PathLike] | None = None,
    overrides: Mapping[str, Any] | None = None,
    sets: Sequence[str] = (),
) -> Settings:
    """Defaults, then the YAML file(s) at ``path`` in order, then the ``--set`` texts ``sets``,
    then the named ``overrides`` (None values are skipped)."""
    files = [] if path is None else [path] if isinstance(path, (str, PathLike)) else list(path)
    current = load_layers(Settings().to_dict(), files, sets, merge=_apply, error=RhoEvalError)
    _apply(current, {k: v for k, v in (overrides or {}).items() if v is not None}, "command line")
    return Settings(**current).validate()


def parse_backend_options(items: list[str]) -> dict[str, Any]:
    """``["key=value", ...]`` -> ``{key: value}``, each value read as YAML (numbers, booleans, lists)."""
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise RhoEvalError(f"backend option {short_repr(item)} must look like key=value")
        try:
            options[key.strip()] = parse_yaml_text(value, source=f"backend option '{key.strip()}'") if value.strip() else ""
        except RhoDataError as err:
            raise RhoEvalError(str(err)) from None
    return options
