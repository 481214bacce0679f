"""Per-column reads on RhoFile: each reads only the columns it names and agrees with f[i]."""

from __future__ import annotations

import numpy as np
import pytest

from rho_data import PARTS, RhoDataError, Structure, create_dataset, create_grids, create_predictions, open_file
from rho_data.records import Grid


def spy_columns(f, monkeypatch) -> list[str]:
    """Record the column names every read of ``f`` asks the store for."""
    asked: list[str] = []
    read = f.store.read

    def recording(i, names=None):
        asked.extend(names if names is not None else f.store.columns)
        return read(i, names)

    monkeypatch.setattr(f.store, "read", recording)
    return asked


def test_column_reads_agree_with_whole_structures(dataset_path, structures):
    with open_file(dataset_path) as f:
        for i, s in enumerate(structures):
            whole = f[i]
            g = f.geometry(i)
            np.testing.assert_array_equal(g.numbers, s.numbers)
            np.testing.assert_array_equal(g.positions, s.positions)
            assert g.label == s.label and g.coefficients is None and g.overlap is None and g.metadata == {}
            np.testing.assert_array_equal(f.numbers(i), s.numbers)
            np.testing.assert_array_equal(f.coefficients(i), s.coefficients)
            np.testing.assert_array_equal(f.projections(i), s.projections)
            np.testing.assert_array_equal(f.overlap(i).values, whole.overlap.values)
            np.testing.assert_array_equal(f.overlap(i).pairs, whole.overlap.pairs)
            assert f.metadata(i) == s.metadata == whole.metadata
        assert [g.label for g in f.geometries()] == [s.label for s in structures]
        for got, s in zip(f.geometries(), structures):
            np.testing.assert_array_equal(got.positions, s.positions)
            np.testing.assert_array_equal(got.cell, s.cell)
        assert [g.label for g in f.geometries([3, 0])] == ["mol3", "mol0"]
        many = f.coefficients_many([4, 1])
        np.testing.assert_array_equal(many[0], structures[4].coefficients)
        np.testing.assert_array_equal(many[1], structures[1].coefficients)
        pair = f.read_many([2, 2], ("coefficients", "metadata"))
        assert pair[0].overlap is None and pair[0].projections is None and pair[1].metadata == structures[2].metadata


def test_geometry_reads_no_overlap_or_coefficients(dataset_path, monkeypatch):
    with open_file(dataset_path) as f:
        asked = spy_columns(f, monkeypatch)
        f.geometry(2)
        assert set(asked) == {"numbers", "positions", "cell", "pbc", "label"}
        asked.clear()
        f.coefficients(2)
        assert asked == ["coefficients"]
        asked.clear()
        f.projections(2)  # stored: the overlap is not read
        assert asked == ["projections"]


def test_projections_fall_back_to_overlap_times_coefficients(tmp_path, basis, structures):
    path = tmp_path / "noproj.h5"
    with create_dataset(path, basis, projections=False) as w:
        for s in structures:
            w.append(s)
    with open_file(path) as f:
        assert not f.has_projections
        for i, s in enumerate(structures):
            np.testing.assert_allclose(f.projections(i), s.projections, rtol=1e-12, atol=1e-12)


def test_reads_of_columns_a_kind_lacks_name_the_file(tmp_path, dataset_path, structures, basis):
    path = tmp_path / "p.h5"
    with create_predictions(path, basis, dataset_id="x") as w:
        for i, s in enumerate(structures[:2]):
            w.append(Structure(s.numbers, s.positions, label=s.label, coefficients=s.coefficients, dataset_index=3 - i))
    with open_file(path) as f:
        assert f.dataset_index(1) == 2
        np.testing.assert_array_equal(f.dataset_indices(), [3, 2])
        assert f.metadata(0) == {}
        with pytest.raises(RhoDataError, match=r"p\.h5: this 'predictions' file stores no overlap"):
            f.overlap(0)
        with pytest.raises(ValueError, match="unknown structure parts"):
            f.read(0, ("geometry", "colour"))
    with open_file(dataset_path) as f, pytest.raises(RhoDataError, match="stores no dataset index"):
        f.dataset_index(0)


def test_grid_part(tmp_path):
    path = tmp_path / "g.h5"
    with create_grids(path, ["rho"]) as w:
        w.append(Structure([1], [[0.0, 0.0, 0.0]], grid=Grid(np.zeros((2, 3)), np.ones(2), {"rho": np.ones(2)}), dataset_index=4))
    with open_file(path) as f:
        s = f.read(0, ("grid",))
        assert s.grid is not None and s.grid.integrate("rho") == 2.0 and s.dataset_index == -1
        assert set(PARTS) >= {"geometry", "grid"} and f.read(0, ()).grid is None
        with pytest.raises(RhoDataError, match="stores no coefficients"):
            f.coefficients(0)
