"""Density matrices of orbital fields against PySCF's own (pyscf_io.field_matrices)."""

import numpy as np
import pytest
from pyscf import dft, gto

from pyscf_io.field_matrices import field_density_matrix
from rho_data import RhoDataError


@pytest.fixture(scope="module")
def water():
    mol = gto.M(atom="O 0 0 0.1173; H 0 0.7572 -0.4692; H 0 -0.7572 -0.4692", basis="sto-3g", verbose=0)
    mf = dft.RKS(mol, xc="lda,vwn")
    mf.kernel()
    return mf


@pytest.fixture(scope="module")
def oh_radical():
    mol = gto.M(atom="O 0 0 0; H 0 0 0.97", basis="sto-3g", spin=1, verbose=0)
    mf = dft.UKS(mol, xc="lda,vwn")
    mf.kernel()
    return mf


def test_density_is_pyscfs_density_matrix(water, oh_radical):
    np.testing.assert_allclose(field_density_matrix(water, "density")[0], water.make_rdm1(), atol=1e-12)
    dm = oh_radical.make_rdm1()
    np.testing.assert_allclose(field_density_matrix(oh_radical, "density")[0], dm[0] + dm[1], atol=1e-12)
    spin, integral = field_density_matrix(oh_radical, "spin_density")
    np.testing.assert_allclose(spin, dm[0] - dm[1], atol=1e-12)
    assert integral == pytest.approx(1.0)


def test_frontier_orbitals_integrate_to_one(water):
    overlap = water.mol.intor("int1e_ovlp")
    for name in ("homo", "lumo", "homo-1"):
        matrix, integral = field_density_matrix(water, name)
        assert integral == pytest.approx(1.0)
        assert np.trace(matrix @ overlap) == pytest.approx(1.0, abs=1e-10)
    homo = int(np.flatnonzero(water.mo_occ > 0)[-1])
    c = water.mo_coeff[:, homo]
    np.testing.assert_allclose(field_density_matrix(water, "homo")[0], np.outer(c, c), atol=1e-12)


def test_ildos_of_all_occupied_states_is_the_density(water):
    matrix, integral = field_density_matrix(water, "ildos:-1000:0.01")
    assert integral == pytest.approx(10.0)
    np.testing.assert_allclose(matrix, water.make_rdm1(), atol=1e-12)


def test_fields_a_closed_shell_cannot_give(water):
    with pytest.raises(RhoDataError, match="zero spin density"):
        field_density_matrix(water, "spin_density")
    with pytest.raises(RhoDataError, match="unoccupied"):
        field_density_matrix(water, "lumo+5")
