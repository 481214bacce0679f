"""Normalisation of the stored Gaussian radials and the canonical m order, checked against
independent references (analytic integrals, scipy's spherical harmonics)."""

from math import gamma

import numpy as np
import pytest
from pyscf import gto
from scipy.special import sph_harm_y

from pyscf_io.basis import canonical_permutation, element_basis, load_ao_basis, load_aux_basis, to_pyscf_order
from pyscf_io.config import load_settings


def real_sph(l: int, xyz: np.ndarray) -> np.ndarray:
    """Real spherical harmonics (Condon-Shortley phase folded in, m = -l..l), from scipy's complex ones."""
    r = np.linalg.norm(xyz, axis=1)
    theta = np.arccos(np.clip(xyz[:, 2] / r, -1, 1))
    phi = np.arctan2(xyz[:, 1], xyz[:, 0])
    out = []
    for m in range(-l, l + 1):
        y = sph_harm_y(l, abs(m), theta, phi)
        if m < 0:
            out.append(np.sqrt(2) * (-1) ** m * y.imag)
        elif m == 0:
            out.append(y.real)
        else:
            out.append(np.sqrt(2) * (-1) ** m * y.real)
    return np.stack(out, axis=1)


def analytic_overlap(g1, g2) -> float:
    l = g1.l
    return sum(
        c1 * c2 * gamma(l + 1.5) / (2 * (a1 + a2) ** (l + 1.5))
        for a1, c1 in zip(g1.exponents, g1.coefficients)
        for a2, c2 in zip(g2.exponents, g2.coefficients)
    )


@pytest.mark.parametrize("aux_name", ["etb", "def2-universal-jkfit"])
@pytest.mark.parametrize("sym", ["H", "C", "O"])
def test_radial_normalisation_matches_pyscf_overlap(aux_name, sym):
    settings = load_settings(overrides={"aux_basis": aux_name})
    ao, _ = load_ao_basis("def2-SVP", [sym])
    aux, missing = load_aux_basis(settings, ao, [sym])
    assert not missing
    eb = element_basis(sym, aux[sym])
    mol = gto.M(atom=f"{sym} 0 0 0", basis={sym: aux[sym]}, spin=gto.charge(sym) % 2, verbose=0)
    perm = canonical_permutation(mol)
    pyscf_s = mol.intor("int1e_ovlp")[np.ix_(perm, perm)]
    radial_by_ln, count = {}, {}
    for g in eb.gaussians:
        n = count.get(g.l, 0)
        count[g.l] = n + 1
        radial_by_ln[(g.l, n)] = g
    labels = eb.function_labels()
    ours = np.zeros_like(pyscf_s)
    for i, (l1, n1, m1) in enumerate(labels):
        for j, (l2, n2, m2) in enumerate(labels):
            if l1 == l2 and m1 == m2:
                ours[i, j] = analytic_overlap(radial_by_ln[(l1, n1)], radial_by_ln[(l2, n2)])
    assert eb.n_functions == mol.nao_nr()
    np.testing.assert_allclose(ours, pyscf_s, atol=1e-12)
    np.testing.assert_allclose(np.diag(pyscf_s), 1.0, atol=1e-12)


def test_canonical_order_is_real_spherical_harmonics_up_to_l6():
    """phi_{n l m} evaluated by PySCF, permuted to canonical order, equals R(r) Y_lm with
    scipy's real Y_lm for every l <= 6 (this fixes the p order (x, y, z) -> m = (-1, 0, 1))."""
    basis = [[l, [0.7, 1.0]] for l in range(7)] + [[1, [2.0, 1.0]]]
    mol = gto.M(atom="He 0 0 0", basis={"He": basis}, verbose=0)
    eb = element_basis("He", basis)
    rng = np.random.default_rng(1)
    pts = rng.normal(size=(50, 3))
    values = mol.eval_gto("GTOval_sph", pts)[:, canonical_permutation(mol)]
    r = np.linalg.norm(pts, axis=1)
    expected = []
    for l, _sl in eb.l_slices():
        for n in range(eb.n_radial[l]):
            g = [x for x in eb.gaussians if x.l == l][n]
            expected.append(g(r)[:, None] * real_sph(l, pts))
    expected = np.concatenate(expected, axis=1)
    np.testing.assert_allclose(values, expected, atol=1e-12)


def test_permutation_round_trip():
    mol = gto.M(atom="O 0 0 0; H 0 0 1", basis="def2-universal-jkfit", spin=1, verbose=0)
    perm = canonical_permutation(mol)
    assert sorted(perm) == list(range(mol.nao_nr()))
    v = np.arange(mol.nao_nr(), dtype=float)
    np.testing.assert_array_equal(to_pyscf_order(v[perm], perm), v)
