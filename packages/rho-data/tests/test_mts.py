"""Canonical order against metatensor TensorMaps written by rholearn from real FHI-aims data."""

import re
from pathlib import Path

import numpy as np
import pytest

from rho_data import AuxiliaryBasis
from rho_data.mts import coefficients_to_tensormap

metatensor = pytest.importorskip("metatensor")
SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "fhi-aims" / "qm7-0-CH4"


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/fixtures not present")
def test_fhi_aims_coefficients_match_rholearn_tensormap():
    counts = {}
    for symbol, block in zip(
        ["C", "H", "H", "H", "H"], re.split(r"^atom\s+\d+", (SHARED / "basis_info.out").read_text(), flags=re.M)[1:]
    ):
        counts[symbol] = [int(n) for n in re.findall(r"there are\s+(\d+) radial", block)]
    basis = AuxiliaryBasis.from_counts(counts)
    values = [float(x.replace("D", "E")) for x in (SHARED / "ri_restart_coeffs.out").read_text().split()]
    mine = coefficients_to_tensormap([np.array([6, 1, 1, 1, 1])], [np.array(values)], basis)
    reference = metatensor.load(str(SHARED / "rholearn-processed" / "ri_coeffs.npz"))
    assert len(mine) == len(reference)
    for key, block in reference.items():
        ours = mine.block(key)
        np.testing.assert_array_equal(ours.samples.values, block.samples.values)
        np.testing.assert_allclose(ours.values, block.values, rtol=1e-14, atol=0)
