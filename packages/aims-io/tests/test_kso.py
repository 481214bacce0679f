"""ks_orbital_info.out -> ks_orbital_weights.in (aims_io.kso)."""

import numpy as np
import pytest

from aims_io.errors import AimsIOError
from aims_io.kso import WEIGHTS_FILE, read_orbital_info, write_orbital_weights

# water-like, spin none, one k-point: 5 occupied and 3 empty states; states 4 and 5 degenerate
ROWS = [
    (1, 1, 1, 1, 1.0, 2.0, -510.0),
    (2, 2, 1, 1, 1.0, 2.0, -25.0),
    (3, 3, 1, 1, 1.0, 2.0, -13.0),
    (4, 4, 1, 1, 1.0, 2.0, -7.20),
    (5, 5, 1, 1, 1.0, 2.0, -7.20),
    (6, 6, 1, 1, 1.0, 0.0, 1.1),
    (7, 7, 1, 1, 1.0, 0.0, 3.0),
    (8, 8, 1, 1, 1.0, 0.0, 5.5),
]


def write_info(directory, rows=ROWS, name="ks_orbital_info.out"):
    (directory / name).write_text("".join(" ".join(str(v) for v in row) + "\n" for row in rows))


def weights_of(directory):
    return np.array([float(line) for line in (directory / WEIGHTS_FILE).read_text().split()])


def test_density_and_frontier_weights(tmp_path):
    write_info(tmp_path)
    assert write_orbital_weights(tmp_path, tmp_path, "density") == pytest.approx(10.0)
    np.testing.assert_array_equal(weights_of(tmp_path), [2, 2, 2, 2, 2, 0, 0, 0])
    assert write_orbital_weights(tmp_path, tmp_path, "homo") == pytest.approx(2.0)  # the degenerate pair
    np.testing.assert_array_equal(weights_of(tmp_path), [0, 0, 0, 1, 1, 0, 0, 0])
    write_orbital_weights(tmp_path, tmp_path, "lumo+1")
    np.testing.assert_array_equal(weights_of(tmp_path), [0, 0, 0, 0, 0, 0, 1, 0])
    # 7.2 eV below the HOMO down to 0: the HOMO pair and state 3 (2 spins each)
    assert write_orbital_weights(tmp_path, tmp_path, "ildos:-6:0") == pytest.approx(6.0)


def test_spin_channels_and_k_points_in_row_order(tmp_path):
    rows = []
    for spin in (1, 2):
        for k, kw in ((1, 0.25), (2, 0.75)):
            for state, (occ, e) in enumerate(((1.0, -9.0), (1.0 if spin == 1 else 0.0, -4.0 - k)), start=1):
                rows.append([len(rows) + 1, state, spin, k, kw, occ, e])
    write_info(tmp_path, rows, name="eigenstate_info.out")
    info = read_orbital_info(tmp_path / "eigenstate_info.out")
    assert info.states.energies.shape == (2, 2, 2)
    assert write_orbital_weights(tmp_path, tmp_path, "spin_density") == pytest.approx(1.0)
    w = weights_of(tmp_path)
    np.testing.assert_allclose(w, [0.25, 0.25, 0.75, 0.75, -0.25, 0, -0.75, 0])


def test_bad_files_and_fields(tmp_path):
    with pytest.raises(AimsIOError, match="ri_fit_write_orbital_info"):
        write_orbital_weights(tmp_path, tmp_path, "homo")
    write_info(tmp_path, ROWS[:3] + ROWS[4:])
    with pytest.raises(AimsIOError, match="in order"):
        write_orbital_weights(tmp_path, tmp_path, "homo")
    write_info(tmp_path)
    with pytest.raises(AimsIOError, match="only 3 unoccupied"):
        write_orbital_weights(tmp_path, tmp_path, "lumo+3")
    with pytest.raises(AimsIOError, match="restricted"):
        write_orbital_weights(tmp_path, tmp_path, "spin_density")
    assert not (tmp_path / WEIGHTS_FILE).exists()
