from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rho_data import Provenance, create_dataset
from rho_data.synthetic import synthetic_basis, synthetic_structure


@pytest.fixture
def basis():
    return synthetic_basis(30)


@pytest.fixture
def structures(basis):
    rng = np.random.default_rng(42)
    return [synthetic_structure(rng, basis, n, label=f"mol{k}") for k, n in enumerate((3, 1, 4, 2, 5))]


@pytest.fixture
def dataset_path(tmp_path: Path, basis, structures) -> Path:
    path = tmp_path / "data.h5"
    with create_dataset(path, basis, Provenance(producer="test", functional="PBE")) as writer:
        for s in structures:
            writer.append(s)
    return path


def assert_same_structure(a, b) -> None:
    np.testing.assert_array_equal(a.numbers, b.numbers)
    np.testing.assert_array_equal(a.positions, b.positions)
    np.testing.assert_array_equal(a.cell, b.cell)
    np.testing.assert_array_equal(a.pbc, b.pbc)
    assert a.label == b.label
    for name in ("coefficients", "projections"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None)
        if x is not None:
            np.testing.assert_array_equal(x, y)
    if a.overlap is not None or b.overlap is not None:
        np.testing.assert_array_equal(a.overlap.pairs, b.overlap.pairs)
        np.testing.assert_array_equal(a.overlap.values, b.overlap.values)
    assert a.metadata == b.metadata
