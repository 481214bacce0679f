"""A Python API for notebooks: one structure's predicted density, on points or on a grid, and its metrics.

``dataset`` is a rho-data dataset (a path, or a file opened with :func:`rho_data.open_dataset`),
``index`` a structure of it, ``coefficients`` a vector in the canonical order of its auxiliary
basis: rho(r) = sum_b d_b phi_b(r). The fields are rebuilt by the dataset producer's field
builder (found like ``rho-eval`` finds it, or passed as ``builder=``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from rho_data import Grid, RhoFile, open_dataset
from rho_data.field_builders import FieldRequest

from .backends import builder_factory, points_capable
from .errors import RhoEvalError
from .gridmatch import merge_grids
from .metrics import coefficient_error_scale, coefficient_squared_error, consistency_difference, structure_metrics
from .properties import species_mean, structure_properties


@contextlib.contextmanager
def _opened(dataset: str | Path | RhoFile) -> Iterator[RhoFile]:
    if isinstance(dataset, RhoFile):
        yield dataset
    else:
        with open_dataset(dataset) as ds:
            yield ds


def _checked(ds: RhoFile, index: int, coefficients: Any) -> np.ndarray:
    if not 0 <= int(index) < len(ds):
        raise RhoEvalError(f"structure {index} is not in the dataset ({len(ds)} structures)", path=ds.path)
    c = np.asarray(coefficients, dtype=np.float64).reshape(-1)
    n = ds.basis.n_functions(ds.numbers(int(index)))
    if c.size != n:
        raise RhoEvalError(f"{c.size} coefficients given, the structure's basis has {n}", path=ds.path, structure=int(index))
    if not np.isfinite(c).all():
        raise RhoEvalError("the coefficients hold NaN or infinite values", path=ds.path, structure=int(index))
    return c


def _builder(ds: RhoFile, builder: Any) -> Any:
    return builder if builder is not None else builder_factory(ds)()


def density_on_points(dataset: str | Path | RhoFile, index: int, coefficients: Any, points_bohr: Any, *, builder: Any = None) -> np.ndarray:
    """rho(r_k) = sum_b d_b phi_b(r_k) at ``points_bohr`` ((n, 3), bohr), through the backend's ``build_on_points``."""
    with _opened(dataset) as ds:
        c = _checked(ds, index, coefficients)
        b = _builder(ds, builder)
        method = points_capable(b, ds.provenance.producer, "densities at points")
        points = np.asarray(points_bohr, dtype=np.float64).reshape(-1, 3)
        return np.asarray(method(ds, FieldRequest(index=int(index), coefficients={"pred": c}), points)["pred"])


def density_on_grid(dataset: str | Path | RhoFile, index: int, coefficients: Any, *, builder: Any = None) -> Grid:
    """The backend's integration grid (points r_k in bohr, weights w_k, integral f ~ sum_k w_k f(r_k))
    with fields ``"pred"`` (the given coefficients), ``"ri"`` (the dataset's) and ``"scf"`` (when the backend has it)."""
    with _opened(dataset) as ds:
        c = _checked(ds, index, coefficients)
        b = _builder(ds, builder)
        request = FieldRequest(index=int(index), coefficients={"pred": c, "ri": ds.coefficients(int(index))})
        grids = [grid for _, grid in b.build(ds, [request])]
        if not grids:
            raise RhoEvalError("the field builder returned no grid", path=ds.path, structure=int(index))
        return merge_grids(grids, 1e-5)


def evaluate(
    dataset: str | Path | RhoFile, index: int, coefficients: Any, *, builder: Any = None, reference_indices: Iterable[int] | None = None
) -> dict[str, float]:
    """The metrics ``rho-eval`` reports for one structure (keys as the metrics.csv columns):

    - ``nmae_<ref>_percent`` = 100 integral |rho - rho_ref| / integral rho_ref and ``squared_error_<ref>`` =
      integral (rho - rho_ref)^2 on the grid, ref = ri, scf;
    - ``squared_error_coef_ri`` = dc^T S dc (dc = d - d_RI) and ``coef_grid_rel_diff`` (its agreement with the grid);
    - ``rmse_coef_ri_percent`` = 100 sqrt(dc^T S dc / (d_RI - cbar)^T S (d_RI - cbar)), cbar the species-averaged
      l = 0 RI coefficients over ``reference_indices`` (default: every structure of the dataset);
    - ``n_electrons_coef_pred``, ``dipole_*_debye``, ``*_error_*_kcal_mol`` (see :mod:`rho_eval.properties`;
      NaN where the basis or backend cannot give them).
    """
    with _opened(dataset) as ds:
        c = _checked(ds, index, coefficients)
        b = _builder(ds, builder)
        s = ds[int(index)]
        grid = density_on_grid(ds, index, c, builder=b)
        out = structure_metrics(grid, "pred", ("ri", "scf"))
        if s.overlap is not None:
            out["squared_error_coef_ri"] = coefficient_squared_error(s.overlap, c, s.coefficients)
            scale = coefficient_error_scale(s.overlap, c, s.coefficients)
            out["coef_grid_rel_diff"] = consistency_difference(out["squared_error_ri"], out["squared_error_coef_ri"], scale)
        cbar = species_mean(ds, range(len(ds)) if reference_indices is None else reference_indices)
        out.update(structure_properties(ds, int(index), s, {"ri": s.coefficients, "ml": c}, "ml", ("ri", "scf"), b, cbar))
        return out
