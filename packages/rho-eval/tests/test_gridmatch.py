"""Matching fields returned on separate grids (as FHI-aims writes them) by coordinates."""

import numpy as np
import pytest
from rho_data import Grid

from rho_eval import RhoEvalError, match_points, merge_grids


@pytest.fixture
def base():
    rng = np.random.default_rng(0)
    points = rng.uniform(-5, 5, size=(500, 3))
    weights = rng.uniform(0.1, 1.0, size=500)
    return Grid(points, weights, {"ri": np.sin(points[:, 0])})


def test_identical_points_match_in_order(base):
    assert np.array_equal(match_points(base.points, base.points.copy()), np.arange(500))


def test_permuted_points_are_matched_by_coordinates(base):
    order = np.random.default_rng(1).permutation(500)
    other = Grid(base.points[order] + 1e-9, base.weights[order], {"scf": np.cos(base.points[order, 1])})
    merged = merge_grids([base, other])
    assert np.array_equal(merged.points, base.points)
    assert np.allclose(merged.values["scf"], np.cos(base.points[:, 1]))
    assert np.array_equal(merged.values["ri"], base.values["ri"])


def test_different_points_are_refused(base):
    with pytest.raises(RhoEvalError, match="no partner within"):
        match_points(base.points, base.points + 1e-3)
    with pytest.raises(RhoEvalError, match="500 points and 499 points"):
        match_points(base.points, base.points[:-1])


def test_points_that_cannot_be_paired_one_to_one_are_refused():
    points = np.array([[0.0, 0, 0], [1.0, 0, 0], [1.0 + 2e-6, 0, 0]])
    other = np.array([[1.0 + 1e-6, 0, 0], [0.0, 0, 0], [5.0, 0, 0]])
    with pytest.raises(RhoEvalError):
        match_points(points, other, tolerance=1e-5)
    twins = np.array([[0.0, 0, 0], [1e-7, 0, 0], [3.0, 0, 0]])
    with pytest.raises(RhoEvalError, match="one to one"):
        match_points(twins, np.array([[0.0, 0, 0], [3.0, 0, 0], [4e-6, 0, 0]]), tolerance=1e-5)


def test_other_weights_or_repeated_fields_are_refused(base):
    with pytest.raises(RhoEvalError, match="different integration weights"):
        merge_grids([base, Grid(base.points, base.weights * 1.01, {"scf": base.values["ri"]})])
    with pytest.raises(RhoEvalError, match="returned on two grids"):
        merge_grids([base, Grid(base.points, base.weights, {"ri": base.values["ri"]})])
