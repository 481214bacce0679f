"""The guess's V_xc and J against PySCF's own potentials, on a density both can represent exactly.

With an AO basis of s functions only and a diagonal density matrix D, rho = sum_i D_ii phi_i^2,
and phi_i^2 is one s Gaussian of twice the exponent: an auxiliary basis of those functions holds
rho exactly (d_i = D_ii phi_i^2 / chi_i). Then V_xc[rho] must equal PySCF's ``nr_vxc`` of D on the
same grid, and J[rho] PySCF's exact ``get_j`` of D.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyscf")

from pyscf import df, dft, gto  # noqa: E402

from pyscf_io.guess_potential import coulomb_from_scf_df, coulomb_of_coefficients, xc_potential  # noqa: E402

EXPONENTS = {"O": (8.0, 1.5, 0.35), "H": (1.2, 0.25)}
GEOMETRY = "O 0 0 0; H 0 0.76 0.59; H 0 -0.76 0.59"


def s_only(exponent_factor: float = 1.0) -> dict:
    return {el: [[0, [a * exponent_factor, 1.0]] for a in exps] for el, exps in EXPONENTS.items()}


def exact_pair():
    """(mol, auxmol, D, d) with sum_i D_ii phi_i(r)^2 = sum_P d_P chi_P(r) for all r."""
    mol = gto.M(atom=GEOMETRY, basis=s_only(), cart=False)
    auxmol = df.addons.make_auxmol(mol, s_only(2.0))
    assert mol.nao_nr() == auxmol.nao_nr()
    occupation = np.linspace(0.3, 1.7, mol.nao_nr())
    point = np.array([[0.1, 0.2, 0.3]])
    ratio = mol.eval_gto("GTOval_sph", point)[0] ** 2 / auxmol.eval_gto("GTOval_sph", point)[0]
    d = occupation * ratio
    coords = np.random.default_rng(0).normal(size=(50, 3))
    rho_ao = (mol.eval_gto("GTOval_sph", coords) ** 2) @ occupation
    np.testing.assert_allclose(auxmol.eval_gto("GTOval_sph", coords) @ d, rho_ao, rtol=1e-12, atol=1e-14)
    return mol, auxmol, np.diag(occupation), d


@pytest.mark.parametrize(("xc", "kind"), [("lda,vwn", "LDA"), ("pbe", "GGA")])
def test_xc_potential_equals_pyscf_nr_vxc(xc, kind):
    mol, auxmol, dm, d = exact_pair()
    ours, n_grid = xc_potential(mol, auxmol, d, xc, kind, grid_level=3)
    grids = dft.gen_grid.Grids(mol)
    grids.level = 3
    grids.build()
    n, _, theirs = dft.numint.NumInt().nr_vxc(mol, grids, xc, dm)
    assert abs(n_grid - n) < 1e-8
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-8)
    assert np.abs(theirs).max() > 0.1  # a potential that matters


def test_coulomb_matrices_equal_pyscf_get_j():
    mol, auxmol, dm, d = exact_pair()
    exact = dft.RKS(mol).get_j(mol, dm)
    np.testing.assert_allclose(coulomb_of_coefficients(mol, auxmol, d), exact, rtol=0, atol=1e-10)
    mf = dft.RKS(mol).density_fit(auxbasis=s_only(2.0))  # the DF basis holds rho: its J is exact too
    np.testing.assert_allclose(coulomb_from_scf_df(mf, auxmol, d), exact, rtol=0, atol=1e-8)
