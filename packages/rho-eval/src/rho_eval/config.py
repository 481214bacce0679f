"""Settings of an evaluation: defaults -> user YAML -> command-line overrides.

Unknown keys are errors; the expanded settings are written next to the results
(``config.yaml``) so that a run can be repeated and resumed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rho_data import RhoDataError
from rho_data.settings import merge_settings
from rho_data.yaml_input import load_yaml_file, parse_yaml_text, short_repr

from .errors import RhoEvalError


@dataclass
class Settings:
    """Every setting of ``rho-eval`` (see the README for their meaning)."""

    select: str | None = None
    """Rows of the predictions (of the dataset with --fit-only and no predictions): "0:100,120"."""
    fit_only: bool = False
    """Evaluate the RI fit against the SCF density instead of the predictions."""
    workers: int = 1
    chunk_size: int = 4
    backend: dict = field(default_factory=dict)
    """Options passed to the producer's field builder factory."""
    grid_tolerance_bohr: float = 1e-5
    position_tolerance_angstrom: float = 1e-6
    consistency_tolerance: float = 1e-4
    """Largest accepted relative difference between the grid and the coefficient-space squared error."""
    plots: bool = True
    slice_structure: int | None = None
    """Dataset index of the structure of the density-difference slice (None: the worst one)."""
    slice_resolution: int = 121
    slice_margin_bohr: float = 3.0
    cubes: str | None = None
    """Dataset indices to write cube files for ("0,5", "worst"), or None for no cubes."""
    cube_spacing_bohr: float = 0.25
    cube_margin_bohr: float = 5.0

    def validate(self) -> Settings:
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
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
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
        for name in ("select", "cubes"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), (str, int)):
                raise RhoEvalError(f"setting '{name}' must be text, got {short_repr(getattr(self, name))}")
        if self.slice_structure is not None and (not isinstance(self.slice_structure, int) or isinstance(self.slice_structure, bool)):
            raise RhoEvalError(f"setting 'slice_structure' must be a dataset index, got {short_repr(self.slice_structure)}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _apply(settings: Settings, values: Mapping[str, Any], source: str) -> None:
    """Merge ``values`` into ``settings`` (unknown keys refused; ``backend`` options add up key by key)."""
    current = settings.to_dict()
    unknown = sorted(map(str, set(values) - set(current)))
    if unknown:
        raise RhoEvalError(f"{source}: unknown setting(s) {short_repr(unknown)}; known settings are {sorted(current)}")
    values = dict(values)
    backend = values.pop("backend", None)
    merge_settings(current, values, error=lambda message: RhoEvalError(f"{source}: {message}"), free=(), noun="setting")
    for name, value in current.items():
        setattr(settings, name, value)
    if backend is not None:
        if not isinstance(backend, Mapping):
            raise RhoEvalError(f"{source}: setting 'backend' must be a mapping of backend options, got {short_repr(backend)}")
        for key in backend:
            if not isinstance(key, str):
                raise RhoEvalError(f"{source}: backend option names must be text, got {short_repr(key)}")
        settings.backend = {**settings.backend, **dict(backend)}


def load_settings(path: Path | None = None, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Defaults, then the YAML file at ``path``, then ``overrides`` (None values are skipped)."""
    settings = Settings()
    if path is not None:
        if not Path(path).exists():
            raise RhoEvalError("settings file not found", path=path)
        try:
            loaded = load_yaml_file(path)  # no aliases, bounded size and depth, one-line errors
        except RhoDataError as err:
            raise RhoEvalError(str(err)) from None
        if loaded is not None and not isinstance(loaded, dict):
            raise RhoEvalError("a settings file must hold a mapping of settings", path=path)
        _apply(settings, loaded or {}, str(path))
        try:
            settings.validate()
        except RhoEvalError as err:
            raise RhoEvalError(str(err), path=path) from None
    _apply(settings, {k: v for k, v in (overrides or {}).items() if v is not None}, "command line")
    return settings.validate()


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
