import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).parent))

from helpers import SMALL_DESCRIPTOR, EquivariantTarget, basis_of, water_geometries, write_dataset


@pytest.fixture(scope="session")
def water_target():
    return EquivariantTarget(basis_of(["H", "O"]), SMALL_DESCRIPTOR)


@pytest.fixture(scope="session")
def water_dataset(tmp_path_factory, water_target) -> Path:
    """16 distorted waters, PySCF overlaps of a small basis, equivariant targets."""
    path = tmp_path_factory.mktemp("data") / "water.h5"
    return write_dataset(path, water_geometries(16, seed=3), water_target)


@pytest.fixture
def small_options(tmp_path):
    from rho_model.options import load_options

    desc = dict(SMALL_DESCRIPTOR)
    desc["cache_dir"] = str(tmp_path / "cache")
    return load_options(
        overrides={
            "descriptor": desc,
            "data": {"fractions": [0.75, 0.25, 0.0]},
            "fit": {"alphas": [1e-10, 1e-8, 1e-6], "cv_folds": 3},
        }
    )
