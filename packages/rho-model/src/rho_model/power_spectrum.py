"""The lambda-SOAP power spectrum on dense arrays, from featomic's spherical expansion.

For a centre of type z with density coefficients rho^l[m, (t, n)] (featomic's
``SphericalExpansion``, neighbour types t moved to properties in the fixed order of
``neighbor_types``), the features of the output key (lambda, sigma = +1, z) are

    X[mu, (l1, l2, t1, n1, t2, n2)]
        = (-1)^(l1 + l2 + lambda) sum_{m1 m2} C^{l1 l2 lambda}_{m1 m2 mu} rho^l1[m1, (t1, n1)] rho^l2[m2, (t2, n2)]

for every l1 <= l2 with |l1 - l2| <= lambda <= l1 + l2 and l1 + l2 + lambda even (the (l2, l1)
products are the same numbers for a density with itself), with featomic's
real Clebsch-Gordan coefficients C. These are the numbers and the property order of featomic's
``EquivariantPowerSpectrum(..., neighbors_to_properties=True)`` (tested to 1e-12), computed
without its per-call label bookkeeping (about 0.3 s per call whatever the number of atoms).
Each product contracts the larger m index first, so that its last step, the costly one, sums
over 2 min(l1, l2) + 1 terms.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rho_data.layout import Key

#: (l1, l2) -> (the lambdas it reaches, the first feature column of its block in each of them,
#: their C stacked along mu, signs included, in :func:`matrix_layout`)
Pairs = dict[tuple[int, int], tuple[list[int], list[int], np.ndarray]]


def pairs_of(o3_lambda: int, max_angular: int) -> list[tuple[int, int]]:
    """The (l1, l2) products that reach ``o3_lambda`` with o3_sigma = +1, in featomic's property order."""
    return [
        (l1, l2)
        for l1 in range(max_angular + 1)
        for l2 in range(l1, max_angular + 1)
        if abs(l1 - l2) <= o3_lambda <= l1 + l2 and (l1 + l2 + o3_lambda) % 2 == 0
    ]


def property_values(o3_lambda: int, max_angular: int, max_radial: int, neighbor_types: Sequence[int]) -> np.ndarray:
    """Property labels (l_1, l_2, neighbor_1_type, n_1, neighbor_2_type, n_2) of one output key, in order."""
    channels = [(t, n) for t in neighbor_types for n in range(max_radial + 1)]
    rows = [(l1, l2, t1, n1, t2, n2) for l1, l2 in pairs_of(o3_lambda, max_angular) for t1, n1 in channels for t2, n2 in channels]
    return np.array(rows, dtype=np.int32).reshape(-1, 6)


class PowerSpectrum:
    """Features {key: (centres, 2 lambda + 1, n_features)} of the keys (lambda, z) from a spherical expansion."""

    def __init__(self, max_angular: int, max_radial: int, neighbor_types: Sequence[int], keys: Sequence[Key]):
        from featomic.clebsch_gordan import calculate_cg_coefficients

        self.max_angular = int(max_angular)
        self.channels = len(neighbor_types) * (int(max_radial) + 1)
        self._types = np.array([[int(t)] for t in neighbor_types], dtype=np.int32)
        self.keys = [(int(l), int(z)) for l, z in keys]
        lambda_max = max(self.max_angular, max(l for l, _ in self.keys))
        cg = calculate_cg_coefficients(lambda_max, "python-dense", "numpy", np.float64, "cpu")
        coefficients = {tuple(int(v) for v in k.values): np.asarray(b.values)[0, ..., 0] for k, b in cg.items()}
        self.sizes = {k: len(pairs_of(k[0], self.max_angular)) * self.channels**2 for k in self.keys}
        self.pairs: dict[int, Pairs] = {}
        for z in sorted({z for _, z in self.keys}):
            lambdas = sorted(l for l, zz in self.keys if zz == z)
            pairs: Pairs = {}
            for l1 in range(self.max_angular + 1):
                for l2 in range(l1, self.max_angular + 1):
                    reached = [lam for lam in lambdas if (l1, l2) in pairs_of(lam, self.max_angular)]
                    if reached:
                        firsts = [pairs_of(lam, self.max_angular).index((l1, l2)) * self.channels**2 for lam in reached]
                        sign = [(-1) ** (l1 + l2 + lam) for lam in reached]
                        stacked = np.concatenate([s * coefficients[(l1, l2, lam)].real for s, lam in zip(sign, reached)], axis=2)
                        pairs[(l1, l2)] = (reached, firsts, matrix_layout(stacked))
            self.pairs[z] = pairs

    def densities(self, expansion: Any) -> dict[int, tuple[np.ndarray, list[np.ndarray]]]:
        """Per centre type: its samples (system, atom) and rho^l (samples, 2l + 1, channels) for l = 0..max_angular.

        metatensor's keys_to_properties moves the neighbour types to properties in the fixed order
        (zeros for a centre without neighbours of a type), one C call instead of a Python loop
        over the (centre, neighbour) blocks, whose every array access costs ~0.1 ms.
        """
        import metatensor

        dense = expansion.keys_to_properties(metatensor.Labels(["neighbor_type"], self._types))
        out: dict[int, tuple[np.ndarray, list[np.ndarray | None]]] = {}
        for key, block in dense.items():
            l, z = int(key["o3_lambda"]), int(key["center_type"])
            if z not in out:
                out[z] = (np.asarray(block.samples.values, dtype=np.int64)[:, :2], [None] * (self.max_angular + 1))
            values = np.asarray(block.values)
            if len(values) != len(out[z][0]):  # every l of a centre type has the same centres
                raise ValueError(f"spherical expansion: centre type {z} has {len(values)} samples at l = {l}")
            out[z][1][l] = values
        return out

    def compute(self, expansion: Any) -> dict[Key, tuple[np.ndarray, np.ndarray]]:
        """{(lambda, z): (samples (centres, 2), features (centres, 2 lambda + 1, n_features))} for the keys present."""
        out: dict[Key, tuple[np.ndarray, np.ndarray]] = {}
        c = self.channels
        for z, (samples, rho) in self.densities(expansion).items():
            if z not in self.pairs:
                continue
            n = len(samples)
            features = {lam: np.empty((n, 2 * lam + 1, self.sizes[(lam, z)])) for lam, zz in self.keys if zz == z}
            for (l1, l2), (lambdas, firsts, stacked) in self.pairs[z].items():
                views = [
                    features[lam][:, :, first : first + c * c].reshape(n, 2 * lam + 1, c, c)
                    for lam, first in zip(lambdas, firsts)
                ]
                _coupled_product(rho[l1], rho[l2], stacked, views)
            for lam, values in features.items():
                out[(lam, z)] = (samples, values)
        return out


def _coupled_product(a1: np.ndarray, a2: np.ndarray, coefficients: np.ndarray, outputs: list[np.ndarray]) -> None:
    """outputs[s, mu, p, q] = sum_{m1 m2} C[m1, m2, mu] a1[s, m1, p] a2[s, m2, q], the larger m summed first.

    ``coefficients`` is C of the lambdas stacked along mu, as (mu, m2, m1) when 2 l1 + 1 >= 2 l2 + 1,
    else as (mu, m1, m2) (see :func:`matrix_layout`), so that the first sum is one matrix product
    over all samples; ``outputs`` are the (s, 2 lambda + 1, p, q) views of each lambda in turn,
    written by the last product directly.
    """
    n, m1, p = a1.shape
    m2, q = a2.shape[1], a2.shape[2]
    k = coefficients.shape[0]
    if m1 >= m2:
        # D[s, mu, p, m2] = sum_m1 C[m1, m2, mu] a1[s, m1, p]; then the sum over m2 with a2
        d = np.matmul(coefficients.reshape(k * m2, m1), a1).reshape(n, k, m2, p).transpose(0, 1, 3, 2)
        last = a2[:, None]
    else:
        # D[s, mu, m1, q] = sum_m2 C[m1, m2, mu] a2[s, m2, q]; then the sum over m1 with a1
        d = np.matmul(coefficients.reshape(k * m1, m2), a2).reshape(n, k, m1, q)
        last = a1.transpose(0, 2, 1)[:, None]
    mu = 0
    for out in outputs:
        part = d[:, mu : mu + out.shape[1]]
        mu += out.shape[1]
        if m1 >= m2:
            np.matmul(part, last, out=out)
        else:
            np.matmul(last, part, out=out)


def matrix_layout(coefficients: np.ndarray) -> np.ndarray:
    """C (m1, m2, mu) in the layout :func:`_coupled_product` multiplies with."""
    m1, m2 = coefficients.shape[:2]
    return np.ascontiguousarray(coefficients.transpose(2, 1, 0) if m1 >= m2 else coefficients.transpose(2, 0, 1))
