"""rho-model's seeded random split: rho_data.split's shuffle and cut, with round(f n) structures per part."""

from __future__ import annotations

import numpy as np
import pytest

from rho_model.errors import RhoModelError
from rho_model.splits import make_splits, split_counts


def options(fractions, seed=0):
    return {"train": None, "val": None, "test": None, "seed": seed, "fractions": fractions}


@pytest.mark.parametrize(
    ("n", "fractions", "counts"),
    [
        (8, [0.75, 0.25, 0.0], [6, 2, 0]),
        (10, [0.75, 0.25, 0.0], [8, 2, 0]),  # round half to even: 7.5 -> 8, 2.5 -> 2
        (3, [0.5, 0.5, 0.0], [2, 1, 0]),  # rounding asks for 4 of 3: validation takes what is left
        (20, [0.8, 0.1, 0.1], [16, 2, 2]),
        (5, [1.0, 0.0, 0.0], [5, 0, 0]),
    ],
)
def test_counts_round_and_never_exceed_the_dataset(n, fractions, counts):
    assert split_counts(n, fractions) == counts


def test_parts_are_the_seeded_permutation_cut_in_order():
    n = 23
    splits = make_splits(n, options([0.6, 0.2, 0.2], seed=7), "id")
    order = np.random.default_rng(7).permutation(n)  # the permutation rho_data.split draws
    assert splits["train"] == sorted(order[:14].tolist())
    assert splits["val"] == sorted(order[14:19].tolist())
    assert splits["test"] == sorted(order[19:24].tolist())


def test_an_empty_training_split_is_refused():
    with pytest.raises(RhoModelError, match="training split is empty"):
        make_splits(3, options([0.1, 0.5, 0.0]), "id")
