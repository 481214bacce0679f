"""Bad files give one-line errors naming the file and the problem, through the API and the CLI."""

import subprocess
import sys

import h5py
import numpy as np
import pytest

from rho_data import RhoDataError, open_dataset
from rho_data.validate import validate_file


def rho_data_cli(*args):
    return subprocess.run([sys.executable, "-m", "rho_data.cli", *map(str, args)], capture_output=True, text=True)


def one_line_error(result) -> str:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and "validating" not in line]
    assert len(lines) >= 1
    return "\n".join(lines)


def test_not_hdf5(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("not hdf5 at all")
    with pytest.raises(RhoDataError, match="not an HDF5 file"):
        open_dataset(path)
    assert f"{path}: not an HDF5 file" in one_line_error(rho_data_cli("info", path))


def test_truncated_file(tmp_path, dataset_path):
    data = dataset_path.read_bytes()
    path = tmp_path / "cut.h5"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(RhoDataError, match="truncated or damaged"):
        open_dataset(path)
    assert str(path) in one_line_error(rho_data_cli("validate", path))


def test_other_schema(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as h5:
        h5.attrs["schema"] = "something-else"
    assert "not a rho-data file" in one_line_error(rho_data_cli("info", path))


def test_index_that_does_not_match_the_layout(dataset_path):
    """A file whose commit index lacks a segment (an old development layout) is refused, not read wrongly."""
    with h5py.File(dataset_path, "r+") as h5:
        h5["structures/index"].attrs["columns"] = list(h5["structures/index"].attrs["columns"])[:-2]
    with pytest.raises(RhoDataError, match="does not match the file's layout"):
        open_dataset(dataset_path)
    assert str(dataset_path) in one_line_error(rho_data_cli("info", dataset_path))


def corrupt(path, name, index, value):
    with h5py.File(path, "r+") as h5:
        h5[f"structures/{name}"][index] = value


def test_validate_finds_nan_coefficients(dataset_path):
    corrupt(dataset_path, "coefficients", 3, np.nan)
    problems = validate_file(dataset_path)
    assert [(p.structure, p.field) for p in problems] == [(0, "coefficients")]
    text = one_line_error(rho_data_cli("validate", dataset_path))
    assert "structure 0 (mol0): coefficients: 1 non-finite values" in text


def test_validate_finds_projections_that_are_not_s_d(dataset_path):
    with open_dataset(dataset_path) as f:
        start = sum(f.basis.n_functions(f[i].numbers) for i in range(2))
    corrupt(dataset_path, "projections", start + 1, 123.0)
    problems = validate_file(dataset_path)
    assert [(p.structure, p.field) for p in problems] == [(2, "projections")]


def test_validate_finds_asymmetric_diagonal_block_and_bad_diagonal(dataset_path):
    with open_dataset(dataset_path) as f:
        s = f[1]  # one atom: a single diagonal block
        n = s.overlap.atom_sizes[0]
        before = sum(len(f[i].overlap.values) for i in range(1))
    corrupt(dataset_path, "overlap_values", before + 1, 5.0)  # (0, 1) entry only
    corrupt(dataset_path, "overlap_values", before + n + 1, -1.0)  # diagonal (1, 1)
    messages = [p.message for p in validate_file(dataset_path)]
    assert any("not symmetric" in m for m in messages) and any("non-positive diagonal" in m for m in messages)


def test_validate_finds_basis_that_does_not_match_element(dataset_path):
    with open_dataset(dataset_path) as f:
        first = f.numbers(0)[0]
    corrupt(dataset_path, "numbers", 0, 1 if first != 1 else 8)
    problems = validate_file(dataset_path)
    assert problems and problems[0].structure == 0
    assert problems[0].field in ("coefficients", "record")


def test_valid_file_passes(dataset_path):
    assert validate_file(dataset_path) == []
    result = rho_data_cli("validate", dataset_path)
    assert result.returncode == 0 and "valid" in result.stdout
