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


def _featomic_power_spectrum(calc, systems, selected=None):
    """featomic's own EquivariantPowerSpectrum for the calculator's keys: the reference of power_spectrum.py."""
    import metatensor
    from featomic.clebsch_gordan import EquivariantPowerSpectrum

    spec = calc.spec
    keys = metatensor.Labels(
        ["o3_lambda", "o3_sigma", "center_type"], np.array([[l, 1, z] for l, z in spec.keys], dtype=np.int32)
    )
    power = EquivariantPowerSpectrum(calc._expansion, neighbor_types=list(spec.neighbor_types))
    return power.compute(systems, selected_keys=keys, selected_samples=selected, neighbors_to_properties=True)


@pytest.mark.parametrize("case", ["molecules", "cell", "selected centres"])
def test_power_spectrum_equals_featomic(calc, case):
    import ase
    import metatensor

    from rho_model.cells import featomic_frame
    from rho_model.power_spectrum import property_values

    selected = None
    if case == "molecules":  # one structure without oxygen: its keys and neighbour channels are absent
        frames = [cluster(2, seed=3), ase.Atoms("H2", positions=[[0.0, 0.0, 0.0], [0.0, 0.0, 0.74]])]
    elif case == "cell":
        atoms = cluster(4, seed=5)
        atoms.cell = np.eye(3) * 5.0
        atoms.pbc = True
        frames = [featomic_frame(atoms, calc.spec.cutoff, "")]
    else:
        frames = [cluster(3, seed=6)]
        selected = metatensor.Labels(["system", "atom"], np.array([[0, 1], [0, 4], [0, 6]], dtype=np.int32))
    reference = _featomic_power_spectrum(calc, frames, selected)
    ours = calc._power.compute(calc._expansion.compute(frames, selected_samples=selected))
    spec = calc.spec
    assert sorted(ours) == sorted((int(k["o3_lambda"]), int(k["center_type"])) for k in reference.keys)
    for key, block in reference.items():
        l, z = int(key["o3_lambda"]), int(key["center_type"])
        samples, values = ours[(l, z)]
        np.testing.assert_array_equal(np.asarray(block.samples.values)[:, :2], samples)
        np.testing.assert_array_equal(
            np.asarray(block.properties.values), property_values(l, spec.max_angular, spec.max_radial, spec.neighbor_types)
        )
        reference_values = np.asarray(block.values)
        np.testing.assert_allclose(values, reference_values, rtol=0, atol=1e-12 * np.abs(reference_values).max(initial=1.0))
