"""Merging the part files of a work directory into one dataset, in input order.

Each finished structure's state names its part file and row; rows of a part that no state
points to (a structure committed by a worker killed before recording it, then recomputed)
are ignored. The dataset is written to a unique temporary file beside the output and then
published (:func:`rho_data.atomic.atomic_output`): a reader never sees a half-written
dataset, an interrupted or failed merge loses nothing, and a dataset that another run
published meanwhile is never replaced (without ``--overwrite``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from os import PathLike
from pathlib import Path

from rho_data import RhoDataError, create_dataset, open_dataset
from rho_data.atomic import atomic_output, check_output_location, disk_full, write_text_atomic

from .disk import APPEND_SLACK, abandon_hdf5, disk_full_error, ensure_space
from .errors import PyscfIoError
from .workdir import WorkDir


def written_by_run(output: Path, run_id: str) -> bool:
    try:
        with open_dataset(output) as old:
            return old.provenance.extra.get("run_id") == run_id
    except RhoDataError:
        return False


def check_output(output: str | PathLike, run_id: str, overwrite: bool) -> bool:
    """Refuse, before any work, an output that cannot be written or is another run's result.

    Returns whether an existing output may be replaced (``--overwrite``, or a dataset an earlier
    merge of this same run wrote).
    """
    output = Path(output)
    replace = overwrite or (output.is_file() and written_by_run(output, run_id))
    if output.exists() and not output.is_dir() and not replace:
        raise PyscfIoError(f"{output}: exists and was not written by this run; choose another output or pass --overwrite")
    check_output_location(output, overwrite=True, what="dataset")
    return replace


def _copy_rows(writer, wd: WorkDir, done: list[tuple[int, dict]], lost: list[int]) -> int:
    parts: dict[str, object] = {}
    n = 0
    try:
        for i, state in done:
            try:
                if state["part"] not in parts:
                    parts[state["part"]] = open_dataset(wd.parts_dir / state["part"])
                structure = parts[state["part"]][int(state["row"])]  # type: ignore[index]
            except (RhoDataError, OSError, KeyError, ValueError, RuntimeError) as err:
                if disk_full(err):
                    raise
                lost.append(i)
                continue
            writer.append(structure)
            n += 1
    finally:
        for part in parts.values():
            part.close()  # type: ignore[attr-defined]
    return n


def merge_workdir(
    wd: WorkDir, output: str | PathLike | None = None, overwrite: bool = False, warn: Callable[[str], None] | None = None
) -> int:
    """Write the finished structures of ``wd`` to ``output`` (default: the run's output); returns their number.

    Structures whose data turns out to be gone are marked pending again and reported through ``warn``.
    """
    manifest = wd.manifest()
    output = Path(output if output is not None else manifest["output"])
    replace = check_output(output, manifest["run_id"], overwrite)
    message = wd.recover_lost()
    if message and warn is not None:
        warn(message)
    done = sorted((i, s) for i, s in wd.states().items() if s.get("status") == "done")
    if not done:
        raise PyscfIoError(f"{wd.path}: no structure has finished; nothing to write to {output}")
    ctx = wd.context()
    part_bytes = 0
    for name in {s["part"] for _, s in done}:
        with contextlib.suppress(OSError):
            part_bytes += os.stat(wd.parts_dir / name).st_size
    ensure_space(output.parent if str(output.parent) else Path("."), part_bytes + APPEND_SLACK)
    lost: list[int] = []
    with atomic_output(output, overwrite=replace, what="dataset") as tmp:
        writer = create_dataset(tmp, ctx.basis(), ctx.provenance(), **ctx.dataset_layout(), overwrite=True)
        try:
            n = _copy_rows(writer, wd, done, lost)
        except BaseException as err:
            if disk_full(err):
                abandon_hdf5(writer)  # HDF5 cannot close a file it failed to write (see pyscf_io.disk)
                raise disk_full_error(str(output)) from None
            writer.close()
            raise
        writer.close()
        if lost:  # a part file was damaged after the check: keep the old output, recompute those
            wd.forget(lost)
            raise PyscfIoError(
                f"{wd.path}: the data of structures {', '.join(map(str, lost[:20]))} is gone (part file damaged); "
                "they are pending again: run the same command again to recompute them"
            )
    write_text_atomic(
        output.with_name(output.name + ".settings.yaml"), (wd.path / "settings.yaml").read_text(), what="settings copy"
    )
    return n
