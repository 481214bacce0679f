"""Learning another field of a dataset than its main target (--target, data.target)."""

import numpy as np
import pytest
import yaml
from helpers import SMALL_DESCRIPTOR, EquivariantTarget, basis_of, overlap_of, water_geometries
from typer.testing import CliRunner

from rho_data import BlockSparseOverlap, Provenance, Structure, TargetValues, create_dataset, open_dataset, open_predictions
from rho_model.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def two_fields(tmp_path_factory):
    """12 waters whose main target and further target 'homo' are two different equivariant maps."""
    basis = basis_of(["H", "O"])
    density, homo = EquivariantTarget(basis, SMALL_DESCRIPTOR, seed=1), EquivariantTarget(basis, SMALL_DESCRIPTOR, seed=2)
    path = tmp_path_factory.mktemp("fields") / "w.h5"
    with create_dataset(path, basis, Provenance(producer="rho-model-tests", fit_metric="overlap"), targets=["homo"]) as w:
        for i, (numbers, positions) in enumerate(water_geometries(12, seed=5)):
            dense = overlap_of(numbers, positions)
            d, h = density(numbers, positions), homo(numbers, positions)
            w.append(
                Structure(
                    numbers=numbers,
                    positions=positions,
                    label=f"s{i}",
                    coefficients=d,
                    projections=dense @ d,
                    overlap=BlockSparseOverlap.from_dense(dense, basis.atom_sizes(numbers), threshold=1e-14),
                    targets={"homo": TargetValues(h, dense @ h)},
                )
            )
    options = path.parent / "opts.yaml"
    desc = dict(SMALL_DESCRIPTOR, cache_dir=str(path.parent / "cache"))
    options.write_text(yaml.safe_dump({"descriptor": desc, "fit": {"alpha": 1e-10}, "data": {"fractions": [0.75, 0.25, 0.0]}}))
    return path, options


def test_train_and_predict_another_target(two_fields, tmp_path):
    path, options = two_fields
    result = runner.invoke(app, ["train", str(path), "-o", str(tmp_path / "run"), "-c", str(options), "--target", "HOMO"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["predict", str(tmp_path / "run" / "model.pt"), str(path), "-o", str(tmp_path / "p.h5")])
    assert result.exit_code == 0, result.output
    with open_predictions(tmp_path / "p.h5") as p, open_dataset(path) as ds:
        assert p.target == "homo"
        for row in range(len(p)):
            i = p.dataset_index(row)
            predicted, homo, density = p.coefficients(row), ds.coefficients(i, "homo"), ds.coefficients(i)
            # the exact linear fit recovers the linear map of the features it was trained on
            assert np.linalg.norm(predicted - homo) < 2e-2 * np.linalg.norm(homo)
            assert np.linalg.norm(predicted - density) > 0.1 * np.linalg.norm(density)


def test_main_target_by_default_and_unknown_targets(two_fields, tmp_path):
    path, options = two_fields
    result = runner.invoke(app, ["train", str(path), "-o", str(tmp_path / "run"), "-c", str(options), "--target", "lumo"])
    assert result.exit_code == 1
    assert "no target 'lumo' (the dataset holds electron_density, homo)" in result.output
    result = runner.invoke(app, ["train", str(path), "-o", str(tmp_path / "main"), "-c", str(options), "--target", "density"])
    assert result.exit_code == 0, result.output
    runner.invoke(app, ["predict", str(tmp_path / "main" / "model.pt"), str(path), "-o", str(tmp_path / "p.h5")])
    with open_predictions(tmp_path / "p.h5") as p:
        assert p.target == "electron_density"
