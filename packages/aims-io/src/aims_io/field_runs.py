"""The further fields of an RI-fit run: the run directories ``<label>.field-<k>`` beside it.

``prepare ri`` writes, for the structure of ``ri/<label>``, one RI run per further field of
``dft.fields`` (``ri/<label>.field-<k>``, k = 1, 2, ...), and records the field list in every
run's ``aims-io-run.json`` (``fields``, ``field``, and ``field_integral`` = sum_i w_i, the
integral of a field fitted from orbital weights). The importer stores field k as the further
target :func:`rho_data.orbital_fields.target_name` of it, on the overlap of the main run, with
metadata ``field_integral@T`` and ``n_fit@T`` (sum_k w_k f_RI(r_k) on FHI-aims's grid, when its
grid files are there).
"""

from __future__ import annotations

import re
from pathlib import Path

from rho_data import TargetValues
from rho_data.orbital_fields import target_name

from .errors import AimsIOError
from .layout import RUN_INFO, read_json
from .rifiles import read_ri_run

_FIELD_RUN = re.compile(r"^.+\.field-[1-9][0-9]*$")


def field_run_name(label: str, k: int) -> str:
    """The RI run directory name of field ``k`` of ``dft.fields`` (0: the main target, ``<label>``)."""
    return label if k == 0 else f"{label}.field-{k}"


def is_field_run(run_dir: Path) -> bool:
    """A run directory of a further field (imported with its main run, not as a structure)."""
    return bool(_FIELD_RUN.match(run_dir.name)) and "field" in read_json(run_dir / RUN_INFO)


def run_fields(run_dir: Path) -> list[str]:
    """The fields of a main RI run (``["density"]`` for runs prepared before fields existed)."""
    info = read_json(run_dir / RUN_INFO)
    fields = info.get("fields") or [info.get("field", "density")]
    return [str(f) for f in fields]


def target_metadata(fields: list[str]) -> list[str]:
    """The metadata names the fields add: ``field_integral`` of a main field other than the density,
    ``field_integral@T`` and ``n_fit@T`` of each further target T."""
    names = [] if fields[0] == "density" else ["field_integral"]
    for field in fields[1:]:
        names += [f"field_integral@{target_name(field)}", f"n_fit@{target_name(field)}"]
    return names


def field_targets(run_dir: Path, fields: list[str]) -> tuple[dict[str, TargetValues], dict[str, float]]:
    """The further targets of the main run ``run_dir`` and their metadata; a missing or failed
    field run is an error naming it."""
    targets: dict[str, TargetValues] = {}
    meta: dict[str, float] = {}
    info = read_json(run_dir / RUN_INFO)
    if fields[0] != "density" and "field_integral" in info:
        meta["field_integral"] = float(info["field_integral"])
    for k, field in enumerate(fields[1:], start=1):
        field_dir = run_dir.parent / field_run_name(run_dir.name, k)
        if not field_dir.is_dir():
            raise AimsIOError(f"the run of field '{field}' is missing (run `aims-io prepare ri`)", path=field_dir)
        recorded = read_json(field_dir / RUN_INFO).get("field")
        if recorded != field:
            raise AimsIOError(f"records field {recorded!r}, the main run expects '{field}'", path=field_dir / RUN_INFO)
        try:
            run = read_ri_run(field_dir, overlap=False)
        except AimsIOError as err:
            raise AimsIOError(f"the run of field '{field}' cannot be imported: {err}") from None
        name = target_name(field)
        targets[name] = TargetValues(run.coefficients, run.projections)
        field_info = read_json(field_dir / RUN_INFO)
        if "field_integral" in field_info:
            meta[f"field_integral@{name}"] = float(field_info["field_integral"])
        if "n_electrons_fit" in run.fit_quality:
            meta[f"n_fit@{name}"] = run.fit_quality["n_electrons_fit"]
    return targets, meta
