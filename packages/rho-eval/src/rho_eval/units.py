"""Unit conversion (CODATA 2018)."""

BOHR_ANGSTROM = 0.529177210903
"""One bohr in Angstrom."""
