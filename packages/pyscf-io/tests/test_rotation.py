"""The coefficient convention, proved by rotation: for a rotated molecule, the coefficients of
each atom and each l are the real Wigner-D rotation of the original's, for l = 0..6.

The SCF is Hartree-Fock (no XC grid, whose orientation would break exact invariance) with a
tight convergence; the Wigner-D matrices are built from scipy's real spherical harmonics,
independent of PySCF: Y_l(R^T x) = Y_l(x) D_l, so d_rot = D_l d for each (atom, l, n).

What is compared, and to what tolerance (derived, not tuned):

The auxiliary basis (two exponents per l on every atom) is closed under rotation, and the
Coulomb fit d = J^-1 b is the J-orthogonal projection of the density onto it. So in exact
arithmetic d_rot = D d, and the rotated fit differs from the rotated original only through

1. the SCF densities of the two orientations: the fit of their difference has a J norm at
   most ||rho_rot - R rho||_J (a projection never lengthens), measured here from the two
   density matrices (the AO p functions rotate with R);
2. rounding in the fit: libcint's integrals and LAPACK's eigh carry a relative error
   eps_num <= 1e-13 (measured: ~1e-14). A relative perturbation eps of J and b changes d by
   ||delta d||_J / ||d||_J <= eps (kappa + sqrt(kappa)), kappa the condition number of the
   kept metric (``fit_condition``, at most 1 / fit_rcond).

The error is compared in the fit's own norm, ||e||_J = sqrt(e^T J e) (the Coulomb energy of the
error density, the quantity the Coulomb fit minimises), relative to ||d||_J. Raw coefficients
are not compared: in the nearly dependent directions of this basis (kappa ~ 2e7) single
coefficients reach 60 and move by 1e-7 between BLAS builds while the density they describe
does not. The test keeps its teeth: for each l a wrong m convention (m order reversed in D_l)
must give an error above 100 times the tolerance, and the real convention error must be below it.
"""

import numpy as np
import pytest
import scipy.linalg
from pyscf import df
from scipy.spatial.transform import Rotation
from test_basis import real_sph

from pyscf_io.basis import canonical_permutation, load_ao_basis, make_mole
from pyscf_io.compute import compute_structure
from pyscf_io.config import fit_metric, load_settings
from pyscf_io.context import RunContext
from pyscf_io.geometry import InputStructure

LMAX = 6
EPS_NUM = 1e-13  # relative accuracy of libcint's integrals and LAPACK's eigh (see module doc)


def wigner_d(l: int, rot: np.ndarray) -> np.ndarray:
    pts = np.random.default_rng(l).normal(size=(4 * (2 * l + 1), 3))
    y, y_rot = real_sph(l, pts), real_sph(l, pts @ rot)  # rows of pts @ rot are R^T x
    d, *_ = np.linalg.lstsq(y, y_rot, rcond=None)
    return d  # Y_l(R^T x) = Y_l(x) D  =>  d_rot = D d


def rotation_of_coefficients(basis, numbers, rot: np.ndarray, wrong_l: int | None = None) -> np.ndarray:
    """Block-diagonal D over (atom, l, n) in canonical order; ``wrong_l`` reverses the m order of that l."""
    blocks = []
    for z in numbers:
        eb = basis[int(z)]
        for l, sl in eb.l_slices():
            d = wigner_d(l, rot)
            if l == wrong_l:
                d = d[::-1, ::-1]
            blocks += [d] * ((sl.stop - sl.start) // (2 * l + 1))
    return scipy.linalg.block_diag(*blocks)


def scf_density_error(ctx, numbers, positions, rot, dm_a, dm_b) -> float:
    """||rho_b - R rho_a||_J from the density matrices (AO basis with s and p shells only)."""
    mol = make_mole(numbers, positions @ rot.T, ctx.ao)
    u = np.eye(mol.nao)
    for shell in range(mol.nbas):
        l = mol.bas_angular(shell)
        assert l <= 1, "the AO rotation below handles s and p shells only"
        if l == 1:
            start = mol.ao_loc_nr()[shell]
            for k in range(mol.bas_nctr(shell)):
                idx = slice(start + 3 * k, start + 3 * k + 3)
                u[idx, idx] = rot  # PySCF's p order is (x, y, z)
    delta = dm_b.reshape(mol.nao, mol.nao) - u @ dm_a.reshape(mol.nao, mol.nao) @ u.T
    return float(np.sqrt(max(np.einsum("ij,ijkl,kl", delta, mol.intor("int2e"), delta), 0.0)))


@pytest.mark.parametrize("seed", [3])
def test_coefficients_rotate_with_wigner_d(seed):
    settings = load_settings(overrides={"xc": "HF", "basis": "sto-3g", "scf_conv_tol": 1e-13, "grid_level": 0})
    assert fit_metric(settings) == "coulomb"
    aux = {sym: [[l, [e, 1.0]] for l in range(LMAX + 1) for e in (3.0, 0.6)] for sym in ("H", "O")}
    ao, _ = load_ao_basis("sto-3g", ["H", "O"])
    ctx = RunContext(settings, ao, aux)
    numbers = (8, 1, 1)
    positions = np.array([[0.0, 0.05, 0.1173], [0.1, 0.7572, -0.4692], [0.0, -0.7572, -0.4892]])
    rot = Rotation.random(random_state=seed).as_matrix()
    a = compute_structure(InputStructure("t", 0, "a", numbers, tuple(map(tuple, positions))), ctx)
    b = compute_structure(InputStructure("t", 0, "b", numbers, tuple(map(tuple, positions @ rot.T))), ctx)
    basis = ctx.basis()

    mol = make_mole(numbers, positions, ao)
    auxmol = df.addons.make_auxmol(mol, aux)
    perm = canonical_permutation(auxmol)
    metric = auxmol.intor("int2c2e")[np.ix_(perm, perm)]  # J of the original orientation, canonical order

    def j_norm(v: np.ndarray) -> float:
        return float(np.sqrt(max(v @ metric @ v, 0.0)))

    d_a = a.coefficients
    d_b_in_a = rotation_of_coefficients(basis, numbers, rot).T @ b.coefficients  # D^T = D^-1; J(a) applies
    kappa = max(a.metadata["fit_condition"], b.metadata["fit_condition"])
    assert kappa <= 1.0 / settings["fit_rcond"]
    scf_term = scf_density_error(ctx, numbers, positions, rot, a.extras["density_matrix"], b.extras["density_matrix"])
    tolerance = scf_term / j_norm(d_a) + EPS_NUM * (kappa + np.sqrt(kappa))
    error = j_norm(d_b_in_a - d_a) / j_norm(d_a)
    assert error <= tolerance, f"relative J-norm error {error:.2e} > tolerance {tolerance:.2e} (kappa {kappa:.1e})"

    largest = np.zeros(LMAX + 1)
    start = 0
    for z in numbers:
        eb = basis[int(z)]
        for l, sl in eb.l_slices():
            largest[l] = max(largest[l], np.abs(d_a[start + sl.start : start + sl.stop]).max())
        start += eb.n_functions
    assert (largest[1:] > 1e-5).all(), largest  # every l carries signal, so the test has teeth
    for l in range(1, LMAX + 1):  # teeth: a wrong m convention at any single l is far outside the tolerance
        wrong = rotation_of_coefficients(basis, numbers, rot, wrong_l=l).T @ b.coefficients
        wrong_error = j_norm(wrong - d_a) / j_norm(d_a)
        assert wrong_error > 100 * tolerance, f"l={l}: a reversed m order gives only {wrong_error:.2e}"
