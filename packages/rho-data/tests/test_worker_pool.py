"""rho_data.worker_pool: one thread per worker, and no worker outlives a killed parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from rho_data.worker_pool import THREAD_VARIABLES, thread_count, worker_pool

#: A parent that starts one worker, prints the worker's pid, and gives it an hour of work.
PARENT = """
import os, sys, time
from rho_data.worker_pool import worker_pool
with worker_pool(1) as pool:
    print(pool.submit(os.getpid).result(), flush=True)
    pool.submit(time.sleep, 3600)
    time.sleep(3600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = f"/proc/{pid}/stat"  # Linux: a zombie (exited, not yet reaped by its new parent) counts as gone
    if not os.path.exists("/proc/self/stat"):
        return True
    try:
        with open(stat) as f:
            return f.read().rsplit(") ", 1)[-1][0] != "Z"
    except FileNotFoundError:
        return False


def test_workers_get_the_thread_count_and_the_parent_keeps_its_own(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    with worker_pool(2, threads=3) as pool:
        seen = pool.submit(os.getenv, "OMP_NUM_THREADS").result()
        blas = pool.submit(os.getenv, "OPENBLAS_NUM_THREADS").result()
    assert (seen, blas) == ("3", "3")
    assert os.environ["OMP_NUM_THREADS"] == "7"


def test_thread_count_restores_unset_variables(monkeypatch):
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with thread_count(1):
        assert all(os.environ[name] == "1" for name in THREAD_VARIABLES)
    assert not any(name in os.environ for name in THREAD_VARIABLES)


def test_an_error_in_the_parent_cancels_work_not_started():
    with pytest.raises(RuntimeError), worker_pool(1) as pool:
        queued = [pool.submit(time.sleep, 0.5) for _ in range(5)]
        raise RuntimeError("stop")
    # the pool hands at most workers + 1 calls to its processes ahead of time; the rest never start
    assert all(f.cancelled() for f in queued[2:])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_killed_parent_leaves_no_worker_running(sig):
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(parent.stdout.readline())
        assert _alive(worker)
        parent.send_signal(sig)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 30
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(worker), f"worker {worker} still runs after its parent got {sig.name}"
    finally:
        parent.kill()
        parent.stdout.close()
