"""Where things live in a work directory.

::

    <work>/aims-io.yaml            expanded settings (written by ``prepare``)
    <work>/scf/<label>/            SCF runs (geometry.in, control.in, aims.out, restart files)
    <work>/ri/<label>/             RI-fit runs (links to the SCF restart files)
    <work>/ri/<label>.field-<k>/   RI-fit runs of the further fields k of ``dft.fields``
    <work>/rebuild/<name>/<label>/ rebuilds of coefficient sets
    <work>/guess/<name>/ml-<label>/      SCF runs started from coefficient set <name>
    <work>/guess/<name>/default-<label>/ the same SCF runs from FHI-aims's default initial guess
    <work>/jobs/                   SLURM job scripts, run lists and logs

Each run directory holds ``aims-io-run.json`` (stage, label, structure index, SCF directory),
``.aims-io-job.json`` once started (backend and job id or process id) and
``aims-io-failed.json`` once a failure was seen (the reason: the end of aims.out).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from rho_data import text_input
from rho_data.atomic import write_text_atomic

from .errors import AimsIOError

RUN_INFO = "aims-io-run.json"
JOB_FILE = ".aims-io-job.json"
FAILED_FILE = "aims-io-failed.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_name(name: str, what: str = "name") -> str:
    """Names become directory names: letters, digits, _ . - only."""
    if not _NAME.match(name) or name in (".", ".."):
        raise AimsIOError(f"{what} '{name}' may only hold letters, digits, '_', '.', '-'")
    return name


def stage_dir(work: str | Path, stage: str) -> Path:
    parts = stage.split("/")
    if parts[0] in ("rebuild", "guess") and len(parts) == 2:
        check_name(parts[1], f"{parts[0]} name")
    elif stage not in ("scf", "ri"):
        raise AimsIOError(f"unknown stage '{stage}': expected scf, ri, rebuild/<name> or guess/<name>")
    return Path(work) / stage


def run_dirs(stage_path: str | Path) -> list[Path]:
    """The run directories of a stage (sub-directories holding a control.in), sorted."""
    stage_path = Path(stage_path)
    if not stage_path.is_dir():
        return []
    return sorted(p for p in stage_path.iterdir() if p.is_dir() and (p / "control.in").is_file())


def read_json(path: Path) -> dict:
    """The JSON object in ``path``; ``{}`` when it is missing or unreadable (bookkeeping files only)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):  # missing, not UTF-8, not JSON
        return {}
    return data if isinstance(data, dict) else {}


def read_text(path: str | Path) -> str:
    """The text of an input file: one-line errors for a missing, unreadable or non-UTF-8 file."""
    return text_input.read_text(path, missing="missing file", error=AimsIOError)


def write_json(path: Path, data: dict) -> None:
    """Replace ``path`` by ``data`` as JSON, through a unique temporary file (never half written)."""
    write_text(path, json.dumps(data, indent=1, sort_keys=True))


def write_text(path: str | Path, text: str, *, what: str = "file") -> None:
    """Every file aims-io writes goes through here: a unique temporary file, renamed when complete."""
    write_text_atomic(path, text, overwrite=True, what=what)
