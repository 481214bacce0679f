"""Settings: defaults -> user YAML -> command-line overrides, validated strictly.

The defaults live in one YAML text (:data:`DEFAULT_YAML`, printed by ``pyscf-io options``) so
that the documentation of every key sits next to its value. Settings files (``-c``, in order)
and ``--set key=value`` are layered by :func:`rho_data.settings.load_layers`, then the named
options (``--xc``, ``--basis``, ...); every value is checked (type, range, choice) as its layer
is merged, so an error names the file, the ``--set`` or the command line, the key and the value.
Unknown keys are errors.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import yaml

from rho_data import RhoDataError
from rho_data.atomic import write_text_atomic
from rho_data.orbital_fields import parse_field
from rho_data.settings import load_layers, merge_settings
from rho_data.yaml_input import load_yaml_file, short_repr

from .errors import PyscfIoError

DEFAULT_YAML = """\
# pyscf-io settings (defaults). Override with -c FILE (repeatable: a later file wins), --set key=value
# (slurm.key=value for the slurm section) and the named options (--xc, --basis, ...).

# --- electronic structure -------------------------------------------------------------
xc: PBE                  # exchange-correlation functional (PySCF/libxc name; HF for Hartree-Fock)
basis: def2-SVP          # AO basis (any name PySCF knows)
scf_density_fit: true    # density-fitted SCF (J/K from scf_aux_basis); false: exact four-centre integrals
scf_aux_basis: null      # auxiliary basis of the density-fitted SCF; null = PySCF's default for `basis`
charge: 0                # total charge (a structure's extxyz info key 'charge' overrides it)
spin: 0                  # 2S = N_alpha - N_beta; 0 runs restricted, > 0 unrestricted (info 'spin'/'multiplicity' override)
grid_level: 3            # PySCF DFT grid level (0-9): SCF, fit error and rebuilt fields
scf_conv_tol: 1.0e-9     # SCF energy convergence, hartree
scf_max_cycle: 100       # SCF cycle limit; a structure that does not converge is recorded as failed
min_distance: 0.5        # angstrom; atoms closer than this are an input error

# --- density fit (the learning target) ---------------------------------------------------
aux_basis: etb           # 'etb' (even-tempered, PySCF aug_etb) or a basis name, e.g. def2-universal-jkfit
etb_beta: 1.6            # ratio of successive exponents of the even-tempered basis
fit_metric: auto         # coulomb: d = J^-1 (P|rho);  overlap: d = S^-1 <P|rho>;  auto: coulomb (molecules), overlap (cells)
fit_rcond: 1.0e-12       # metric eigenvalues below fit_rcond * largest are dropped (see README)
overlap_threshold: 1.0e-12  # atom-pair overlap blocks with all |S_ab| below this are not stored
fields: [density]        # fields fitted from one SCF, the first the dataset's main target (rho-data SCHEMA.md 3.1):
                         # density, spin_density, homo(-K), lumo(+K), ildos:EMIN:EMAX[:SIGMA], ldos:E:SIGMA (eV from the HOMO)
degeneracy_ev: 1.0e-3    # orbitals closer than this (eV) form one level of the homo/lumo fields

# --- periodic structures (frames with a cell and pbc T T T or T T F) ----------------------
cell_basis: gth-dzvp     # AO basis of cells (`basis` is for molecules); the aux basis is built from it as above
pseudo: gth-pbe          # pseudopotential of cells (PySCF name); null: all-electron
kmesh: [1, 1, 1]         # Monkhorst-Pack k-mesh of cells; [1, 1, 1] = the Gamma point
cell_scf: auto           # gdf | multigrid | fftdf: the SCF's integrals; auto: gdf (multigrid: faster, opt-in, README)
cell_smearing_ev: 0.0    # Fermi-Dirac smearing width of cells, eV (0: integer occupations); e.g. 0.1 for small-gap cells
cell_fit_integrals: grid # grid: <P|rho> on the SCF's uniform mesh; analytic: three-centre overlaps (Gamma only)

# --- execution ---------------------------------------------------------------------------
workers: 1               # local worker processes
threads: 1               # threads per worker (OMP_NUM_THREADS)
slurm:
  partition: null        # --partition (null: the cluster's default)
  account: null          # --account
  time: "01:00:00"       # --time of each array task
  cpus_per_task: 1       # --cpus-per-task (also the threads of PySCF in the task)
  mem: null              # --mem, e.g. 4G
  structures_per_task: 10  # structures handled by one array task
  max_concurrent: null   # array throttle (%N)
  extra_sbatch: []       # more '#SBATCH' options, e.g. ["--qos=short"]
  setup: []              # shell lines run before the task, e.g. ["module load foo"]
"""

DEFAULTS: dict[str, Any] = yaml.safe_load(DEFAULT_YAML)

_CHOICES = {
    "fit_metric": ("auto", "coulomb", "overlap"),
    "cell_scf": ("auto", "multigrid", "gdf", "fftdf"),
    "cell_fit_integrals": ("grid", "analytic"),
}
_TYPES: dict[str, tuple[type, ...]] = {
    "xc": (str,),
    "basis": (str,),
    "scf_aux_basis": (str, type(None)),
    "scf_density_fit": (bool,),
    "charge": (int,),
    "spin": (int,),
    "grid_level": (int,),
    "scf_conv_tol": (float, int),
    "scf_max_cycle": (int,),
    "min_distance": (float, int),
    "aux_basis": (str,),
    "etb_beta": (float, int),
    "fit_metric": (str,),
    "fit_rcond": (float, int),
    "overlap_threshold": (float, int),
    "fields": (list,),
    "degeneracy_ev": (float, int),
    "cell_basis": (str,),
    "pseudo": (str, type(None)),
    "kmesh": (list,),
    "cell_scf": (str,),
    "cell_smearing_ev": (float, int),
    "cell_fit_integrals": (str,),
    "workers": (int,),
    "threads": (int,),
    "partition": (str, type(None)),
    "account": (str, type(None)),
    "time": (str,),
    "cpus_per_task": (int,),
    "mem": (str, type(None)),
    "structures_per_task": (int,),
    "max_concurrent": (int, type(None)),
    "extra_sbatch": (list,),
    "setup": (list,),
}

#: Settings that define the reference data (a work directory refuses to mix them).
PHYSICS_KEYS = (
    "xc",
    "basis",
    "scf_density_fit",
    "scf_aux_basis",
    "charge",
    "spin",
    "grid_level",
    "scf_conv_tol",
    "scf_max_cycle",
    "min_distance",
    "aux_basis",
    "etb_beta",
    "fit_metric",
    "fit_rcond",
    "overlap_threshold",
    "fields",
    "degeneracy_ev",
    "cell_basis",
    "pseudo",
    "kmesh",
    "cell_scf",
    "cell_smearing_ev",
    "cell_fit_integrals",
)
#: Settings added after the first release, with the value older work directories imply.
IMPLIED = {
    "scf_density_fit": True,
    "fields": ["density"],
    "degeneracy_ev": 1.0e-3,
    "cell_basis": "gth-dzvp",
    "pseudo": "gth-pbe",
    "kmesh": [1, 1, 1],
    "cell_scf": "auto",
    "cell_smearing_ev": 0.0,
    "cell_fit_integrals": "grid",
}


def _merge(base: dict, update: Mapping, source: str) -> None:
    """Merge one layer: unknown keys refused, every value checked (and normalised) on the way in."""
    merge_settings(
        base,
        update,
        error=lambda message: PyscfIoError(f"{source}: {message}"),
        check=lambda default, value, name: _checked(name, value, source),
    )


def _type_names(types: tuple[type, ...]) -> str:
    return " or ".join("null" if t is type(None) else t.__name__ for t in types)


#: (lower bound, inclusive?, upper bound, inclusive?) of the numeric settings; None: unbounded.
_RANGES: dict[str, tuple[float | None, bool, float | None, bool]] = {
    "charge": (-1000, True, 1000, True),
    "spin": (0, True, 1000, True),
    "grid_level": (0, True, 9, True),
    "scf_conv_tol": (0, False, 1, True),
    "scf_max_cycle": (1, True, None, True),
    "min_distance": (0, True, None, True),
    "etb_beta": (1, False, None, True),
    "fit_rcond": (0, False, 1, False),
    "overlap_threshold": (0, True, 1, False),
    "degeneracy_ev": (0, True, 1, True),
    "cell_smearing_ev": (0, True, 10, True),
    "workers": (1, True, 4096, True),
    "threads": (1, True, 4096, True),
    "cpus_per_task": (1, True, 4096, True),
    "structures_per_task": (1, True, None, True),
    "max_concurrent": (1, True, None, True),
}
_NON_EMPTY = ("xc", "basis", "aux_basis", "time", "cell_basis", "pseudo")


def _range_text(low, low_in, high, high_in) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>=' if low_in else '>'} {low:g}")
    if high is not None:
        parts.append(f"{'<=' if high_in else '<'} {high:g}")
    return " and ".join(parts)


def _check_value(name: str, key: str, value: Any, source: str) -> None:
    """One setting: its type, its range; the error names the file and the key."""
    types = _TYPES[key]
    if isinstance(value, bool) and bool not in types or not isinstance(value, types):
        raise PyscfIoError(f"{source}: setting '{name}' must be {_type_names(types)}, got {short_repr(value)}")
    if key in _NON_EMPTY and value is not None and not value.strip():
        raise PyscfIoError(f"{source}: setting '{name}' must not be empty")
    if isinstance(value, float) and not math.isfinite(value) or float in types and isinstance(value, int) and abs(value) > 1e300:
        raise PyscfIoError(f"{source}: setting '{name}' must be a finite number, got {short_repr(value)}")
    if key in _RANGES and value is not None:
        low, low_in, high, high_in = _RANGES[key]
        below = low is not None and (value < low or (value == low and not low_in))
        above = high is not None and (value > high or (value == high and not high_in))
        if below or above:
            raise PyscfIoError(
                f"{source}: setting '{name}' must be {_range_text(low, low_in, high, high_in)}, got {short_repr(value)}"
            )
    if key == "fields":
        _check_fields(name, value, source)
    if key == "kmesh" and (
        len(value) != 3 or any(isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 64 for n in value)
    ):
        raise PyscfIoError(
            f"{source}: setting '{name}' must be three integers from 1 to 64, e.g. [2, 2, 2], got {short_repr(value)}"
        )
    if key in ("extra_sbatch", "setup"):
        for k, line in enumerate(value):
            if not isinstance(line, str):
                raise PyscfIoError(f"{source}: setting '{name}[{k}]' must be a string, got {short_repr(line)}")


def _check_fields(name: str, value: list, source: str) -> None:
    """Field names (rho_data.orbital_fields), made canonical in place; at least one, none twice."""
    if not value:
        raise PyscfIoError(f"{source}: setting '{name}' needs at least one field (e.g. [density])")
    try:
        value[:] = [str(parse_field(str(v))) for v in value]
    except RhoDataError as err:
        raise PyscfIoError(f"{source}: setting '{name}': {err}") from None
    if len(set(value)) != len(value):
        raise PyscfIoError(f"{source}: setting '{name}' names a field twice: {value}")


def _checked(name: str, value: Any, source: str) -> Any:
    """One setting (dotted ``name``) checked: type, range, choice; choices lower-cased, numbers of
    float settings as float."""
    key = name.rsplit(".", 1)[-1]
    _check_value(name, key, value, source)
    if key in _CHOICES:
        value = value.lower()
        if value not in _CHOICES[key]:
            raise PyscfIoError(f"{source}: setting '{name}' must be one of {_CHOICES[key]}, got {short_repr(value)}")
    if key in _FLOATS:
        value = float(value)
    return value


_FLOATS = ("cell_smearing_ev", "scf_conv_tol", "fit_rcond", "overlap_threshold", "etb_beta", "min_distance", "degeneracy_ev")


def validate_settings(settings: dict, source: str) -> None:
    """Check the type and range of every setting (in place: choices lower-cased, floats as float)."""
    if not isinstance(settings.get("slurm"), dict):
        raise PyscfIoError(f"{source}: setting 'slurm' must be a mapping, got {short_repr(settings.get('slurm'))}")
    missing = sorted({*DEFAULTS} - {*settings}) + sorted(f"slurm.{k}" for k in {*DEFAULTS["slurm"]} - {*settings["slurm"]})
    if missing:
        raise PyscfIoError(f"{source}: setting '{missing[0]}' is missing")
    for key, value in settings.items():
        if key != "slurm":
            settings[key] = _checked(key, value, source)
    for key, value in settings["slurm"].items():
        settings["slurm"][key] = _checked(f"slurm.{key}", value, source)


def load_settings(
    config: str | PathLike | Sequence[str | PathLike] | None = None,
    overrides: Mapping[str, Any] | None = None,
    sets: Sequence[str] = (),
) -> dict[str, Any]:
    """Defaults, updated by the YAML file(s) ``config`` in order, then by the ``--set`` texts
    ``sets`` (``key=value``, ``slurm.key=value``), then by the named options ``overrides``.

    ``overrides`` uses flat keys (None values ignored); ``slurm.<key>`` addresses the SLURM
    section. Files are read with :func:`rho_data.settings.load_layers` (no aliases, bounded size, UTF-8).
    """
    files = [] if config is None else [config] if isinstance(config, (str, PathLike)) else list(config)
    settings = load_layers(DEFAULTS, files, sets, merge=_merge, error=PyscfIoError)
    nested: dict[str, Any] = {}
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key.startswith("slurm."):
            nested.setdefault("slurm", {})[key[len("slurm.") :]] = value
        else:
            nested[key] = value
    _merge(settings, nested, "command line")
    validate_settings(settings, "settings")
    return settings


def _read_yaml(path: Path) -> Any:
    try:
        return load_yaml_file(path)
    except PyscfIoError:
        raise
    except RhoDataError as err:
        raise PyscfIoError(str(err)) from None


def read_settings_file(path: str | PathLike) -> dict[str, Any]:
    """The expanded settings a work directory holds (``settings.yaml``), checked like user settings."""
    path = Path(path)
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise PyscfIoError(f"{path}: not a pyscf-io settings file (a mapping of settings), got {type(data).__name__}")
    for key, implied in IMPLIED.items():  # written before the setting existed
        data.setdefault(key, copy.deepcopy(implied))
    unknown = sorted(map(str, {*data} - {*DEFAULTS}))
    if unknown:
        raise PyscfIoError(f"{path}: unknown setting '{unknown[0]}'")
    validate_settings(data, str(path))
    return data


def fit_metric(settings: Mapping[str, Any], periodic: bool = False) -> str:
    """The metric of the fit: the setting, ``auto`` meaning coulomb for molecules and overlap for cells."""
    metric = settings["fit_metric"]
    if metric == "auto":
        return "overlap" if periodic else "coulomb"
    return metric


def physics(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that define the reference data (older runs imply the values in :data:`IMPLIED`)."""
    return {k: settings[k] if k in settings else copy.deepcopy(IMPLIED[k]) for k in PHYSICS_KEYS}


def dump_settings(settings: Mapping[str, Any], path: str | PathLike) -> None:
    """Write the fully expanded settings as YAML (atomically, replacing the file)."""
    write_text_atomic(path, yaml.safe_dump(dict(settings), sort_keys=False), what="settings file")
