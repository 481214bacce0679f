"""Charge and spin: validated against each structure's electron count, and read per structure
from extxyz info keys (charge, spin = 2S, multiplicity = 2S + 1) over the run's settings."""

import numpy as np
import pytest
from conftest import FAST
from typer.testing import CliRunner

from pyscf_io.cli import app
from pyscf_io.compute import check_structure
from pyscf_io.config import load_settings
from pyscf_io.context import RunContext
from pyscf_io.errors import PyscfIoError
from pyscf_io.geometry import InputStructure, charge_and_spin, read_structures
from rho_data import open_dataset
from rho_data.field_builders import FieldRequest, load_field_builder

runner = CliRunner()
FAST_ARGS = ["--basis", "sto-3g", "--aux-basis", "def2-universal-jkfit", "--grid-level", "1", "-q"]
WATER = ((0.0, 0.0, 0.1173), (0.0, 0.7572, -0.4692), (0.0, -0.7572, -0.4692))
OH = ((0.0, 0.0, 0.0), (0.0, 0.0, 0.97))
H2 = ((0.0, 0.0, 0.0), (0.0, 0.0, 0.74))


@pytest.mark.parametrize(
    ("numbers", "positions", "settings", "own", "message"),
    [
        ((1, 1), H2, {"charge": 2}, None, r"charge 2 \(the settings' charge/spin\) leaves 0 electrons"),
        ((1, 1), H2, {"spin": 4}, None, "2 electrons cannot have spin 2S = 4"),
        ((8, 1, 1), WATER, {"charge": 1}, None, "9 electrons cannot have spin 2S = 0"),
        ((8, 1, 1), WATER, {"spin": 1}, None, "10 electrons cannot have spin 2S = 1"),
        ((8, 1, 1), WATER, {}, (1, None), r"9 electrons cannot have spin 2S = 0 \(the structure's charge/spin"),
        ((8, 1), OH, {"spin": 1}, (-1, None), "10 electrons cannot have spin 2S = 1"),
        ((1, 1), H2, {}, (None, 3), "2 electrons cannot have spin 2S = 3"),
        ((8, 1), OH, {"charge": 5}, (None, 1), "4 electrons cannot have spin 2S = 1"),
    ],
)
def test_charge_and_spin_must_fit_the_electron_count(numbers, positions, settings, own, message):
    ctx = RunContext.build(load_settings(overrides={**FAST, **settings}), {1, 8})
    charge, spin = own if own is not None else (None, None)
    with pytest.raises(PyscfIoError, match=message):
        check_structure(InputStructure("f.xyz", 0, "x", numbers, positions, charge, spin), ctx)


@pytest.mark.parametrize(
    ("numbers", "positions", "settings", "own"),
    [
        ((8, 1, 1), WATER, {"charge": 1, "spin": 1}, None),
        ((8, 1), OH, {}, (-1, None)),
        ((8, 1), OH, {"charge": 1}, (None, 0)),  # the settings' charge with the structure's spin
        ((8, 1), OH, {"spin": 3}, (0, 1)),
    ],
)
def test_allowed_charge_and_spin(numbers, positions, settings, own):
    ctx = RunContext.build(load_settings(overrides={**FAST, **settings}), {1, 8})
    check_structure(
        InputStructure("f.xyz", 0, "x", numbers, positions, *own) if own else InputStructure("f.xyz", 0, "x", numbers, positions),
        ctx,
    )


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        ({}, (None, None)),
        ({"charge": -1}, (-1, None)),
        ({"charge": np.int64(2), "spin": 0}, (2, 0)),
        ({"multiplicity": 3}, (None, 2)),
        ({"spin": 1.0, "multiplicity": 2}, (None, 1)),
    ],
)
def test_info_keys(info, expected):
    assert charge_and_spin(info) == expected


@pytest.mark.parametrize(
    ("info", "message"),
    [
        ({"charge": 0.5}, "'charge' must be an integer, got 0.5"),
        ({"charge": True}, "'charge' must be an integer"),
        ({"spin": "high"}, "'spin' must be an integer"),
        ({"spin": -1}, "'spin' \\(2S\\) must be >= 0"),
        ({"multiplicity": 0}, "'multiplicity' \\(2S \\+ 1\\) must be >= 1"),
        ({"spin": 1, "multiplicity": 3}, "disagree"),
    ],
)
def test_bad_info_keys(info, message):
    with pytest.raises(ValueError, match=message):
        charge_and_spin(info)


def extxyz(path, frames):
    text = ""
    for comment, symbols, positions in frames:
        text += f"{len(symbols)}\n{comment}\n" + "".join(f"{s} {x} {y} {z}\n" for s, (x, y, z) in zip(symbols, positions))
    path.write_text(text)
    return path


def test_read_structures_takes_charge_and_spin_from_info(tmp_path):
    path = extxyz(
        tmp_path / "ions.xyz",
        [
            ('label="water"', "OHH", WATER),
            ('label="hydroxide" charge=-1', "OH", OH),
            ('label="hydroxyl" multiplicity=2', "OH", OH),
            ('label="half" charge=0.5', "OH", OH),
            ('label="both" spin=1 multiplicity=3', "OH", OH),
        ],
    )
    found, problems = read_structures(path)
    assert [(s.label, s.charge, s.spin) for s in found] == [("water", None, None), ("hydroxide", -1, None), ("hydroxyl", None, 1)]
    assert [p.message for p in problems] == [
        "structure 3: info key 'charge' must be an integer, got 0.5",
        "structure 4: info keys 'spin' = 1 (2S) and 'multiplicity' = 3 (2S + 1) disagree",
    ]
    assert InputStructure.from_json(found[2].to_json()) == found[2]


def test_per_structure_charge_and_spin_through_the_cli(tmp_path):
    path = extxyz(
        tmp_path / "ions.xyz",
        [
            ('label="water"', "OHH", WATER),
            ('label="hydroxide" charge=-1', "OH", OH),
            ('label="hydroxyl" multiplicity=2', "OH", OH),
            ('label="cation" charge=1 spin=1', "OHH", WATER),
            ('label="stripped" charge=2', "HH", H2),
            ('label="half" charge=0.5', "OH", OH),
        ],
    )
    out = tmp_path / "d.h5"
    result = runner.invoke(app, ["run", str(path), "-o", str(out), *FAST_ARGS])
    text = " ".join(result.output.split())
    assert result.exit_code == 1
    assert "ions.xyz: structure 4 (stripped): charge 2 (the structure's charge/spin) leaves 0 electrons" in text
    assert "ions.xyz: structure 5: info key 'charge' must be an integer, got 0.5" in text
    with open_dataset(out) as ds:
        assert ds.labels() == ["water", "hydroxide", "hydroxyl", "cation"]
        assert list(ds.metadata_column("charge")) == [0, -1, 0, 1]
        assert list(ds.metadata_column("spin")) == [0, 0, 1, 1]
        assert list(ds.metadata_column("n_electrons")) == [10, 10, 9, 9]
        assert (ds.metadata_column("scf_converged") == 1).all()
        builder = load_field_builder("pyscf-io")
        for i, (_, grid) in enumerate(builder.build(ds, [FieldRequest(i, {"ri": ds[i].coefficients}) for i in range(len(ds))])):
            n = ds.metadata_column("n_electrons")[i]
            assert grid.integrate("scf") == pytest.approx(n, abs=2e-3)
            assert grid.integrate("ri") == pytest.approx(n, abs=2e-2)
