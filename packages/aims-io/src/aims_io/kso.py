"""Kohn-Sham orbital information of FHI-aims and the orbital weights of a field.

The SCF run, with ``ri_fit_write_orbital_info .true.``, writes ``ks_orbital_info.out`` (older
versions: ``eigenstate_info.out``): one row per Kohn-Sham orbital with seven columns, the
orbital index (1-based, the row order), the state index, the spin channel and the k-point
(1-based), the k-point weight, the occupation (electrons) and the eigenvalue (eV). The RI-fit
run, with ``ri_fit_field_from_kso_weights .true.``, fits the field
rho_f = sum_i w_i |psi_i|^2 whose weights it reads from ``ks_orbital_weights.in``: one weight
per line in the same row order. The weights of a field name are those of
:mod:`rho_data.orbital_fields`, the same for FHI-aims and PySCF.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rho_data.orbital_fields import DEFAULT_DEGENERACY_EV, FieldSpec, KohnShamStates, orbital_weights, parse_field
from rho_data.units import EV_PER_HARTREE

from .errors import AimsIOError
from .floats import read_columns
from .layout import write_text

INFO_FILES = ("ks_orbital_info.out", "eigenstate_info.out")
WEIGHTS_FILE = "ks_orbital_weights.in"


@dataclass(frozen=True)
class OrbitalInfo:
    """The rows of ``ks_orbital_info.out`` as states (spin, k, state) and each row's place there."""

    states: KohnShamStates
    rows: np.ndarray  # (n_rows, 3): spin, k-point, state, 0-based

    def weights_in_row_order(self, weights: np.ndarray) -> np.ndarray:
        return weights[self.rows[:, 0], self.rows[:, 1], self.rows[:, 2]]


def find_orbital_info(run_dir: str | Path) -> Path:
    """The orbital-information file of an SCF run directory."""
    for name in INFO_FILES:
        if (Path(run_dir) / name).is_file():
            return Path(run_dir) / name
    raise AimsIOError(
        f"no {INFO_FILES[0]} (the SCF needs `ri_fit_write_orbital_info .true.`, which aims-io writes for fields "
        "other than the density)",
        path=run_dir,
    )


def read_orbital_info(path: str | Path) -> OrbitalInfo:
    """Parse the file (see the module doc); a file that is not a complete table is an error."""
    table = read_columns(path, 7)
    if not len(table):
        raise AimsIOError("holds no orbitals", path=path)
    index, state, spin, kpoint = (np.rint(table[:, c]).astype(int) for c in range(4))
    if not np.array_equal(index, np.arange(1, len(table) + 1)):
        raise AimsIOError("orbital indices are not 1, 2, ... in order", path=path)
    if spin.min() < 1 or spin.max() > 2 or kpoint.min() < 1 or state.min() < 1:
        raise AimsIOError("spin, k-point or state index out of range", path=path)
    shape = (spin.max(), kpoint.max(), state.max())
    if len(table) != shape[0] * shape[1] * shape[2]:
        raise AimsIOError(f"{len(table)} rows, not one per (spin, k-point, state) of {shape}", path=path)
    energies, occupations = np.full(shape, np.nan), np.full(shape, np.nan)
    k_weights = np.full(shape[1], np.nan)
    rows = np.stack([spin - 1, kpoint - 1, state - 1], axis=1)
    energies[tuple(rows.T)] = table[:, 6] / EV_PER_HARTREE
    occupations[tuple(rows.T)] = table[:, 5]
    k_weights[rows[:, 1]] = table[:, 4]
    if np.isnan(energies).any():
        raise AimsIOError("a (spin, k-point, state) appears twice", path=path)
    try:
        return OrbitalInfo(KohnShamStates.of(energies, occupations, k_weights), rows)
    except ValueError as err:
        raise AimsIOError(str(err), path=path) from None


def write_orbital_weights(
    scf_dir: str | Path,
    ri_dir: str | Path,
    field: FieldSpec | str,
    *,
    degeneracy_ev: float = DEFAULT_DEGENERACY_EV,
) -> float:
    """Write ``ks_orbital_weights.in`` of ``field`` into ``ri_dir``; returns the field's integral."""
    spec = parse_field(field) if isinstance(field, str) else field
    path = find_orbital_info(scf_dir)
    info = read_orbital_info(path)
    try:
        weights = orbital_weights(spec, info.states, degeneracy_ev=degeneracy_ev)
    except ValueError as err:
        raise AimsIOError(str(err), path=path) from None
    values = info.weights_in_row_order(weights)
    write_text(Path(ri_dir) / WEIGHTS_FILE, "".join(f"{w:.17e}\n" for w in values), what="orbital weights")
    return float(values.sum())
