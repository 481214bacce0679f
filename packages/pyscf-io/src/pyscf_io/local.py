"""Running the structures of a work directory in N local worker processes.

Workers come from :func:`rho_data.worker_pool.worker_pool` (spawned, ``threads`` OpenMP
threads each, 1 by default so N workers use N cores, gone when the run is killed), and each
writes its own part file. A rich progress bar shows the count and the time left.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from concurrent.futures import as_completed
from concurrent.futures.process import BrokenProcessPool

from rho_data.cli_support import progress_bar
from rho_data.worker_pool import worker_pool

from . import task
from .disk import HDF5_SLACK
from .errors import DISK_FULL, DiskFull, PyscfIoError
from .workdir import WorkDir

_PART: dict[str, str] = {}


def _init_worker(threads: int) -> None:
    task.set_threads(threads)
    _PART["name"] = task.new_part_name("local")


def _run_in_worker(workdir: str, index: int) -> dict:
    return task.run_structure(workdir, index, _PART["name"])


def _disk_nearly_full(wd: WorkDir) -> bool:
    try:
        return shutil.disk_usage(wd.parts_dir).free < HDF5_SLACK
    except OSError:
        return False


def run_local(
    wd: WorkDir,
    indices: list[int],
    workers: int = 1,
    threads: int = 1,
    on_result: Callable[[dict], None] | None = None,
    show_progress: bool = True,
    console=None,
) -> list[dict]:
    """Compute ``indices`` with ``workers`` processes; returns their states in completion order."""
    results: list[dict] = []
    if not indices:
        return results
    with progress_bar(console, transient=False, info=True) as progress:
        bar = progress.add_task("structures", total=len(indices), info="", visible=show_progress)

        def done(state: dict) -> None:
            results.append(state)
            failed = sum(r["status"] != "done" for r in results)
            progress.update(bar, advance=1, info=f"[red]{failed} failed[/]" if failed else "")
            if on_result is not None:
                on_result(state)

        if workers == 1:
            previous = os.environ.get("OMP_NUM_THREADS")
            task.set_threads(threads)
            part = task.new_part_name("local")
            try:
                for i in indices:
                    done(task.run_structure(str(wd.path), i, part))
            finally:
                if previous is not None:
                    os.environ["OMP_NUM_THREADS"] = previous
            return results
        try:
            with worker_pool(workers, threads, initializer=_init_worker, initargs=(threads,)) as pool:
                futures = [pool.submit(_run_in_worker, str(wd.path), i) for i in indices]
                for future in as_completed(futures):
                    done(future.result())
        except BrokenProcessPool as err:
            if _disk_nearly_full(wd):
                raise DiskFull(f"{wd.path}: a worker process died: {DISK_FULL}") from None
            raise PyscfIoError(
                f"{wd.path}: a worker process died ({err}); finished structures are kept, run again to continue"
            ) from None
    return results
