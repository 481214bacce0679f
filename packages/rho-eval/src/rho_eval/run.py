"""One evaluation from files to report: checks, resumable chunked evaluation, summary, plots, cubes."""

from __future__ import annotations

import contextlib
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from rho_data import RhoFile, open_dataset, open_predictions
from rho_data.cli_support import progress_bar
from rho_data.elements import symbol
from rho_data.layout import BatchLayout
from rich.console import Console

from . import __version__, plots
from .backends import BuilderFactory, builder_factory, points_capable
from .config import Settings
from .consistency import check_header, dataset_indices, evaluated_target, non_finite_coefficients
from .errors import RhoEvalError
from .evaluate import Plan, run_chunks
from .pictures import slice_plot, write_cubes
from .properties import PERIODIC_NOTE, backend_notes, species_mean
from .report import ResultsTable, columns_for, print_table, summarize, write_summary
from .selection import parse_selection


def coefficient_parity(
    dataset: RhoFile, predictions: RhoFile, pairs, max_points: int = 20000, seed: int = 0, target: str | None = None
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """RI and predicted coefficients grouped by l (a random subset of at most ``max_points`` per l)."""
    pairs = list(pairs)
    layout = BatchLayout.build(dataset.basis, [dataset.numbers(index) for _, index in pairs])
    flat_ref = np.concatenate([dataset.coefficients(index, target) for _, index in pairs]) if pairs else np.zeros(0)
    flat_pred = np.concatenate([predictions.coefficients(row) for row, _ in pairs]) if pairs else np.zeros(0)
    by_l: dict[int, list] = defaultdict(list)
    for (l, _), index in layout.index.items():
        by_l[l].append(index.reshape(-1))
    rng = np.random.default_rng(seed)
    out = {}
    for l in sorted(by_l):
        where = np.sort(np.concatenate(by_l[l]))  # file order: structure, atom, then n and m
        if not len(where):
            continue  # no atom of the evaluated structures has functions of this l
        ref, pred = flat_ref[where], flat_pred[where]
        if len(ref) > max_points:
            keep = rng.choice(len(ref), max_points, replace=False)
            ref, pred = ref[keep], pred[keep]
        out[l] = (ref, pred)
    return out


def _element_counts(dataset: RhoFile, indices) -> dict[str, dict[str, int]]:
    atoms: Counter = Counter()
    structures: Counter = Counter()
    for index in indices:
        numbers = dataset.numbers(index)
        atoms.update(symbol(int(z)) for z in numbers)
        structures.update({symbol(int(z)) for z in numbers})
    return {sym: {"atoms": atoms[sym], "structures": structures[sym]} for sym in sorted(atoms)}


def _cube_indices(spec: str | None, records: list[dict], key: str, pairs) -> list[tuple[int, int]]:
    if spec is None:
        return []
    if spec.strip() == "worst":
        worst = max(records, key=lambda r: np.nan_to_num(r[key], nan=-np.inf))
        return [(worst["row"], worst["dataset_index"])]
    by_index = {index: row for row, index in pairs}
    wanted = []
    for part in spec.split(","):
        try:
            index = int(part)
        except ValueError:
            raise RhoEvalError(f"cubes '{spec}': give dataset indices separated by commas, or 'worst'") from None
        if index not in by_index:
            raise RhoEvalError(f"cubes '{spec}': dataset structure {index} is not among the evaluated structures")
        wanted.append((by_index[index], index))
    return wanted


def evaluate_files(
    predictions_path: Path | None,
    reference_path: Path,
    output: Path,
    settings: Settings,
    *,
    factory: BuilderFactory | None = None,
    restart: bool = False,
    console: Console | None = None,
) -> dict[str, Any]:
    """Evaluate and write metrics.csv, summary.json, config.yaml, plots/ and cubes/ under ``output``.

    ``factory`` replaces the builder found from the dataset's producer (for tests and for
    programmatic use); it must be picklable for ``settings.workers > 1``.
    """
    console = console or Console()
    output = Path(output)
    if predictions_path is None and not settings.fit_only:
        raise RhoEvalError("give a predictions file, or --fit-only to evaluate the dataset's RI fit alone")
    with contextlib.ExitStack() as stack:
        dataset = stack.enter_context(open_dataset(reference_path))
        predictions = stack.enter_context(open_predictions(predictions_path)) if predictions_path is not None else None
        if predictions is not None:
            check_header(predictions, dataset)
            rows = parse_selection(settings.select, len(predictions))
            pairs = list(zip(rows, dataset_indices(predictions, rows, dataset, settings.position_tolerance_angstrom)))
        else:
            pairs = [(i, i) for i in parse_selection(settings.select, len(dataset))]
        target = evaluated_target(dataset, predictions if not settings.fit_only else None, settings.target)
        bad = non_finite_coefficients(dataset, predictions if not settings.fit_only else None, pairs, target)
        if bad:  # never averaged silently over fewer structures
            shown = "; ".join(bad[:10]) + (f"; and {len(bad) - 10} more" if len(bad) > 10 else "")
            raise RhoEvalError(f"{len(bad)} of {len(pairs)} structures cannot be evaluated, non-finite input: {shown}")
        producer = dataset.provenance.producer
        if factory is None:
            factory = builder_factory(dataset, settings.backend)
        builder = None
        if settings.cubes is not None:
            builder = factory()
            points_capable(builder, producer, "cube files")
        plan = Plan(
            Path(reference_path).resolve(),
            Path(predictions_path).resolve() if predictions_path else None,
            settings.fit_only,
            settings.grid_tolerance_bohr,
            () if settings.fit_only else tuple((z, tuple(v)) for z, v in sorted(species_mean(dataset, [i for _, i in pairs], target).items())),
            target,
        )
        mode = "fit-only" if settings.fit_only else "predictions"
        identity = {
            "reference": str(plan.reference),
            "dataset_id": dataset.dataset_id,
            "reference_file_id": dataset.file_id,
            "predictions": str(plan.predictions) if plan.predictions else None,
            "predictions_file_id": predictions.file_id if predictions is not None else None,
            "mode": mode,
            "target": target,
            "select": settings.select,
            "backend": dict(settings.backend),
        }
        columns = columns_for(settings.fit_only)
        table = ResultsTable(output, columns, identity, settings.to_dict(), restart=restart)
        todo = [p for p in pairs if p[0] not in table.done]
        if len(todo) < len(pairs):
            console.print(f"resuming: {len(pairs) - len(todo)} of {len(pairs)} structures already evaluated in {table.path}")
        progress = progress_bar(console, transient=False)
        with progress:
            task = progress.add_task("evaluating", total=len(pairs), completed=len(pairs) - len(todo))

            def done(records: list[dict]) -> None:
                table.add(records)
                progress.advance(task, len(records))

            run_chunks(plan, factory, todo, workers=settings.workers, chunk_size=settings.chunk_size, on_records=done)
        records = table.finish()

        context = {
            "rho_eval_version": __version__,
            "mode": mode,
            "reference": str(plan.reference),
            "dataset_id": dataset.dataset_id,
            "predictions": identity["predictions"],
            "producer": producer,
            "target": target,
            "nmae_normalisation": ("integral of rho_ref (electrons)" if plan.normalisation == "integral" else "integral of |rho_ref|"),
        }
        periodic = sum(bool(np.any(dataset.geometry(i).pbc)) for _, i in pairs)
        if periodic:
            context["periodic_structures"] = {
                "count": int(periodic),
                "errors": "per unit cell",
                "properties_skipped": "dipole and electrostatic energies: not defined per cell here (electron count per cell reported)",
            }
        summary = summarize(records, columns, _element_counts(dataset, [i for _, i in pairs]), context)
        builder = builder or factory()
        notes = backend_notes(builder, producer, dataset.basis)
        if periodic:
            notes.append(f"{PERIODIC_NOTE} ({periodic} of {len(pairs)} structures)")
        if not plan.is_density:
            notes.append(f"target '{target}': properties (electron count, dipole, electrostatics) are for the electron density only")
        if summary["metrics"]["nmae_scf_percent"]["count"] == 0:
            notes.append(f"the '{producer}' field builder provided no SCF density: no error against SCF")
        if not settings.fit_only:
            worst = summary["metrics"]["coef_grid_rel_diff"]["max"]
            ok = worst is not None and worst <= settings.consistency_tolerance
            summary["consistency"] = {
                "check": "|integral (rho_ML - rho_RI)^2 on the grid - dc^T S dc| / (|dc|^T |S| |dc|), dc = d_ML - d_RI",
                "max_relative_difference": worst,
                "tolerance": settings.consistency_tolerance,
                "ok": ok,
            }
            if worst is None:
                notes.append("the dataset stores no overlap: grid and coefficient-space errors were not compared")
            elif not ok:
                notes.append(
                    f"grid and coefficient-space squared errors differ by up to {worst:.3g} (relative to |dc|^T |S| |dc|), more than "
                    f"{settings.consistency_tolerance:g}: the grid is too coarse, or overlap and coefficients disagree"
                )
        summary["notes"] = notes

        key = "nmae_scf_percent" if settings.fit_only else "nmae_ri_percent"
        pictured = None if settings.fit_only else predictions  # slice and cubes: predicted - RI, or RI - SCF
        written = []
        if settings.plots and records:
            refs = ("scf",) if settings.fit_only else ("ri", "scf")
            folder = output / "plots"
            written.append(plots.error_distribution(records, refs, folder / "error_distribution.png"))
            written.append(plots.nmae_vs_size(records, refs, folder / "nmae_vs_size.png"))
            if predictions is not None and not settings.fit_only:
                parity = coefficient_parity(dataset, predictions, pairs, target=target)
                written.append(plots.parity_by_l(parity, folder / "parity_by_l.png"))
            if not callable(getattr(builder, "build_on_points", None)):
                notes.append(
                    f"the '{producer}' field builder cannot evaluate fields at arbitrary points (no build_on_points): no density-difference slice"
                )
            else:
                if settings.slice_structure is None:
                    chosen = max(records, key=lambda r: np.nan_to_num(r[key], nan=-np.inf))
                    row, index = chosen["row"], chosen["dataset_index"]
                else:
                    found = [(r, i) for r, i in pairs if i == settings.slice_structure]
                    if not found:
                        raise RhoEvalError(f"slice_structure {settings.slice_structure} is not among the evaluated structures")
                    row, index = found[0]
                written.append(
                    slice_plot(
                        builder.build_on_points,
                        dataset,
                        pictured,
                        row,
                        index,
                        margin=settings.slice_margin_bohr,
                        resolution=settings.slice_resolution,
                        path=folder / "density_difference_slice.png",
                        target=target,
                    )
                )
        for row, index in _cube_indices(settings.cubes, records, key, pairs):
            written += write_cubes(
                points_capable(builder, producer, "cube files"),
                dataset,
                pictured,
                row,
                index,
                spacing=settings.cube_spacing_bohr,
                margin=settings.cube_margin_bohr,
                folder=output / "cubes",
                target=target,
            )
        summary["files"] = sorted(str(p.relative_to(output)) for p in written)
        write_summary(output, summary)
    print_table(summary, console)
    for note in notes:
        console.print(f"[yellow]note:[/] {note}")
    console.print(f"report written to {output}/")
    return summary
