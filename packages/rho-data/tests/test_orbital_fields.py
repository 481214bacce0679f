"""Field names and orbital weights (rho_data.orbital_fields)."""

from math import erf, sqrt

import numpy as np
import pytest

from rho_data import RhoDataError
from rho_data.orbital_fields import KohnShamStates, orbital_weights, parse_field
from rho_data.units import EV_PER_HARTREE

EV = 1 / EV_PER_HARTREE


def restricted(energies_ev, n_occupied):
    occ = np.zeros(len(energies_ev))
    occ[:n_occupied] = 2.0
    return KohnShamStates.of(np.array(energies_ev) * EV, occ)


@pytest.mark.parametrize(
    "name, canonical",
    [
        ("density", "density"),
        ("HOMO", "homo"),
        ("homo-0", "homo"),
        ("homo-2", "homo-2"),
        ("lumo+1", "lumo+1"),
        ("ildos:-1:0.5", "ildos:-1:0.5"),
        ("ildos:-1:0:0.1", "ildos:-1:0:0.1"),
        ("ldos:0:0.2", "ldos:0:0.2"),
        ("orbital:homo-1", "homo-1"),
        ("orbital:lumo+2", "lumo+2"),
        ("spin_density", "spin_density"),
    ],
)
def test_names_round_trip(name, canonical):
    assert str(parse_field(name)) == canonical
    assert parse_field(canonical) == parse_field(name)


@pytest.mark.parametrize("name", ["homo+1", "lumo-1", "ildos:1:0", "ildos:0:1:-1", "ldos:0:0", "dens", "orbital:x"])
def test_bad_names_are_one_line_errors(name):
    with pytest.raises(RhoDataError) as err:
        parse_field(name)
    assert "\n" not in str(err.value) and name.split(":")[0] in str(err.value)


def test_density_weights_are_the_occupations():
    states = restricted([-10, -5, -1, 2], 3)
    assert orbital_weights("density", states).sum() == pytest.approx(6.0)


def test_levels_sum_degenerate_orbitals():
    # a doubly degenerate HOMO (split by less than the tolerance) and a single HOMO-1 and LUMO
    states = restricted([-9.0, -6.0, -6.0 + 1e-4, 1.0, 3.0, 3.0], 3)
    homo = orbital_weights("homo", states)[0, 0]
    np.testing.assert_array_equal(homo, [0, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(orbital_weights("homo-1", states)[0, 0], [1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(orbital_weights("lumo", states)[0, 0], [0, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(orbital_weights("lumo+1", states)[0, 0], [0, 0, 0, 0, 1, 1])
    # a tighter tolerance splits the pair
    np.testing.assert_array_equal(orbital_weights("homo", states, degeneracy_ev=1e-5)[0, 0], [0, 0, 1, 0, 0, 0])


def test_levels_beyond_the_basis():
    states = restricted([-9.0, -6.0, 1.0, 3.0], 2)
    with pytest.raises(RhoDataError, match="only 2 unoccupied"):
        orbital_weights("lumo+2", states)
    with pytest.raises(RhoDataError, match="only 2 occupied"):
        orbital_weights("homo-2", states)


def test_unrestricted_levels_count_both_channels():
    # alpha: 2 electrons, beta: 1; the alpha HOMO at -4 eV is above the beta one at -9 eV
    states = KohnShamStates.of(np.array([[-9.0, -4.0, 1.0], [-9.0, 0.5, 2.0]]) * EV, [[1, 1, 0], [1, 0, 0]])
    np.testing.assert_array_equal(orbital_weights("homo", states)[:, 0], [[0, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(orbital_weights("lumo", states)[:, 0], [[0, 0, 0], [0, 1, 0]])
    spin = orbital_weights("spin_density", states)
    assert spin.sum() == pytest.approx(1.0)


def test_spin_density_of_closed_shells_is_refused():
    with pytest.raises(RhoDataError, match="restricted"):
        orbital_weights("spin_density", restricted([-1, 1], 1))
    singlet = KohnShamStates.of(np.array([[-5.0, 1.0], [-5.0, 1.0]]) * EV, [[1, 0], [1, 0]])
    with pytest.raises(RhoDataError, match="singlet"):
        orbital_weights("spin_density", singlet)


def test_ildos_window_relative_to_the_homo():
    states = restricted([-12.0, -7.0, -6.0, 1.0], 3)
    # [-1.5, 0] eV below the HOMO holds HOMO and HOMO-1: 2 spatial orbitals x 2 spins
    assert orbital_weights("ildos:-1.5:0", states).sum() == pytest.approx(4.0)
    with pytest.raises(RhoDataError, match="no Kohn-Sham state in the window"):
        orbital_weights("ildos:-5:-2", states)
    # smoothed window: each state counts 1/2 [erf((b - e)/(sqrt2 s)) - erf((a - e)/(sqrt2 s))]
    w = orbital_weights("ildos:-1.5:0:0.3", states)[0, 0]
    e = np.array([-6.0, -1.0, 0.0, 7.0])
    s = sqrt(2) * 0.3
    expected = [2 * 0.5 * (erf((0 - x) / s) - erf((-1.5 - x) / s)) for x in e]
    np.testing.assert_allclose(w, expected, rtol=1e-12)


def test_ldos_is_a_normalised_gaussian_per_state():
    states = restricted([-6.0, -1.0], 1)
    w = orbital_weights("ldos:-0.5:0.2", states)[0, 0]
    relative = np.array([0.0, 5.0])  # energies relative to the HOMO (-6 eV)
    expected = 2 * np.exp(-0.5 * ((relative + 0.5) / 0.2) ** 2) / (0.2 * np.sqrt(2 * np.pi))
    np.testing.assert_allclose(w, expected, rtol=1e-12)
    with pytest.raises(RhoDataError, match="within 6 SIGMA"):
        orbital_weights("ldos:3:0.1", states)


def test_k_weights_and_bad_shapes():
    e = np.array([[[-5.0, 1.0], [-4.0, 2.0]]]) * EV
    states = KohnShamStates.of(e, [[[2, 0], [2, 0]]], k_weights=[0.25, 0.75])
    assert orbital_weights("density", states).sum() == pytest.approx(2.0)
    np.testing.assert_allclose(orbital_weights("homo", states)[0], [[0, 0], [0.75, 0]])
    with pytest.raises(RhoDataError, match="do not match"):
        KohnShamStates.of(e, [[2, 0]])
    with pytest.raises(RhoDataError, match="NaN"):
        KohnShamStates.of([np.nan, 1.0], [2, 0])


def test_target_names_and_normalisation():
    from rho_data.orbital_fields import nmae_normalisation, target_name

    assert target_name("density") == "electron_density" and parse_field("electron_density") == parse_field("density")
    assert target_name("HOMO-1") == "homo-1"
    assert nmae_normalisation("electron_density") == "integral"
    assert nmae_normalisation("spin_density") == nmae_normalisation("homo") == "absolute"
