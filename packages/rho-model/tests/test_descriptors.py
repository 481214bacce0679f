"""Descriptors computed in bounded pieces equal the one-call result (chunking is exact)."""

import numpy as np
import pytest
from helpers import cluster

from rho_model.chunking import plan_calls


@pytest.fixture(scope="module")
def calc(water_target):
    return water_target.calc


def _assert_same(a, b):
    for k in a:
        assert a[k].shape == b[k].shape, k
        np.testing.assert_allclose(b[k], a[k], atol=1e-12 * max(1.0, np.abs(a[k]).max()))


def test_split_structure_equals_one_call(calc):
    atoms = cluster(27)
    calls = plan_calls([atoms], 20, calc.spec.cutoff)
    assert len(calls) >= 5 and all(len(c.centres) <= 20 for c in calls)
    assert all(len(c.sub_atoms) < len(atoms) for c in calls)  # halos, not the whole cluster
    _assert_same(calc.compute([atoms], max_atoms=10_000), calc.compute([atoms], max_atoms=20))


def test_periodic_structure_split_by_selected_samples(calc):
    atoms = cluster(8, seed=1)
    atoms.cell = np.eye(3) * 5.9
    atoms.pbc = True
    _assert_same(calc.compute([atoms], max_atoms=10_000), calc.compute([atoms], max_atoms=7))


def test_small_structures_are_grouped(calc):
    frames = [cluster(1, seed=i) for i in range(10)] + [cluster(4, seed=11)] + [cluster(1, seed=12)]
    calls = plan_calls(frames, 7, calc.spec.cutoff)
    assert [len(c.frames) for c in calls if c.centres is None][:5] == [2, 2, 2, 2, 2]
    _assert_same(calc.compute(frames, max_atoms=10_000), calc.compute(frames, max_atoms=7))
