"""``rho-data split``: shuffled, ordered and explicit-range parts, all written as index files."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from rho_data import RhoDataError, open_dataset
from rho_data.split import PartRange, range_indices, read_index_file, split_indices


def cli(*args):
    return subprocess.run([sys.executable, "-m", "rho_data.cli", *map(str, args)], capture_output=True, text=True)


def parts(folder, names, dataset_path):
    with open_dataset(dataset_path) as f:
        dataset_id, n = f.dataset_id, len(f)
    return [read_index_file(folder / f"{name}.idx", dataset_id=dataset_id, n_structures=n).tolist() for name in names]


def test_ordered_split_takes_the_first_then_the_next(tmp_path, dataset_path):
    done = cli("split", dataset_path, "--ordered", "-s", "3", "-s", "2", "-n", "train", "-n", "val", "-o", tmp_path)
    assert done.returncode == 0, done.stderr
    assert parts(tmp_path, ["train", "val"], dataset_path) == [[0, 1, 2], [3, 4]]
    assert "in file order" in (tmp_path / "train.idx").read_text().splitlines()[1]


def test_ranges_select_slices_in_file_order(tmp_path, dataset_path):
    done = cli("split", dataset_path, "-r", "train=0:2", "--range", "val=-2:", "-r", "mid=2:-2", "-o", tmp_path)
    assert done.returncode == 0, done.stderr
    assert parts(tmp_path, ["train", "val", "mid"], dataset_path) == [[0, 1], [3, 4], [2]]
    lines = (tmp_path / "val.idx").read_text().splitlines()
    assert lines[0].startswith("# dataset_id: ") and lines[1].endswith("part 'val', range -2:")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-r", "a=0:3", "-r", "b=-3:"), "ranges a=0:3 and b=-3: share 1 structure (first 2)"),
        (
            (
                "-r",
                "a=0:9",
            ),
            "range a=0:9: 9 lies outside the dataset of 5 structures",
        ),
        (
            (
                "-r",
                "a=3:3",
            ),
            "range a=3:3 selects no structures",
        ),
        (
            (
                "-r",
                "a",
            ),
            "is not NAME=START:STOP",
        ),
        (
            (
                "-r",
                "a=x:2",
            ),
            "must be integers or empty",
        ),
        (("-r", "a=0:2", "-s", "2"), "do not combine it with --size"),
        (
            (
                "-r",
                "../a=0:2",
            ),
            "not a plain file name",
        ),
        (("--ordered", "--seed", "3"), "--seed has no meaning"),
    ],
)
def test_bad_ranges_are_one_line_errors(tmp_path, dataset_path, args, message):
    done = cli("split", dataset_path, *args, "-o", tmp_path / "out")
    assert done.returncode == 1 and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_shuffled_split_is_unchanged_and_ordered_split_does_not_shuffle():
    assert [p.tolist() for p in split_indices(10, [0.5, 0.5], 0, ordered=True)] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    shuffled = split_indices(10, [0.5, 0.5], 0)
    assert sorted(np.concatenate(shuffled).tolist()) == list(range(10)) and shuffled[0].tolist() != [0, 1, 2, 3, 4]
    assert [p.tolist() for p in split_indices(10, [0.5, 0.5], 0)] == [p.tolist() for p in shuffled]


def test_part_range_parsing():
    assert PartRange.parse("val=-20:") == PartRange("val", -20, None)
    assert PartRange.parse("train=:80").indices(100).tolist() == list(range(80))
    assert [p.tolist() for p in range_indices(5, [PartRange.parse("a=:1"), PartRange.parse("b=-1:")])] == [[0], [4]]
    with pytest.raises(RhoDataError, match="outside"):
        PartRange.parse("a=-6:").indices(5)
