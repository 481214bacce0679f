"""pyscf-io's canonical real spherical harmonics are featomic's (the metatensor o3_mu convention).

featomic has no public Y_lm function, so the harmonics come from its pair-wise spherical
expansion of a two-atom system: for one neighbour at r_12 = r * u the pair coefficients are
C_nlm = g_nl(r) Y_lm(u) (any radially symmetric atomic density gives this), so at fixed r the
vector over m is Y_l(u) times one number per (n, l) that does not depend on the direction.
That number is taken from the first direction only; every other direction must then agree.
"""

import numpy as np
import pytest
from pyscf import gto

from pyscf_io.basis import canonical_permutation, element_basis

featomic = pytest.importorskip("featomic")
ase = pytest.importorskip("ase")

LMAX = 6


def featomic_pair_expansion(directions: np.ndarray, r: float) -> dict[int, np.ndarray]:
    """{l: (n_directions, 2l + 1)} pair coefficients of the neighbour at r * u (largest radial n)."""
    systems = [ase.Atoms("H2", positions=[[0.0, 0.0, 0.0], r * u]) for u in directions]
    calculator = featomic.SphericalExpansionByPair(
        cutoff={"radius": 3.0, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
        density={"type": "Gaussian", "width": 0.3},
        basis={"type": "TensorProduct", "max_angular": LMAX, "radial": {"type": "Gto", "max_radial": 2}},
    )
    expansion = calculator.compute(systems)
    out = {}
    for l in range(LMAX + 1):
        block = expansion.block(o3_lambda=l, o3_sigma=1, first_atom_type=1, second_atom_type=1)
        assert block.components[0].names == ["o3_mu"]
        assert list(block.components[0].values[:, 0]) == list(range(-l, l + 1))
        samples = block.samples.values
        rows = np.where((samples[:, 1] == 0) & (samples[:, 2] == 1))[0]
        rows = rows[np.argsort(samples[rows, 0])]
        assert len(rows) == len(directions)
        values = np.asarray(block.values)[rows]  # (direction, m, n)
        n = int(np.argmax(np.abs(values[0]).max(axis=0)))
        out[l] = values[:, :, n]
    return out


def pyscf_io_harmonics(directions: np.ndarray) -> dict[int, np.ndarray]:
    """{l: (n_directions, 2l + 1)} Y_lm(u) of pyscf-io's basis functions in canonical order: phi / R(1)."""
    basis = [[l, [0.7, 1.0]] for l in range(LMAX + 1)]
    mol = gto.M(atom="He 0 0 0", basis={"He": basis}, verbose=0)
    eb = element_basis("He", basis)
    values = mol.eval_gto("GTOval_sph", directions)[:, canonical_permutation(mol)]
    out = {}
    for l, sl in eb.l_slices():
        [radial] = [g for g in eb.gaussians if g.l == l]
        out[l] = values[:, sl] / radial(np.ones(1))[0]
    return out


def test_real_spherical_harmonics_equal_featomics_up_to_l6():
    rng = np.random.default_rng(7)
    directions = rng.normal(size=(60, 3))
    directions /= np.linalg.norm(directions, axis=1)[:, None]
    ours = pyscf_io_harmonics(directions)
    theirs = featomic_pair_expansion(directions, r=1.3)
    for l in range(LMAX + 1):
        y = ours[l]
        np.testing.assert_allclose((y**2).sum(axis=1), (2 * l + 1) / (4 * np.pi), rtol=1e-12)  # addition theorem
        scale = (theirs[l][0] @ y[0]) / (y[0] @ y[0])  # g_nl(r), from the first direction alone
        assert scale > 0.1
        np.testing.assert_allclose(theirs[l] / scale, y, rtol=0, atol=1e-12, err_msg=f"l = {l}")
