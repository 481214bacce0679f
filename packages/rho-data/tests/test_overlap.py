import numpy as np
import pytest

from rho_data import BlockSparseOverlap, RhoDataError


def random_spd(rng, n):
    b = rng.normal(size=(n, n))
    return b @ b.T / n + 0.1 * np.eye(n)


def test_matvec_and_quadratic_equal_dense():
    rng = np.random.default_rng(0)
    sizes = np.array([4, 2, 4, 3, 2])
    dense = random_spd(rng, sizes.sum())
    ov = BlockSparseOverlap.from_dense(dense, sizes)
    v = rng.normal(size=sizes.sum())
    np.testing.assert_allclose(ov.matvec(v), dense @ v, rtol=1e-13, atol=1e-13)
    stack = rng.normal(size=(sizes.sum(), 3))
    np.testing.assert_allclose(ov.matvec(stack), dense @ stack, rtol=1e-13, atol=1e-13)
    assert ov.quadratic(v) == pytest.approx(v @ dense @ v, rel=1e-13)
    np.testing.assert_array_equal(ov.to_dense(), dense)


def test_threshold_drops_far_pairs_but_keeps_diagonal():
    sizes = np.array([2, 2, 2])
    dense = np.eye(6)
    dense[0:2, 2:4] = dense[2:4, 0:2] = 0.5  # atoms 0 and 1 overlap, atom 2 overlaps nobody
    ov = BlockSparseOverlap.from_dense(dense, sizes, threshold=1e-12)
    assert ov.pairs.tolist() == [[0, 0], [0, 1], [1, 1], [2, 2]]
    np.testing.assert_array_equal(ov.to_dense(), dense)
    assert [b.shape for b in ov.diagonal_blocks()] == [(2, 2)] * 3


def test_rejects_lower_triangle_pairs_and_wrong_sizes():
    with pytest.raises(RhoDataError, match="i <= j"):
        BlockSparseOverlap(np.array([1, 1]), np.array([[1, 0]]), np.zeros(1))
    with pytest.raises(RhoDataError, match="need 4 values"):
        BlockSparseOverlap(np.array([2, 2]), np.array([[0, 0]]), np.zeros(3))
    ov = BlockSparseOverlap(np.array([2]), np.array([[0, 0]]), np.eye(2).ravel())
    with pytest.raises(RhoDataError, match="3 entries"):
        ov.matvec(np.zeros(3))
