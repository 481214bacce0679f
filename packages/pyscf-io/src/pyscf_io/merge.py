"""Merging the part files of a work directory into one dataset, in input order.

Each finished structure's state names its part file and row; rows of a part that no state
points to (a structure committed by a worker killed before recording it, then recomputed)
are ignored. The dataset is written to a temporary file and renamed over the output, so a
reader never sees a half-written dataset and an interrupted merge loses nothing.
"""

from __future__ import annotations

import os
import shutil
from os import PathLike
from pathlib import Path

from rho_data import RhoDataError, create_dataset, open_dataset

from .context import EXTRAS, METADATA
from .errors import PyscfIoError
from .workdir import WorkDir


def _check_output(output: Path, run_id: str, overwrite: bool) -> None:
    if not output.exists() or overwrite:
        return
    try:
        with open_dataset(output) as old:
            same_run = old.provenance.extra.get("run_id") == run_id
    except RhoDataError:
        same_run = False
    if not same_run:
        raise PyscfIoError(f"{output}: exists and was not written by this run; choose another output or pass --overwrite")


def merge_workdir(wd: WorkDir, output: str | PathLike | None = None, overwrite: bool = False) -> int:
    """Write the finished structures of ``wd`` to ``output`` (default: the run's output); returns their number."""
    manifest = wd.manifest()
    output = Path(output if output is not None else manifest["output"])
    _check_output(output, manifest["run_id"], overwrite)
    done = sorted((i, s) for i, s in wd.states().items() if s.get("status") == "done")
    if not done:
        raise PyscfIoError(f"{wd.path}: no structure has finished; nothing to write to {output}")
    ctx = wd.context()
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    parts: dict[str, object] = {}
    try:
        writer = create_dataset(tmp, ctx.basis(), ctx.provenance(), metadata=METADATA, extras=EXTRAS, overwrite=True)
        try:
            for _, state in done:
                if state["part"] not in parts:
                    parts[state["part"]] = open_dataset(wd.parts_dir / state["part"])
                writer.append(parts[state["part"]][int(state["row"])])  # type: ignore[index]
        finally:
            writer.close()
            for part in parts.values():
                part.close()  # type: ignore[attr-defined]
        os.replace(tmp, output)
    finally:
        if tmp.exists():
            tmp.unlink()
    shutil.copyfile(wd.path / "settings.yaml", output.with_name(output.name + ".settings.yaml"))
    return len(done)
