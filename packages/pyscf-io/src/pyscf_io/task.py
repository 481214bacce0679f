"""The per-structure task shared by local workers and SLURM array tasks.

A task computes one structure, commits it to the worker's own part file (rho-data, one
writer per file) and then records its state; any failure is recorded with its reason and
never stops the other structures.
"""

from __future__ import annotations

import os
import time
import traceback
import uuid
from pathlib import Path

from rho_data import RhoWriter, create_dataset

from .compute import compute_structure
from .context import RunContext
from .disk import APPEND_SLACK, HDF5_SLACK, abandon_hdf5, disk_full, disk_full_error, ensure_space, structure_bytes
from .errors import DISK_FULL, DiskFull, PyscfIoError
from .workdir import WorkDir

_CACHE: dict[str, tuple[WorkDir, RunContext, list]] = {}


def set_threads(n: int) -> None:
    """Threads of PySCF's OpenMP kernels (and of anything started later)."""
    os.environ["OMP_NUM_THREADS"] = str(n)
    from pyscf import lib

    lib.num_threads(n)


def _loaded(workdir: str) -> tuple[WorkDir, RunContext, list]:
    if workdir not in _CACHE:
        wd = WorkDir(Path(workdir))
        _CACHE[workdir] = (wd, wd.context(), wd.structures())
    return _CACHE[workdir]


def new_part_name(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:8]}.h5"


def append_to_part(part: Path, ctx: RunContext, structure) -> int:
    """Commit one structure to a part file (created on first use); returns its row.

    The free space is checked first (cheap); a write that still fails for lack of space leaves
    the part file with the structures committed before (see :mod:`pyscf_io.disk`).
    """
    ensure_space(part.parent, 2 * structure_bytes(structure) + (APPEND_SLACK if part.exists() else HDF5_SLACK))
    writer = None
    try:
        writer = RhoWriter(part) if part.exists() else create_dataset(part, ctx.basis(), ctx.provenance(), **ctx.dataset_layout())
        row = writer.append(structure)
    except BaseException as err:
        if writer is not None and disk_full(err):
            abandon_hdf5(writer)
            raise disk_full_error(str(part.parent)) from None
        if writer is not None:
            writer.close()
        if disk_full(err):
            raise disk_full_error(str(part.parent)) from None
        raise
    writer.close()
    return row


def run_structure(workdir: str, index: int, part_name: str) -> dict:
    """Compute structure ``index`` of the run in ``workdir``; returns (and records) its state."""
    wd, ctx, structures = _loaded(workdir)
    inp = structures[index]
    t0 = time.perf_counter()
    try:
        structure = compute_structure(inp, ctx, input_index=index)
        row = append_to_part(wd.parts_dir / part_name, ctx, structure)
        state = {
            "status": "done",
            "part": part_name,
            "row": row,
            "label": inp.label,
            "time_s": time.perf_counter() - t0,
            "fit_nmae_percent": structure.metadata["fit_nmae_percent"],
            "n_electrons_fit": structure.metadata["n_electrons_fit"],
            "n_electrons": structure.metadata["n_electrons"],
            "energy": structure.metadata["energy"],
        }
    except DiskFull:
        raise  # not a property of the structure: stop the run, record nothing
    except PyscfIoError as err:
        state = {"status": "failed", "label": inp.label, "reason": str(err), "time_s": time.perf_counter() - t0}
    except Exception as err:  # noqa: BLE001 - a PySCF failure on one structure must not stop the others
        if disk_full(err):  # e.g. PySCF's scratch files
            raise DiskFull(f"{wd.path}: structure {index}: {DISK_FULL}") from None
        last = traceback.extract_tb(err.__traceback__)[-1]
        state = {
            "status": "failed",
            "label": inp.label,
            "time_s": time.perf_counter() - t0,
            "reason": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''} "
            f"(at {Path(last.filename).name}:{last.lineno})",
        }
    state["source"], state["frame"] = inp.source, inp.frame
    wd.record(index, **state)
    return {"index": index, **state}
