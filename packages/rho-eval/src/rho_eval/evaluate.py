"""The evaluation core: rebuild fields for chunks of structures and measure their errors.

A *plan* says what is compared: in ``predictions`` mode the predicted density ("ml") against
the RI density ("ri", the dataset's fitted coefficients) and the SCF density ("scf", when
the backend provides it); in ``fit-only`` mode the RI density against the SCF density (the
error of the auxiliary basis itself, which no model can beat). Chunks run in this process or
in worker processes (:func:`rho_data.worker_pool.worker_pool`: spawned, one BLAS/OpenMP
thread each, gone when this process is killed).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rho_data import RhoDataError, open_dataset, open_predictions
from rho_data.elements import symbol
from rho_data.field_builders import FieldRequest
from rho_data.orbital_fields import DENSITY_TARGET, nmae_normalisation, parse_field
from rho_data.worker_pool import worker_pool
from rho_data.yaml_input import short_repr

from .backends import BuilderFactory
from .errors import RhoEvalError
from .gridmatch import merge_grids
from .metrics import coefficient_error_scale, coefficient_squared_error, consistency_difference, structure_metrics
from .properties import property_columns, structure_properties

PREDICTED, RI, SCF = "ml", "ri", "scf"


@dataclass(frozen=True)
class Plan:
    """What one evaluation compares; ``predictions`` is None for a fit-only run over the dataset."""

    reference: Path
    predictions: Path | None
    fit_only: bool
    grid_tolerance_bohr: float = 1e-5
    species_mean: tuple[tuple[int, tuple[float, ...]], ...] = ()
    """cbar of SALTED's %RMSE: (atomic number, element-sized mean vector) pairs; empty in fit-only runs."""
    target: str = DENSITY_TARGET
    """The dataset target compared (its RI coefficients and SCF-level field)."""

    @property
    def is_density(self) -> bool:
        return parse_field(self.target).kind == "density"

    @property
    def normalisation(self) -> str:
        """%NMAE divides by the integral of rho_ref (density) or of |rho_ref| (other fields)."""
        return nmae_normalisation(self.target)

    @property
    def predicted(self) -> str:
        return RI if self.fit_only else PREDICTED

    @property
    def references(self) -> tuple[str, ...]:
        return (SCF,) if self.fit_only else (RI, SCF)


def formula(numbers: np.ndarray) -> str:
    """Hill formula (C, H, then the rest alphabetically)."""
    counts = Counter(symbol(int(z)) for z in numbers)
    if "C" in counts:
        order = ["C"] + (["H"] if "H" in counts else []) + sorted(s for s in counts if s not in ("C", "H"))
    else:
        order = sorted(counts)
    return "".join(f"{s}{counts[s] if counts[s] > 1 else ''}" for s in order)


def evaluate_chunk(plan: Plan, factory: BuilderFactory, pairs: Sequence[tuple[int, int]]) -> list[dict]:
    """Metrics of each (row, dataset_index) pair; rows index the predictions (or the dataset)."""
    builder = factory()
    with contextlib.ExitStack() as stack:
        ds = stack.enter_context(open_dataset(plan.reference))
        preds = stack.enter_context(open_predictions(plan.predictions)) if plan.predictions and not plan.fit_only else None
        structures, requests = {}, []
        for row, index in pairs:
            s = ds[index]
            coefficients = {RI: ds.coefficients(index, plan.target)}
            if preds is not None:
                coefficients[PREDICTED] = preds.coefficients(row)
            structures[index] = (row, s, coefficients)
            requests.append(FieldRequest(index=index, coefficients=coefficients, target=plan.target))
        grids: dict[int, list] = {index: [] for _, index in pairs}
        try:
            for request, grid in builder.build(ds, requests):
                if request.index not in grids:
                    raise RhoEvalError(f"the field builder returned a grid for structure {request.index}, which was not requested", path=ds.path)
                grids[request.index].append(grid)
        except RhoDataError:
            raise
        except (TypeError, ValueError, ArithmeticError) as err:  # most often a backend option of the wrong type
            options = getattr(factory, "keywords", None) or {}
            shown = ", ".join(f"{k}={short_repr(v, 40)}" for k, v in list(options.items())[:8]) or "none"
            reason = " ".join(str(err).split())[:200]
            raise RhoEvalError(
                f"the field builder failed on structures {[i for _, i in pairs]} (backend options: {shown}): {type(err).__name__}: {reason}",
                path=ds.path,
            ) from None
        records = []
        at = "" if plan.target == ds.target else f"@{plan.target}"  # metadata names of a further target
        for _, index in pairs:
            row, s, coefficients = structures[index]
            if not grids[index]:
                raise RhoEvalError("the field builder returned no grid (missing grid files?)", path=ds.path, structure=index)
            try:
                grid = merge_grids(grids[index], plan.grid_tolerance_bohr)
                for name in coefficients:
                    if name not in grid.values:
                        raise RhoEvalError(f"the field builder returned no '{name}' field")
                for name, values in [("grid weights", grid.weights), *((f"field '{k}'", v) for k, v in grid.values.items())]:
                    if not np.all(np.isfinite(values)):
                        raise RhoEvalError(f"the field builder returned non-finite {name} ({s.label or 'no label'})")
                if s.overlap is not None and not np.all(np.isfinite(s.overlap.values)):
                    raise RhoEvalError("the reference overlap holds non-finite values")
                metrics = structure_metrics(grid, plan.predicted, plan.references, plan.normalisation)
                computed = ["n_electrons_pred"] + [
                    f"{m}_{ref}{tail}"
                    for ref in plan.references
                    if ref in grid.values
                    for m, tail in (("abs_error", ""), ("norm", ""), ("nmae", "_percent"), ("squared_error", ""))
                ]
                wrong = [k for k in computed if not np.isfinite(metrics[k])]
                if wrong:
                    raise RhoEvalError(f"non-finite metrics {wrong} (a zero reference norm?)")
            except RhoEvalError as err:
                raise RhoEvalError(str(err), path=ds.path, structure=index) from None
            record = {
                "row": row,
                "dataset_index": index,
                "label": s.label,
                "formula": formula(s.numbers),
                "n_atoms": s.n_atoms,
                "n_grid_points": len(grid.weights),
                "n_electrons": s.metadata.get("n_electrons" if plan.is_density else f"field_integral{at}", float("nan")),
                **metrics,
            }
            if not plan.fit_only:
                if s.overlap is not None:
                    coef = coefficient_squared_error(s.overlap, coefficients[PREDICTED], coefficients[RI])
                    if not np.isfinite(coef):
                        raise RhoEvalError("non-finite coefficient-space squared error", path=ds.path, structure=index)
                    record["squared_error_coef_ri"] = coef
                    scale = coefficient_error_scale(s.overlap, coefficients[PREDICTED], coefficients[RI])
                    record["coef_grid_rel_diff"] = consistency_difference(metrics["squared_error_ri"], coef, scale)
                else:
                    record["squared_error_coef_ri"] = record["coef_grid_rel_diff"] = float("nan")
            record["stored_fit_nmae_percent"] = s.metadata.get(f"fit_nmae_percent{at}", float("nan"))
            cbar = {z: np.asarray(v) for z, v in plan.species_mean} if plan.species_mean else None
            if plan.is_density:
                record.update(structure_properties(ds, index, s, coefficients, plan.predicted, plan.references, builder, cbar))
            else:  # electron count, dipole and electrostatics are properties of the electron density only
                record.update(dict.fromkeys(property_columns(plan.references, cbar is not None), float("nan")))
            records.append(record)
    return records


def run_chunks(
    plan: Plan,
    factory: BuilderFactory,
    pairs: Sequence[tuple[int, int]],
    *,
    workers: int = 1,
    chunk_size: int = 4,
    on_records: Callable[[list[dict]], None] = lambda records: None,
) -> None:
    """Evaluate ``pairs`` in chunks of ``chunk_size``; ``on_records`` receives each finished chunk."""
    if workers < 1 or chunk_size < 1:
        raise RhoEvalError(f"workers and chunk_size must be >= 1, got {workers} and {chunk_size}")
    chunks = [list(pairs[k : k + chunk_size]) for k in range(0, len(pairs), chunk_size)]
    if workers == 1 or len(chunks) <= 1:
        for chunk in chunks:
            on_records(evaluate_chunk(plan, factory, chunk))
        return
    with worker_pool(min(workers, len(chunks))) as pool:
        pending = {pool.submit(evaluate_chunk, plan, factory, chunk) for chunk in chunks}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                on_records(future.result())
