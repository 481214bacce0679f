"""Shared fixtures: a small dataset whose auxiliary basis is made of normalised Gaussians and
whose "SCF" density is a known sum of s-type Gaussians (see gaussian_builder.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from gaussian_builder import BOHR, GaussianFieldBuilder, basis_matrix, cubic_grid, normalised, scf_density
from rho_data import (
    AuxiliaryBasis,
    BlockSparseOverlap,
    ElementBasis,
    Provenance,
    Structure,
    create_dataset,
    create_predictions,
    open_dataset,
)

PRODUCER = "gaussian-test"

BASIS = AuxiliaryBasis(
    {
        "H": ElementBasis("H", (2, 1), (normalised(0, [0.5]), normalised(0, [1.6, 0.6], [0.7, 0.3]), normalised(1, [0.9]))),
        "O": ElementBasis(
            "O",
            (3, 2, 1),
            (
                normalised(0, [0.35]),
                normalised(0, [1.1]),
                normalised(0, [2.0, 0.7], [0.5, 0.5]),
                normalised(1, [0.6]),
                normalised(1, [1.5]),
                normalised(2, [0.9]),
            ),
        ),
    }
)

MOLECULES = [
    ("H2", [1, 1], [[0, 0, 0], [0, 0, 0.74]]),
    ("OH", [8, 1], [[0, 0, 0], [0.1, 0.2, 0.95]]),
    ("H2O", [8, 1, 1], [[0, 0, 0], [0.757, 0.586, 0], [-0.757, 0.586, 0]]),
    ("H2O2", [8, 8, 1, 1], [[0, 0, 0], [1.45, 0, 0], [-0.3, 0.9, 0.1], [1.75, -0.2, 0.9]]),
]


def scf_rows(numbers, positions_bohr) -> np.ndarray:
    """Atom-centred s Gaussians (q = Z) plus a bond charge between the first two atoms."""
    rows = [[*p, 0.8 if z == 1 else 1.3, float(z)] for z, p in zip(numbers, positions_bohr)]
    rows.append([*(0.5 * (positions_bohr[0] + positions_bohr[1])), 1.0, 0.3])
    return np.array(rows, dtype=float)


def fine_fit(numbers, positions_bohr, rho_rows, spacing=0.27, margin=7.5, chunk=150_000):
    """Overlap S, projections w and fitted coefficients d = S^-1 w on another (finer) grid than the builder's."""
    points, weights = cubic_grid(positions_bohr, spacing, margin)
    n = BASIS.n_functions(numbers)
    S, w = np.zeros((n, n)), np.zeros(n)
    for k in range(0, len(points), chunk):
        phi = basis_matrix(BASIS, numbers, positions_bohr, points[k : k + chunk])
        wk = weights[k : k + chunk]
        S += phi.T @ (wk[:, None] * phi)
        w += phi.T @ (wk * scf_density(rho_rows, points[k : k + chunk]))
    return S, w, np.linalg.solve(S, w)


def fit_nmae(numbers, positions_bohr, rho_rows, d):
    """%NMAE of the fit against the SCF density on the builder's own grid, as a producer stores it."""
    points, weights = cubic_grid(positions_bohr, GaussianFieldBuilder().spacing, GaussianFieldBuilder().margin)
    rho = scf_density(rho_rows, points)
    return 100.0 * (weights @ np.abs(basis_matrix(BASIS, numbers, positions_bohr, points) @ d - rho)) / (weights @ rho)


@pytest.fixture(scope="session")
def dataset_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "gaussians.h5"
    writer = create_dataset(path, BASIS, Provenance(producer=PRODUCER, aux_basis="test Gaussians"), extras=["scf_gaussians"])
    for label, numbers, positions in MOLECULES:
        positions = np.array(positions, dtype=float)
        rows = scf_rows(numbers, positions / BOHR)
        S, w, d = fine_fit(numbers, positions / BOHR, rows)
        nmae = fit_nmae(numbers, positions / BOHR, rows, d)
        sizes = BASIS.atom_sizes(np.array(numbers))
        writer.append(
            Structure(
                numbers=numbers,
                positions=positions,
                label=label,
                coefficients=d,
                projections=w,
                overlap=BlockSparseOverlap.from_dense(S, sizes),
                metadata={"n_electrons": float(rows[:, 4].sum()), "fit_nmae_percent": nmae},
                extras={"scf_gaussians": rows.reshape(-1)},
            )
        )
    writer.close()
    return path


@pytest.fixture
def make_predictions(dataset_path, tmp_path) -> Callable[..., Path]:
    """Write predictions: ``transform(index, ri_coefficients) -> predicted coefficients``."""

    def make(transform: Callable[[int, np.ndarray], np.ndarray], indices=None, name="predictions.h5", dataset=None) -> Path:
        source = dataset or dataset_path
        out = tmp_path / name
        with open_dataset(source) as ds:
            writer = create_predictions(out, ds.basis, dataset_id=ds.dataset_id, provenance=Provenance(producer="test-model"))
            for i in range(len(ds)) if indices is None else indices:
                s = ds[i]
                writer.append(
                    Structure(
                        numbers=s.numbers, positions=s.positions, label=s.label, coefficients=transform(i, s.coefficients.copy()), dataset_index=i
                    )
                )
            writer.close()
        return out

    return make
