"""The coefficient convention, proved by rotation: for a rotated molecule, the coefficients of
each atom and each l are the real Wigner-D rotation of the original's, for l = 0..6.

The SCF is Hartree-Fock (no XC grid, whose orientation would break exact invariance) with a
tight convergence; the Wigner-D matrices are built from scipy's real spherical harmonics,
independent of PySCF: Y_l(R^T x) = Y_l(x) D_l, so d_rot = D_l d for each (atom, l, n).
"""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from test_basis import real_sph

from pyscf_io.basis import load_ao_basis
from pyscf_io.compute import compute_structure
from pyscf_io.config import load_settings
from pyscf_io.context import RunContext
from pyscf_io.geometry import InputStructure

LMAX = 6


def wigner_d(l: int, rot: np.ndarray) -> np.ndarray:
    pts = np.random.default_rng(l).normal(size=(4 * (2 * l + 1), 3))
    y, y_rot = real_sph(l, pts), real_sph(l, pts @ rot)  # rows of pts @ rot are R^T x
    d, *_ = np.linalg.lstsq(y, y_rot, rcond=None)
    return d  # Y_l(R^T x) = Y_l(x) D  =>  d_rot = D d


@pytest.mark.parametrize("seed", [3])
def test_coefficients_rotate_with_wigner_d(seed):
    settings = load_settings(overrides={"xc": "HF", "basis": "sto-3g", "scf_conv_tol": 1e-13, "grid_level": 0})
    aux = {sym: [[l, [e, 1.0]] for l in range(LMAX + 1) for e in (3.0, 0.6)] for sym in ("H", "O")}
    ao, _ = load_ao_basis("sto-3g", ["H", "O"])
    ctx = RunContext(settings, ao, aux)
    positions = np.array([[0.0, 0.05, 0.1173], [0.1, 0.7572, -0.4692], [0.0, -0.7572, -0.4892]])
    rot = Rotation.random(random_state=seed).as_matrix()
    a = compute_structure(InputStructure("t", 0, "a", (8, 1, 1), tuple(map(tuple, positions))), ctx)
    b = compute_structure(InputStructure("t", 0, "b", (8, 1, 1), tuple(map(tuple, positions @ rot.T))), ctx)
    basis = ctx.basis()
    start, largest = 0, np.zeros(LMAX + 1)
    for z in a.numbers:
        eb = basis[int(z)]
        for l, sl in eb.l_slices():
            ca = a.coefficients[start + sl.start : start + sl.stop].reshape(-1, 2 * l + 1)
            cb = b.coefficients[start + sl.start : start + sl.stop].reshape(-1, 2 * l + 1)
            np.testing.assert_allclose(cb, ca @ wigner_d(l, rot).T, atol=1e-8, err_msg=f"Z={z} l={l}")
            largest[l] = max(largest[l], np.abs(ca).max())
        start += eb.n_functions
    assert (largest[1:] > 1e-5).all(), largest  # every l carries signal, so the test has teeth
