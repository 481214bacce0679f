"""Hostile and careless input to every rho-data command: exit 1, one line on stderr, no traceback."""

from __future__ import annotations

import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from rho_data import open_dataset
from rho_data.cli import app


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_line(result) -> str:
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip() and "validating" not in line and "merging" not in line]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def damage(path, change) -> None:
    with h5py.File(path, "r+") as h5:
        change(h5)


def set_attr(name, value, where="/"):
    return lambda h5: h5[where].attrs.__setitem__(name, value)


def replace(name, value):
    def change(h5):
        del h5[name]
        h5[name] = value

    return change


WRONG_TYPES = {
    "schema_version a string": (set_attr("schema_version", "1.0"), "'schema_version' must be two integers"),
    "schema_version of three": (set_attr("schema_version", [1, 0, 3]), "'schema_version' must be two integers"),
    "kind an int": (set_attr("kind", 3), "'kind' must be text"),
    "file_id an int": (set_attr("file_id", 7), "'file_id' must be text"),
    "dataset_id an array": (set_attr("dataset_id", np.arange(3)), "'dataset_id' must be text"),
    "provenance extra not JSON": (set_attr("extra", "{oops", "provenance"), "'extra' is not valid JSON"),
    "metadata columns an int": (set_attr("columns", 5, "structures/metadata"), "does not name every column"),
    "n_radial strings": (
        replace("basis/H/n_radial", np.array([b"a", b"b"])),
        "/basis/H/n_radial must be a 1-D array of integers",
    ),
    "n_radial floats": (replace("basis/H/n_radial", np.array([1.5, 2.0])), "/basis/H/n_radial must be a 1-D array of integers"),
    "radial_type an int": (set_attr("radial_type", 4, "basis/H"), "'radial_type' must be text"),
    "basis a dataset": (lambda h5: (h5.__delitem__("basis"), h5.create_dataset("basis", data=1)), "/basis is not a group"),
    "numbers floats": (replace("structures/numbers", np.ones(5) * 1.5), "/structures/numbers must hold int32 rows"),
    "positions 1-D": (replace("structures/positions", np.ones(5)), "/structures/positions must hold float64 rows of shape (3,)"),
    "coefficients strings": (replace("structures/coefficients", np.array([b"x"] * 5)), "/structures/coefficients must hold"),
}


@pytest.mark.parametrize("case", WRONG_TYPES)
def test_an_attribute_or_column_of_the_wrong_type(tmp_path, dataset_path, case):
    change, expected = WRONG_TYPES[case]
    damage(dataset_path, change)
    for command in ("info", "validate"):
        line = one_line(run(command, dataset_path))
        assert str(dataset_path) in line and expected in line, line


def test_bad_index_files_for_export(tmp_path, dataset_path):
    pytest.importorskip("metatensor")
    with open_dataset(dataset_path) as f:
        dataset_id = f.dataset_id
    cases = {
        "latin1.idx": ("0\n# Méthane\n".encode("latin-1"), "not UTF-8"),
        "words.idx": (b"0\n1\nthree\n", "line 3 is not an integer index: 'three'"),
        "huge.idx": (b"9" * 40 + b"\n", "line 1: index"),
        "range.idx": (b"0\n5\n", "indices must lie in 0..4"),
        "other.idx": (b"# dataset_id: another\n0\n", f"is a split of dataset another, not of dataset {dataset_id}"),
    }
    for name, (content, expected) in cases.items():
        index = tmp_path / name
        index.write_bytes(content)
        line = one_line(run("export", dataset_path, "-o", tmp_path / "c.mts", "--indices", index))
        assert str(index) in line and expected in line, line
        assert not (tmp_path / "c.mts").exists()
    assert "is a directory" in one_line(run("export", dataset_path, "-o", tmp_path / "c.mts", "--indices", tmp_path))
    assert "No such file" in one_line(run("export", dataset_path, "-o", tmp_path / "c.mts", "--indices", tmp_path / "no.idx"))


def test_outputs_in_missing_directories(tmp_path, dataset_path):
    missing = tmp_path / "missing" / "deeper"
    assert "does not exist" in one_line(run("merge", missing / "m.h5", dataset_path))
    assert "does not exist" in one_line(run("export", dataset_path, "-o", missing / "c.mts"))
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert "cannot create the directory" in one_line(run("split", dataset_path, "-o", blocker / "splits"))


def test_existing_outputs_are_not_replaced_without_overwrite(tmp_path, dataset_path):
    assert run("split", dataset_path, "-o", tmp_path / "s").exit_code == 0
    before = (tmp_path / "s" / "train.idx").read_text()
    line = one_line(run("split", dataset_path, "-o", tmp_path / "s", "--seed", "3"))
    assert "train.idx" in line and "already exists (pass --overwrite" in line
    assert (tmp_path / "s" / "train.idx").read_text() == before
    assert run("split", dataset_path, "-o", tmp_path / "s", "--seed", "3", "--overwrite").exit_code == 0
    assert (tmp_path / "s" / "train.idx").read_text() != before
    assert "already exists" in one_line(run("merge", dataset_path, dataset_path))
    assert "part names repeat" in one_line(run("split", dataset_path, "-s", "0.5", "-s", "0.5", "-n", "a", "-n", "a"))
    assert "not a plain file name" in one_line(run("split", dataset_path, "-s", "1", "-n", "../escape"))


def test_missing_and_non_hdf5_inputs(tmp_path, dataset_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert "no such file" in one_line(run("merge", tmp_path / "m.h5", dataset_path, tmp_path / "nope.h5"))
    assert "not an HDF5 file" in one_line(run("merge", tmp_path / "m.h5", text))
    assert not (tmp_path / "m.h5").exists() and not list(tmp_path.glob(".*.tmp"))
    assert "no such file" in one_line(run("upgrade", tmp_path / "nope.h5"))
    assert str(tmp_path) in one_line(run("info", tmp_path))


def test_outputs_in_a_read_only_directory(tmp_path, dataset_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M,ro", "tmpfs", str(folder)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        for args in (
            ("merge", folder / "m.h5", dataset_path),
            ("export", dataset_path, "-o", folder / "c.mts"),
            ("split", dataset_path, "-o", folder),
            ("split", dataset_path, "-o", folder / "new"),
        ):
            line = one_line(run(*args))
            assert str(folder) in line and ("not writable" in line or "read-only" in line.lower()), line
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)


def test_the_real_command_line_prints_no_traceback(tmp_path, dataset_path):
    """One subprocess run, so that the installed entry point's error path is covered too."""
    bad = tmp_path / "bad.h5"
    shutil.copy(dataset_path, bad)
    damage(bad, set_attr("schema_version", "1.0"))
    result = subprocess.run([sys.executable, "-m", "rho_data.cli", "info", bad], capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: {bad}: the root attribute 'schema_version' must be two integers (major, minor), got '1.0'"
    ]
