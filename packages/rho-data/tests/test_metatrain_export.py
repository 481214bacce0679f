"""export --format metatrain read back by metatrain itself, and import of its DiskDataset predictions.

Needs metatrain (its own environment: ``nox -s metatrain``); skipped elsewhere.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

# metatrain and its dependencies warn about their own deprecated calls (torch.jit, omegaconf) on import and use
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning", "ignore::FutureWarning")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    pytest.importorskip("metatrain")
    torch = pytest.importorskip("torch")
    import metatensor
    from metatomic.torch import System
    from metatrain.utils.data import DiskDataset
    from metatrain.utils.data.writers import DiskDatasetWriter
    from metatrain.utils.omegaconf import expand_dataset_config
    from metatrain.utils.pydantic import validate_base_options
    from omegaconf import OmegaConf

from rho_data import open_dataset, open_predictions  # noqa: E402
from rho_data.cli import app  # noqa: E402
from rho_data.metatrain import TARGET, from_metatrain, join_entries  # noqa: E402
from rho_data.split import read_index_file, write_index_file  # noqa: E402

runner = CliRunner()


@pytest.fixture
def exported(tmp_path: Path, dataset_path: Path) -> Path:
    with open_dataset(dataset_path) as f:
        dataset_id = f.dataset_id
    splits = tmp_path / "splits"
    splits.mkdir()
    for name, indices in (("train", [0, 2, 4]), ("val", [1]), ("test", [3])):
        write_index_file(splits / f"{name}.idx", indices, dataset_id=dataset_id)
    out = tmp_path / "mtt"
    args = ["export", str(dataset_path), "--format", "metatrain", "-o", str(out)]
    args += [a for name in ("train", "val", "test") for a in ("--indices", str(splits / f"{name}.idx"))]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return out


def test_metatrain_reads_the_export_as_it_is(exported: Path, dataset_path: Path) -> None:
    options = OmegaConf.load(exported / "options.yaml")
    validate_base_options(OmegaConf.to_container(options))  # what mtt train checks first
    with open_dataset(dataset_path) as f:
        for part in ("train", "val", "test"):
            indices = read_index_file(exported / f"{part}.idx", dataset_id=f.dataset_id)
            name = {"train": "training_set", "val": "validation_set", "test": "test_set"}[part]
            section = options[name]
            assert section["systems"]["read_from"] == f"{part}.zip"
            dataset = DiskDataset(exported / f"{part}.zip", fields=[TARGET])
            assert len(dataset) == len(indices)
            entries, structures = [], [f[int(i)] for i in indices]
            for k, s in enumerate(structures):
                sample = dataset[k]
                np.testing.assert_array_equal(sample.system.types.numpy(), s.numbers)
                np.testing.assert_array_equal(sample.system.positions.numpy(), s.positions)
                entries.append(metatensor.io.load_buffer(sample[1].save_buffer().numpy()))  # system label k
            vectors = from_metatrain(join_entries(entries), [s.numbers for s in structures], f.basis, source=part)
            for vector, s in zip(vectors, structures):
                np.testing.assert_array_equal(vector, s.coefficients)
            expanded = expand_dataset_config(OmegaConf.create(validate_base_options(OmegaConf.to_container(options))[name]))
            assert dataset.get_target_info(expanded[0]["targets"])[TARGET].is_atomic_basis


def test_export_refuses_existing_files_without_overwrite(exported: Path, dataset_path: Path, tmp_path: Path) -> None:
    before = {p.name: p.read_bytes() for p in exported.iterdir()}
    args = ["export", str(dataset_path), "--format", "metatrain", "-o", str(exported)]
    args += ["--indices", str(tmp_path / "splits" / "train.idx")]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "--overwrite" in result.output and len(result.output.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in exported.iterdir()} == before
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0
    assert not [p for p in os.listdir(exported) if p.endswith(".tmp")]


def test_export_needs_a_training_part(dataset_path: Path, tmp_path: Path) -> None:
    with open_dataset(dataset_path) as f:
        write_index_file(tmp_path / "val.idx", [0], dataset_id=f.dataset_id)
    args = [
        "export",
        str(dataset_path),
        "--format",
        "metatrain",
        "-o",
        str(tmp_path / "mtt"),
        "--indices",
        str(tmp_path / "val.idx"),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "train.idx" in result.output
    assert not (tmp_path / "mtt").exists()


def _predictions_zip(path: Path, exported: Path, part: str, shift: float = 0.0) -> Path:
    """What ``mtt eval ... -o NAME.zip`` writes: the part's systems and targets as predictions."""
    dataset = DiskDataset(exported / f"{part}.zip", fields=[TARGET])
    writer = DiskDatasetWriter(str(path))
    for k in range(len(dataset)):
        sample = dataset[k]
        system = sample.system
        moved = System(types=system.types, positions=system.positions + shift, cell=system.cell, pbc=system.pbc)
        writer.write([moved], {TARGET: sample[1]})
    writer.finish()
    return path


def test_import_of_a_predictions_zip_checks_the_geometry(exported: Path, dataset_path: Path, tmp_path: Path) -> None:
    prediction = _predictions_zip(tmp_path / "pred.zip", exported, "train")
    output = tmp_path / "p.h5"
    args = ["import", "metatrain", str(prediction), "-r", str(dataset_path), "-o", str(output)]
    result = runner.invoke(app, [*args, "--indices", str(exported / "train.idx")])
    assert result.exit_code == 0, result.output
    with open_predictions(output) as p, open_dataset(dataset_path) as d:
        assert [s.dataset_index for s in p] == [0, 2, 4]
        for s in p:
            np.testing.assert_array_equal(s.coefficients, d[s.dataset_index].coefficients)
    moved = _predictions_zip(tmp_path / "moved.zip", exported, "train", shift=0.01)
    result = runner.invoke(app, ["import", "metatrain", str(moved), "-r", str(dataset_path), "-o", str(tmp_path / "q.h5")])
    assert result.exit_code == 1 and "give --indices" in result.output
    result = runner.invoke(
        app,
        [
            "import",
            "metatrain",
            str(moved),
            "-r",
            str(dataset_path),
            "-o",
            str(tmp_path / "q.h5"),
            "--systems",
            str(exported / "train.zip"),
        ],
    )
    assert result.exit_code == 0, result.output  # the exported part's geometry, its index file beside it
    result = runner.invoke(
        app,
        [
            "import",
            "metatrain",
            str(moved),
            "-r",
            str(dataset_path),
            "-o",
            str(tmp_path / "r.h5"),
            "--indices",
            str(exported / "train.idx"),
        ],
    )
    assert result.exit_code == 1 and "positions differ" in result.output
    wrong = runner.invoke(
        app,
        [
            "import",
            "metatrain",
            str(prediction),
            "-r",
            str(dataset_path),
            "-o",
            str(tmp_path / "s.h5"),
            "--indices",
            str(exported / "val.idx"),
        ],
    )
    assert wrong.exit_code == 1 and "holds 3 systems" in wrong.output
