"""Schema versions: the frozen 1.0 fixture, refusing unknown versions, the upgrade chain."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from rho_data import SCHEMA_VERSION, RhoDataError, open_dataset
from rho_data.upgrade import UPGRADES, upgrade_file, upgrade_path

FIXTURES = Path(__file__).parent / "fixtures"


def test_frozen_v1_0_fixture_reads_with_its_exact_values(tmp_path):
    path = tmp_path / "v1.0.h5"
    path.write_bytes((FIXTURES / "v1.0.h5").read_bytes())
    with open_dataset(path) as f:  # a 1.x reader reads every 1.y as it is
        assert f.version == (1, 0) and f.targets == ["electron_density"] and len(f) == 2
    assert upgrade_file(path) == [(1, 0), (1, 1)]
    with open_dataset(path) as f:
        assert f.version == (1, 1) and f.extra_targets == []
        assert len(f) == 2
        assert f.provenance.producer == "rho-data fixture"
        assert f.basis["H"].n_radial == (2, 1) and f.basis["O"].n_radial == (1, 1, 1)
        assert f.basis["H"].gaussians[1].exponents == (0.3, 0.1)
        water, box = f[0], f[1]
        assert water.label == "water" and water.numbers.tolist() == [8, 1, 1]
        np.testing.assert_array_equal(water.coefficients, np.arange(1, 20) / 10.0)
        assert water.metadata == {"energy": -76.25, "scf_converged": 1.0}
        np.testing.assert_allclose(water.overlap.matvec(water.coefficients), water.projections, rtol=1e-12)
        assert box.pbc.tolist() == [True] * 3 and box.cell[0, 0] == 4.0
        np.testing.assert_array_equal(box.overlap.to_dense(), np.eye(10))


def write_version(path: Path, version) -> None:
    path.write_bytes((FIXTURES / "v1.0.h5").read_bytes())
    with h5py.File(path, "r+") as h5:
        h5.attrs["schema_version"] = np.array(version)


def test_newer_major_version_is_refused_naming_both_versions(tmp_path):
    path = tmp_path / "future.h5"
    write_version(path, [2, 3])
    with pytest.raises(RhoDataError) as info:
        open_dataset(path)
    message = str(info.value)
    assert str(path) in message and "2.3" in message and f"{SCHEMA_VERSION[0]}.{SCHEMA_VERSION[1]}" in message
    with pytest.raises(RhoDataError, match="newer than"):
        upgrade_file(path)


def test_upgrade_chain_runs_each_step_once(tmp_path, monkeypatch):
    """A fake older version 1.-1 with one registered step shows the chain mechanics."""
    calls = []

    def step(h5):
        calls.append(dict(h5.attrs))
        h5.attrs["upgraded_by_test"] = True

    monkeypatch.setitem(UPGRADES, (1, -1), (SCHEMA_VERSION, step))
    path = tmp_path / "old.h5"
    write_version(path, [1, -1])
    assert upgrade_path((1, -1)) == [(1, -1), SCHEMA_VERSION]
    assert upgrade_file(path) == [(1, -1), SCHEMA_VERSION]
    assert len(calls) == 1
    with h5py.File(path, "r") as h5:
        assert tuple(h5.attrs["schema_version"]) == SCHEMA_VERSION and h5.attrs["upgraded_by_test"]


def test_unknown_old_version_has_no_upgrade(tmp_path):
    with pytest.raises(RhoDataError, match="no upgrade is known from schema version 1.-2"):
        upgrade_path((1, -2))


def test_frozen_v1_1_fixture_with_further_targets(tmp_path):
    path = tmp_path / "v1.1.h5"
    path.write_bytes((FIXTURES / "v1.1.h5").read_bytes())
    assert upgrade_file(path) == [(1, 1)]
    with open_dataset(path) as f:
        assert f.version == (1, 1) and f.targets == ["electron_density", "homo", "ildos:-1:0"]
        n = 19
        homo = np.linspace(-1.0, 1.0, n)
        np.testing.assert_array_equal(f.coefficients(0), np.arange(1, n + 1) / 10.0)
        np.testing.assert_array_equal(f.coefficients(0, "homo"), homo)
        np.testing.assert_array_equal(f.coefficients(0, "ildos:-1:0"), 2 * homo)
        np.testing.assert_allclose(f.overlap(0).matvec(homo), f.projections(0, "homo"), rtol=1e-12)
        assert f.metadata(0) == {"energy": -76.25, "field_integral@homo": 1.0}
        s = f[0]
        np.testing.assert_array_equal(s.targets["homo"].coefficients, homo)
