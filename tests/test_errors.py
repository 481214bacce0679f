"""One error family: every package's user-facing error is a rho_data.RhoDataError."""

from __future__ import annotations

import importlib

import pytest

from rho_data import RhoDataError


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("pyscf_io.errors", "PyscfIoError"),
        ("pyscf_io.errors", "DiskFull"),
        ("aims_io.errors", "AimsIOError"),
        ("rho_model.errors", "RhoModelError"),
        ("rho_eval.errors", "RhoEvalError"),
        ("rho_data.jobscript", "JobScriptError"),
    ],
)
def test_package_errors_subclass_rho_data_error(module, name):
    error = getattr(importlib.import_module(module), name)
    assert issubclass(error, RhoDataError)
    assert str(error("bad value", path="x.h5")).startswith("x.h5: ")
