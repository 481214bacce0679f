import numpy as np
import pytest
from conftest import FIXTURES, need

from aims_io.control import control_text, read_keywords
from aims_io.errors import AimsIOError
from aims_io.geometry import Geometry, geometry_text, read_geometry, write_geometry
from aims_io.settings import load_settings, merge_into


@pytest.fixture
def settings():
    return load_settings([], [f"dft.species_defaults={need(FIXTURES / 'species_defaults' / 'tight')}"])


def test_geometry_molecule_and_ghost_roundtrip(tmp_path):
    g = Geometry([6, 1, 1], [[0, 0, 0], [1.09, 0, 0], [0, 1.09, 0]], ghost=[False, False, True])
    write_geometry(g, tmp_path / "geometry.in")
    text = (tmp_path / "geometry.in").read_text()
    assert "lattice_vector" not in text
    assert "empty 0.0000000000 1.0900000000 0.0000000000 H" in text
    back = read_geometry(tmp_path / "geometry.in")
    np.testing.assert_array_equal(back.numbers, [6, 1, 1])
    np.testing.assert_allclose(back.positions, g.positions)
    assert back.ghost.tolist() == [False, False, True] and not back.pbc.any()


def test_geometry_periodic(tmp_path):
    cell = np.diag([3.0, 4.0, 5.0])
    g = Geometry([14, 14], [[0, 0, 0], [1.0, 1.0, 1.0]], cell, [True, True, True])
    write_geometry(g, tmp_path / "geometry.in")
    assert (tmp_path / "geometry.in").read_text().count("lattice_vector") == 3
    back = read_geometry(tmp_path / "geometry.in")
    np.testing.assert_allclose(back.cell, cell)
    assert back.pbc.all()
    with pytest.raises(AimsIOError, match="all 3 directions or none"):
        geometry_text(Geometry([1], [[0, 0, 0]], cell, [True, True, False]))


def test_read_real_fixture_geometry():
    g = read_geometry(need(FIXTURES / "qm7-0-CH4" / "geometry.in"))
    assert g.symbols == ["C", "H", "H", "H", "H"]


@pytest.mark.parametrize(
    "stage, present, absent",
    [
        ("scf", ["elsi_restart             write 1000"], ["ri_skip_scf", "ri_density_restart"]),
        (
            "ri",
            [
                "elsi_restart             read",
                "ri_skip_scf              .true.",
                "ri_density_restart       write",
                "ri_full_output           .true.",
                "ri_ovlp_write_triu       .true.",
                "default_prodbas_acc      1e-05",
            ],
            ["write 1000", "default_max_l_prodbas"],
        ),
        (
            "rebuild",
            ["ri_density_restart       read 0", "ri_full_output           .true.", "default_prodbas_acc      1e-05"],
            ["ri_skip_scf", "elsi_restart"],
        ),
    ],
)
def test_control_stages(settings, stage, present, absent):
    g = read_geometry(need(FIXTURES / "qm7-0-CH4" / "geometry.in"))
    text = control_text(stage, settings["dft"], g)
    for line in present + [
        "xc                       pbe0",
        "relativistic             atomic_zora scalar",
        "charge                   0.0",
    ]:
        assert line in text.splitlines(), line
    for word in absent:
        assert word not in text
    # species defaults of C then H, once each, appended after the keywords
    assert text.count("species        H") == 1 and text.count("species        C") == 1
    assert text.index("species        H") < text.index("species        C")  # by atomic number
    assert read_keywords_from_text(text)["xc"] == "pbe0"


def read_keywords_from_text(text, tmp=None):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "control.in"
        p.write_text(text)
        return read_keywords(p)


def test_control_options(settings):
    g = Geometry([1, 1], [[0, 0, 0], [0.74, 0, 0]])
    s = merge_into(
        settings,
        {"dft": {"default_max_l_prodbas": 5, "cube": True, "charge": 1, "extra_keywords": {"occupation_type": "gaussian 0.01"}}},
    )
    text = control_text("ri", s["dft"], g)
    assert "default_max_l_prodbas    5" in text and "charge                   1.0" in text
    assert "output cube total_density" in text and text.count("cube edge 100") == 3
    assert "occupation_type          gaussian 0.01" in text


@pytest.mark.parametrize(
    "update",
    [
        {"dft": {"xc": "pbe\nri_skip_scf .true."}},
        {"dft": {"xc": "pbe # comment"}},
        {"dft": {"extra_keywords": {"bad key": 1}}},
        {"dft": {"extra_keywords": {"k": "a;b"}}},
    ],
)
def test_control_refuses_unsafe_values(settings, update):
    with pytest.raises(AimsIOError):
        merge_into(settings, update)


def test_missing_species_file(tmp_path):
    s = load_settings([], [f"dft.species_defaults={tmp_path}"])
    with pytest.raises(AimsIOError, match="no species file 01_H_default"):
        control_text("scf", s["dft"], Geometry([1], [[0, 0, 0]]))
    s = load_settings([])
    with pytest.raises(AimsIOError, match="species_defaults' is not set"):
        control_text("scf", s["dft"], Geometry([1], [[0, 0, 0]]))
