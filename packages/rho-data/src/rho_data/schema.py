"""Schema v1: names, versions, file kinds and the columns each kind stores (see SCHEMA.md)."""

from __future__ import annotations

import re

from .store import Column

SCHEMA_NAME = "rho-data"
SCHEMA_VERSION: tuple[int, int] = (1, 1)
KINDS = ("dataset", "predictions", "grids")

UNITS = {
    "positions": "angstrom",
    "cell": "angstrom",
    "basis_length": "bohr",
    "field": "electron/bohr^3",
    "energy": "hartree",
    "time": "s",
}

#: Per-structure metadata every dataset can hold (NaN = not recorded), with units.
STANDARD_METADATA = {
    "energy": "total energy of the SCF, hartree",
    "scf_converged": "1 if the SCF converged, else 0",
    "scf_cycles": "number of SCF cycles",
    "n_electrons": "electrons in the structure (sum of Z minus charge)",
    "n_electrons_fit": "integral of the fitted (RI) density",
    "fit_nmae_percent": "%NMAE of the RI density against the SCF density on the DFT grid",
    "fit_squared_error": "integral (rho_RI - rho_SCF)^2 on the DFT grid, electron^2/bohr^3",
    "time_scf_s": "wall time of the SCF, s",
    "time_fit_s": "wall time of the RI fit, s",
}

#: Names of further targets: HDF5 group names (no '/'), e.g. ``homo``, ``lumo+1``, ``ildos:-1:0``.
TARGET_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_:+.\-]*$")

GEOMETRY = [
    Column("numbers", "i4", (), "atoms"),
    Column("positions", "f8", (3,), "atoms"),
    Column("cell", "f8", (3, 3)),
    Column("pbc", "bool", (3,)),
    Column("label", "u1", (), "label"),  # UTF-8 bytes: no HDF5 variable-length data, which SWMR cannot protect
]


def segments_of(kind: str, extras: tuple[str, ...] = ()) -> list[str]:
    base = {
        "dataset": ["atoms", "label", "coefficients", "pairs", "overlap"],
        "predictions": ["atoms", "label", "coefficients"],
        "grids": ["atoms", "label", "points"],
    }[kind]
    return base + [f"extra_{name}" for name in extras]


def columns_of(
    kind: str,
    *,
    has_projections: bool = True,
    has_overlap: bool = True,
    n_metadata: int = 0,
    fields: tuple[str, ...] = (),
    extras: tuple[str, ...] = (),
    targets: tuple[str, ...] = (),
) -> list[Column]:
    """The columns of a file of this kind (SCHEMA.md lists them with their meaning)."""
    columns = list(GEOMETRY)
    if kind == "dataset":
        columns.append(Column("coefficients", "f8", (), "coefficients"))
        if has_projections:
            columns.append(Column("projections", "f8", (), "coefficients"))
        if has_overlap:
            columns += [Column("overlap_pairs", "i4", (2,), "pairs"), Column("overlap_values", "f8", (), "overlap")]
        if n_metadata:
            columns.append(Column("metadata", "f8", (n_metadata,)))
        for name in targets:  # schema 1.1: further targets on the same overlap
            columns.append(Column(f"targets/{name}/coefficients", "f8", (), "coefficients"))
            if has_projections:
                columns.append(Column(f"targets/{name}/projections", "f8", (), "coefficients"))
    elif kind == "predictions":
        columns += [Column("coefficients", "f8", (), "coefficients"), Column("dataset_index", "i8")]
    elif kind == "grids":
        columns += [
            Column("dataset_index", "i8"),
            Column("grid_points", "f8", (3,), "points"),
            Column("grid_weights", "f8", (), "points"),
        ]
        columns += [Column(f"fields/{name}", "f8", (), "points") for name in fields]
    else:
        raise ValueError(f"unknown file kind '{kind}', expected one of {KINDS}")
    columns += [Column(f"extras/{name}", "f8", (), f"extra_{name}") for name in extras]
    return columns
