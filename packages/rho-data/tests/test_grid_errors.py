"""rho_data.grid_errors: the %NMAE and squared error every package reports."""

from __future__ import annotations

import math

import numpy as np

from rho_data.grid_errors import field_errors
from rho_data.units import BOHR_ANGSTROM, BOHR_PER_ANGSTROM


def test_field_errors_on_a_small_grid():
    w = np.array([0.5, 1.0, 2.0])
    ref = np.array([2.0, 1.0, 0.5])
    fit = np.array([1.0, 1.5, 0.5])
    got = field_errors(w, fit, ref)
    assert got["abs_error"] == 0.5 * 1.0 + 1.0 * 0.5  # sum w |fit - ref|
    assert got["norm"] == 1.0 + 1.0 + 1.0
    assert math.isclose(got["nmae_percent"], 100.0 * 1.0 / 3.0)
    assert got["squared_error"] == 0.5 * 1.0 + 1.0 * 0.25


def test_zero_reference_gives_nan_not_a_division_error():
    got = field_errors([1.0], [1.0], [0.0])
    assert math.isnan(got["nmae_percent"]) and got["squared_error"] == 1.0


def test_bohr_is_codata_2018():
    assert BOHR_ANGSTROM == 0.529177210903 and math.isclose(BOHR_ANGSTROM * BOHR_PER_ANGSTROM, 1.0)


def test_absolute_normalisation_for_fields_that_change_sign():
    w = np.array([1.0, 1.0])
    ref = np.array([1.0, -1.0])  # integral 0, integral |ref| 2
    got = field_errors(w, [0.5, -1.0], ref, normalisation="absolute")
    assert got["norm"] == 2.0 and math.isclose(got["nmae_percent"], 25.0)
    assert math.isnan(field_errors(w, [0.5, -1.0], ref)["nmae_percent"])
