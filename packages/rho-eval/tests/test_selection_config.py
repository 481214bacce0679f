"""Subset selection and settings (defaults -> YAML -> command line, unknown keys refused)."""

import pytest

from rho_eval import RhoEvalError, load_settings
from rho_eval.config import parse_backend_options
from rho_eval.selection import parse_selection


def test_selection():
    assert parse_selection(None, 4) == [0, 1, 2, 3]
    assert parse_selection("0:2, 3, -1, 1", 5) == [0, 1, 3, 4]
    assert parse_selection("::2", 5) == [0, 2, 4]
    for bad in ("7", "a", "1:2:3:4", "5:9"):
        with pytest.raises(RhoEvalError, match="selection"):
            parse_selection(bad, 5)


def test_settings_layers(tmp_path):
    path = tmp_path / "eval.yaml"
    path.write_text("workers: 3\nbackend: {grid_level: 2}\nselect: '0:10'\n")
    s = load_settings(path, {"workers": 2, "select": None, "backend": {"batch": 4}})
    assert s.workers == 2 and s.select == "0:10" and s.backend == {"grid_level": 2, "batch": 4}
    assert s.chunk_size == 4  # default kept


def test_unknown_or_bad_settings_are_errors(tmp_path):
    path = tmp_path / "eval.yaml"
    path.write_text("wokers: 3\n")
    with pytest.raises(RhoEvalError, match=r"unknown setting\(s\) \['wokers'\]"):
        load_settings(path)
    with pytest.raises(RhoEvalError, match="positive"):
        load_settings(None, {"workers": 0})
    with pytest.raises(RhoEvalError, match="not found"):
        load_settings(tmp_path / "missing.yaml")
    path.write_text("[1, 2]\n")
    with pytest.raises(RhoEvalError, match="mapping"):
        load_settings(path)


def test_backend_options():
    assert parse_backend_options(["grid_level=3", "xc=pbe", "slurm=true"]) == {"grid_level": 3, "xc": "pbe", "slurm": True}
    with pytest.raises(RhoEvalError, match="key=value"):
        parse_backend_options(["oops"])
