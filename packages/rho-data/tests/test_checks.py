"""rho_data.checks.require_finite: a NaN or an infinity is an error naming the file, the structure and the entry."""

from __future__ import annotations

import numpy as np
import pytest

from rho_data import RhoDataError
from rho_data.checks import require_finite


class TrainError(RhoDataError):
    pass


def test_finite_values_pass_and_come_back_as_arrays():
    out = require_finite([1.0, 2.0], "coefficients")
    assert isinstance(out, np.ndarray) and out.tolist() == [1.0, 2.0]
    assert require_finite(np.arange(3), "indices").dtype.kind == "i"  # integers are always finite


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_name_the_file_structure_and_entry(bad):
    values = np.zeros((2, 3))
    values[1, 2] = bad
    with pytest.raises(TrainError) as caught:
        require_finite(values, "predicted coefficients", path="pred.h5", structure=7, label="water", error=TrainError)
    message = str(caught.value)
    assert message.startswith("pred.h5: structure 7: predicted coefficients (water) holds 1 non-finite value(s)")
    assert f"entry 5 = {bad}" in message and "\n" not in message


def test_complex_and_counted():
    with pytest.raises(RhoDataError, match=r"overlap holds 2 non-finite value\(s\) \(first: entry 1"):
        require_finite(np.array([1 + 0j, np.nan + 0j, 1j * np.inf]), "overlap")
