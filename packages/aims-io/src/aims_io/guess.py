"""SCF runs started from predicted coefficients, against the same SCF from FHI-aims's default guess.

``prepare_guess`` writes, for every structure of a predictions file, two run directories under
``<work>/guess/<name>/``: ``ml-<label>`` (``ri_density_restart read``, the coefficients in
``ri_restart_coeffs.out`` in the order FHI-aims reads, the SCF allowed to run to convergence
within ``sc_iter_limit``) and ``default-<label>`` (the same control.in without the restart).
Both use the SCF settings of the reference dataset (the settings recorded in its provenance,
checked against the keywords of its RI-fit control.in) and the species sections of the
reference RI-fit run's control.in when it is still there (else the recorded species directory).

``compare_guess`` reads the cycle count, convergence, total energy and wall time of each pair
from aims.out and summarises them; ``write_comparison`` publishes the JSON atomically.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from rho_data import RhoFile, open_dataset, open_predictions
from rho_data.atomic import check_output_location, write_text_atomic
from rho_data.yaml_input import parse_yaml_text, short_repr

from .aimsout import parse_aims_out
from .control import control_text, read_keywords, species_sections
from .errors import AimsIOError
from .export import aims_coefficients, dataset_version, geometry_of, matched_predictions, ri_run_dir
from .geometry import geometry_text
from .layout import RUN_INFO, check_name, read_json, run_dirs, stage_dir, write_json, write_text
from .prepare import coefficients_digest, structure_label, write_coefficients
from .runstate import RUNNING, aims_finished, reset, run_state, was_started
from .settings import check_value, defaults, merge_into

ML, DEFAULT = "ml", "default"
#: dft settings that define the SCF (and the auxiliary basis of the coefficients)
PHYSICAL = ("xc", "relativistic", "charge", "spin", "default_initial_moment", "default_prodbas_acc", "default_max_l_prodbas")
#: dft settings of the guess runs themselves, taken from the user's settings
GUESS_KEYS = ("sc_iter_limit", "guess_ri_density_restart")
COMPARISON_FILE = "comparison.json"


# ---- the reference SCF settings -----------------------------------------------------------


def _same_value(written: str, recorded: str) -> bool:
    try:
        return math.isclose(float(written), float(recorded), rel_tol=1e-12, abs_tol=0.0)
    except ValueError:
        return written.split() == recorded.split()


def reference_settings(dataset: RhoFile) -> dict:
    """The dft settings of the dataset's runs, from its provenance, checked against its RI control.in keywords."""
    dataset_version(dataset)  # refuses datasets not made by aims-io
    text = dataset.provenance.extra.get("settings") or ""
    if not str(text).strip():
        raise AimsIOError(
            "its provenance records no aims-io settings: the SCF settings of its runs cannot be rebuilt", path=dataset.path
        )
    source = f"{dataset.path} (provenance settings)"
    recorded = parse_yaml_text(str(text), source=source)
    if not isinstance(recorded, Mapping) or not isinstance(recorded.get("dft"), Mapping):
        raise AimsIOError("its provenance settings hold no 'dft' section: the SCF settings cannot be rebuilt", path=dataset.path)
    dft = merge_into(defaults(), {"dft": dict(recorded["dft"])}, source)["dft"]
    keywords = dataset.provenance.extra.get("control_keywords") or {}
    for key in PHYSICAL:
        if key in keywords and dft.get(key) is not None:
            value = float(dft[key]) if key == "charge" else dft[key]
            if not _same_value(check_value(f"dft.{key}", value), str(keywords[key])):
                raise AimsIOError(
                    f"its provenance settings say {key} = {short_repr(dft[key])} but its RI runs used "
                    f"{short_repr(keywords[key])}: the SCF settings cannot be rebuilt",
                    path=dataset.path,
                )
    return dft


def check_user_dft(user: dict, reference: dict, dataset_path: Path) -> None:
    """Refuse a user dft setting that differs from both the default and the reference (it would be ignored)."""
    base = defaults()["dft"]
    for key in (*PHYSICAL, "species_defaults"):
        value = user["dft"].get(key)
        if value != base.get(key) and value != reference.get(key):
            raise AimsIOError(
                f"setting 'dft.{key}' = {short_repr(value)} differs from the reference's {short_repr(reference.get(key))}: "
                f"guess runs use the SCF settings of {dataset_path}; drop the setting"
            )


def reference_species(dataset: RhoFile, index: int) -> tuple[str | None, str]:
    """Species sections of the reference RI-fit run's control.in, or None (use the species directory); and the source."""
    if not dataset.provenance.extra.get("ri_root"):
        return None, "species_defaults directory (no RI run directory recorded)"
    control = ri_run_dir(dataset, index) / "control.in"
    if not control.is_file():
        return None, f"species_defaults directory ({control} is gone)"
    return species_sections(control), str(control)


# ---- writing the runs -------------------------------------------------------------------------


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def prepare_guess_run(run_dir: Path, geometry_text: str, control: str, coefficients: np.ndarray | None, info: dict) -> bool:
    """Write one guess run directory; False (left alone) when it has already finished with these inputs.

    A finished run with other inputs keeps its aims.out as ``aims.out.previous``; a running one is refused.
    """
    info = {**info, "control_sha1": _sha1(control)}
    if coefficients is not None:
        info["coefficients_sha1"] = coefficients_digest(coefficients)
    old = read_json(run_dir / RUN_INFO)
    same = all(old.get(k) == info.get(k) for k in ("control_sha1", "coefficients_sha1"))
    if aims_finished(run_dir) and same:
        return False
    if run_dir.is_dir() and run_state(run_dir).state == RUNNING:
        raise AimsIOError("is still running: wait for it (aims-io status) before preparing it again", path=run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    reset(run_dir)
    write_text(run_dir / "geometry.in", geometry_text, what="geometry.in")
    write_text(run_dir / "control.in", control, what="control.in")
    if coefficients is not None:
        write_coefficients(run_dir / "ri_restart_coeffs.out", coefficients)
    else:
        (run_dir / "ri_restart_coeffs.out").unlink(missing_ok=True)
    write_json(run_dir / RUN_INFO, info)
    return True


def prepare_guess(predictions_path: Path, dataset_path: Path, work: Path, name: str, user_settings: dict) -> list[Path]:
    """ML-guess and default-guess SCF run directories for every structure of a predictions file."""
    check_name(name, "guess name")
    out: list[Path] = []
    with open_predictions(predictions_path) as pred, open_dataset(dataset_path) as ds:
        dft = reference_settings(ds)
        check_user_dft(user_settings, dft, dataset_path)
        # the SCF settings are the reference's; only how the guess runs run comes from the user's settings
        dft = {**dft, **{k: user_settings["dft"][k] for k in GUESS_KEYS}, "cube": False}
        root = stage_dir(work, f"guess/{name}")
        pairs = list(matched_predictions(pred, ds, predictions_path, dataset_path))
        if not pairs:
            raise AimsIOError("holds no structures", path=predictions_path)
        seen: dict[int, int] = {}
        for k, (index, _) in enumerate(pairs):
            if index in seen:
                raise AimsIOError(
                    f"predicts dataset structure {index} twice (structures {seen[index]} and {k})", path=predictions_path
                )
            seen[index] = k
        for index, coefficients in pairs:
            values = aims_coefficients(ds, index, coefficients, name)
            geometry = geometry_of(ds.geometry(index))
            species, species_source = reference_species(ds, index)
            label = structure_label(index)
            base = {
                "label": label,
                "index": index,
                "name": name,
                "dataset": str(Path(dataset_path).resolve()),
                "dataset_id": ds.dataset_id,
                "predictions": str(Path(predictions_path).resolve()),
                "species_source": species_source,
            }
            for kind, stage, vector in ((ML, "guess", values), (DEFAULT, "guess-default", None)):
                control = control_text(stage, dft, geometry, species)
                run_dir = root / f"{kind}-{label}"
                prepare_guess_run(run_dir, geometry_text(geometry), control, vector, {**base, "stage": stage, "guess": kind})
                out.append(run_dir)
    return out


# ---- reading them back ------------------------------------------------------------------------


def read_guess_run(run_dir: Path, kind: str) -> dict:
    """Cycles, convergence, energy and wall time of one finished guess run (one-line errors otherwise)."""
    keywords = read_keywords(run_dir / "control.in")
    restart = keywords.get("ri_density_restart", "")
    if kind == ML and (not restart.startswith("read") or not (run_dir / "ri_restart_coeffs.out").is_file()):
        raise AimsIOError("is not an ML-guess run (no 'ri_density_restart read' or no ri_restart_coeffs.out)", path=run_dir)
    if kind == DEFAULT and restart:
        raise AimsIOError("is not a default-guess run (its control.in sets ri_density_restart)", path=run_dir)
    if not aims_finished(run_dir):
        started = "started or submitted" if was_started(run_dir) else "not started"
        raise AimsIOError(f"has not finished ({started}; see `aims-io status`)", path=run_dir)
    out = parse_aims_out(run_dir / "aims.out")
    if out.scf_cycles is None:
        raise AimsIOError("reports no number of self-consistency cycles", path=run_dir / "aims.out")
    for what, value in (("total energy", out.total_energy_ev), ("wall time", out.wall_time_s)):
        if value is None or not math.isfinite(value):
            raise AimsIOError(f"reports no finite {what}", path=run_dir / "aims.out")
    return {"cycles": out.scf_cycles, "converged": out.scf_converged, "energy_ev": out.total_energy_ev, "wall_s": out.wall_time_s}


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def compare_guess(stage_path: Path, *, energy_tolerance_ev: float = 1e-4) -> dict:
    """Per-structure rows and a summary of ML-guess against default-guess SCF runs."""
    dirs = {d.name: d for d in run_dirs(stage_path)}
    labels = sorted({n.split("-", 1)[1] for n in dirs if n.startswith((f"{ML}-", f"{DEFAULT}-"))})
    if not labels:
        raise AimsIOError("holds no guess runs (run `aims-io prepare guess` first)", path=stage_path)
    rows, warnings = [], []
    for label in labels:
        pair = {}
        for kind in (ML, DEFAULT):
            run_dir = dirs.get(f"{kind}-{label}")
            if run_dir is None:
                raise AimsIOError(f"structure {label} has no {kind}-guess run", path=stage_path)
            pair[kind] = read_guess_run(run_dir, kind)
        ml, default = pair[ML], pair[DEFAULT]
        row = {
            "label": label,
            "index": read_json(dirs[f"{ML}-{label}"] / RUN_INFO).get("index"),
            "cycles_ml": ml["cycles"],
            "cycles_default": default["cycles"],
            "cycles_saved": default["cycles"] - ml["cycles"],
            "converged_ml": ml["converged"],
            "converged_default": default["converged"],
            "energy_ml_ev": ml["energy_ev"],
            "energy_default_ev": default["energy_ev"],
            "energy_difference_ev": ml["energy_ev"] - default["energy_ev"],
            "wall_ml_s": ml["wall_s"],
            "wall_default_s": default["wall_s"],
        }
        rows.append(row)
        for kind in (ML, DEFAULT):
            if not pair[kind]["converged"]:
                warnings.append(f"{dirs[f'{kind}-{label}']}: the SCF did not converge in {pair[kind]['cycles']} cycles")
        if ml["converged"] and default["converged"] and abs(row["energy_difference_ev"]) > energy_tolerance_ev:
            warnings.append(
                f"{dirs[f'{ML}-{label}']}: total energy differs from the default-guess run by "
                f"{row['energy_difference_ev']:.3e} eV (tolerance {energy_tolerance_ev:g} eV)"
            )
    both = [r for r in rows if r["converged_ml"] and r["converged_default"]]
    mean_ml, mean_default = _mean([r["cycles_ml"] for r in both]), _mean([r["cycles_default"] for r in both])
    wall_ml, wall_default = _mean([r["wall_ml_s"] for r in both]), _mean([r["wall_default_s"] for r in both])
    summary = {
        "structures": len(rows),
        "converged_both": len(both),
        "means_over": "structures where both runs converged",
        "mean_cycles_ml": mean_ml,
        "mean_cycles_default": mean_default,
        "fraction_cycles_saved": None if not both or not mean_default else 1.0 - mean_ml / mean_default,
        "mean_wall_ml_s": wall_ml,
        "mean_wall_default_s": wall_default,
        "fraction_wall_saved": None if not both or not wall_default else 1.0 - wall_ml / wall_default,
        "max_abs_energy_difference_ev": max((abs(r["energy_difference_ev"]) for r in both), default=None),
        "energy_tolerance_ev": energy_tolerance_ev,
    }
    written = time.strftime("%Y-%m-%dT%H:%M:%S")
    return {"stage": str(stage_path), "written": written, "rows": rows, "summary": summary, "warnings": warnings}


def write_comparison(report: dict, path: Path, *, overwrite: bool = False) -> None:
    """Publish the comparison as JSON through a unique temporary file (refuses an existing one without overwrite)."""
    check_output_location(path, overwrite=overwrite, what="comparison")
    write_text_atomic(path, json.dumps(report, indent=1) + "\n", overwrite=overwrite, what="comparison")
