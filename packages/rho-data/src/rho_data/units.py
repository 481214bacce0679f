"""Unit conversions shared by every package (CODATA 2018)."""

BOHR_ANGSTROM = 0.529177210903
"""One bohr in Angstrom."""

BOHR_PER_ANGSTROM = 1.0 / BOHR_ANGSTROM
"""Bohr in one Angstrom (positions in files are Angstrom; basis functions and grids use bohr)."""

DEBYE_PER_AU = 2.541746473
"""Debye in one atomic unit of dipole moment (e bohr)."""

KCAL_MOL_PER_HARTREE = 627.509474
"""kcal/mol in one hartree."""

EV_PER_HARTREE = 27.211386245988
"""Electronvolt in one hartree (orbital energies are hartree in PySCF, eV in FHI-aims output)."""
