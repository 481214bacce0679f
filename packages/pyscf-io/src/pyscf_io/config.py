"""Settings: defaults -> user YAML -> command-line overrides, validated strictly.

The defaults live in one YAML text (:data:`DEFAULT_YAML`, printed by ``pyscf-io options``) so
that the documentation of every key sits next to its value. Unknown keys are errors.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import yaml

from rho_data.settings import merge_settings

from .errors import PyscfIoError

DEFAULT_YAML = """\
# pyscf-io settings (defaults). Override with --config FILE and command-line options.

# --- electronic structure -------------------------------------------------------------
xc: PBE                  # exchange-correlation functional (PySCF/libxc name; HF for Hartree-Fock)
basis: def2-SVP          # AO basis (any name PySCF knows)
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
fit_metric: coulomb      # coulomb: d = J^-1 (P|rho);  overlap: d = S^-1 <P|rho>
fit_rcond: 1.0e-12       # metric eigenvalues below fit_rcond * largest are dropped (see README)
overlap_threshold: 1.0e-12  # atom-pair overlap blocks with all |S_ab| below this are not stored

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

_CHOICES = {"fit_metric": ("coulomb", "overlap")}
_TYPES: dict[str, tuple[type, ...]] = {
    "xc": (str,),
    "basis": (str,),
    "scf_aux_basis": (str, type(None)),
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
)


def _merge(base: dict, update: Mapping, source: str) -> None:
    merge_settings(base, update, error=lambda message: PyscfIoError(f"{source}: {message}"))


def _validate(settings: dict, source: str) -> None:
    flat = {**{k: v for k, v in settings.items() if k != "slurm"}, **settings["slurm"]}
    for key, value in flat.items():
        types = _TYPES[key]
        if isinstance(value, bool) or not isinstance(value, types):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise PyscfIoError(f"{source}: setting '{key}' must be {names}, got {value!r}")
    for key, choices in _CHOICES.items():
        settings[key] = settings[key].lower()
        if settings[key] not in choices:
            raise PyscfIoError(f"{source}: setting '{key}' must be one of {choices}, got {settings[key]!r}")
    positive = ("grid_level", "scf_max_cycle", "workers", "threads")
    for key in positive:
        if settings[key] < (0 if key == "grid_level" else 1):
            raise PyscfIoError(f"{source}: setting '{key}' must be positive, got {settings[key]!r}")
    if settings["spin"] < 0:
        raise PyscfIoError(f"{source}: setting 'spin' (2S) must be >= 0, got {settings['spin']}")
    if not settings["etb_beta"] > 1.0:
        raise PyscfIoError(f"{source}: setting 'etb_beta' must be > 1, got {settings['etb_beta']}")
    for key in ("scf_conv_tol", "fit_rcond"):
        if not settings[key] > 0:
            raise PyscfIoError(f"{source}: setting '{key}' must be > 0, got {settings[key]}")
    if settings["overlap_threshold"] < 0:
        raise PyscfIoError(f"{source}: setting 'overlap_threshold' must be >= 0, got {settings['overlap_threshold']}")
    for key in ("cpus_per_task", "structures_per_task"):
        if settings["slurm"][key] < 1:
            raise PyscfIoError(f"{source}: setting 'slurm.{key}' must be >= 1, got {settings['slurm'][key]}")
    for key in ("extra_sbatch", "setup"):
        if not all(isinstance(line, str) for line in settings["slurm"][key]):
            raise PyscfIoError(f"{source}: setting 'slurm.{key}' must be a list of strings")
    for key in ("scf_conv_tol", "fit_rcond", "overlap_threshold", "etb_beta", "min_distance"):
        settings[key] = float(settings[key])


def load_settings(config: str | PathLike | None = None, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults, updated by the YAML file ``config`` and then by ``overrides`` (None values ignored).

    ``overrides`` uses flat keys; ``slurm.<key>`` addresses the SLURM section.
    """
    settings = copy.deepcopy(DEFAULTS)
    if config is not None:
        path = Path(config)
        try:
            data = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            raise PyscfIoError(f"{path}: no such settings file") from None
        except yaml.YAMLError as err:
            raise PyscfIoError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
        if data is not None:
            if not isinstance(data, Mapping):
                raise PyscfIoError(f"{path}: a settings file must be a mapping of settings, got {type(data).__name__}")
            _merge(settings, data, str(path))
    nested: dict[str, Any] = {}
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key.startswith("slurm."):
            nested.setdefault("slurm", {})[key[len("slurm.") :]] = value
        else:
            nested[key] = value
    _merge(settings, nested, "command line")
    _validate(settings, str(config) if config is not None else "settings")
    return settings


def physics(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that define the reference data."""
    return {k: settings[k] for k in PHYSICS_KEYS}


def dump_settings(settings: Mapping[str, Any], path: str | PathLike) -> None:
    """Write the fully expanded settings as YAML."""
    Path(path).write_text(yaml.safe_dump(dict(settings), sort_keys=False))
