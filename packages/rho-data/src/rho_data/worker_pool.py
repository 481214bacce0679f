"""Spawned worker processes that use one thread each and never outlive the process that started them.

Every package that parallelises across processes (pyscf-io's SCFs, rho-eval's grids) uses
:func:`worker_pool`:

- workers are *spawned* (no fork of a process holding HDF5 handles or OpenMP state);
- they start with ``OMP_NUM_THREADS`` (and the BLAS equivalents) set to ``threads``, so N workers
  use N cores instead of N times the machine;
- each worker watches its parent's sentinel and exits at once when the parent is gone (killed by
  SIGTERM or SIGKILL, where no cleanup of the parent runs), so no orphan goes on computing and
  writing into a work directory that a new run may already be using;
- leaving the ``with`` block by an exception cancels the work not yet started.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def thread_count(threads: int) -> Iterator[None]:
    """``OMP_NUM_THREADS`` and the BLAS thread variables set to ``threads`` inside the block, restored after.

    Processes started inside read them when their OpenMP and BLAS runtimes start.
    """
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, str(threads)))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _exit_with_parent() -> None:
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    parent.join()  # returns when the parent's sentinel closes: the parent has exited
    os._exit(1)  # no cleanup: the work of this process is unfinished and will be redone


def _start_worker(initializer: Callable[..., None] | None, initargs: tuple) -> None:
    threading.Thread(target=_exit_with_parent, name="exit-with-parent", daemon=True).start()
    if initializer is not None:
        initializer(*initargs)


@contextlib.contextmanager
def worker_pool(
    workers: int,
    threads: int = 1,
    initializer: Callable[..., None] | None = None,
    initargs: tuple = (),
) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``workers`` spawned processes, ``threads`` threads each, that die with this process."""
    context = multiprocessing.get_context("spawn")
    with thread_count(threads):
        pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=_start_worker, initargs=(initializer, initargs)
        )
        try:
            yield pool
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
