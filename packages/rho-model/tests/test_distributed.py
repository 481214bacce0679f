import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(), reason="torchrun not installed"
)
def test_two_processes_give_the_gradient_of_the_joined_batch(water_dataset, tmp_path):
    from ddp_worker import gradients

    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    cache = str(tmp_path / "cache")
    out = tmp_path / "grads.npz"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    gradients(str(water_dataset), cache, world_override=1)  # fills the descriptor cache first
    r = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node", "2", str(HERE / "ddp_worker.py"), str(water_dataset), cache, str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    _, reference = gradients(str(water_dataset), cache, world_override=1)
    got = np.load(out)
    assert set(got.files) == set(reference)
    for name, g in reference.items():
        np.testing.assert_allclose(got[name], g, rtol=1e-10, atol=1e-12 * max(1.0, np.abs(g).max()))
    assert any(np.abs(g).max() > 0 for g in reference.values())


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(), reason="torchrun not installed"
)
def test_two_processes_give_the_one_process_exact_fit(water_dataset, tmp_path):
    """Each rank holds its share of the structures; the solver's products are all-reduced (gloo)."""
    from exact_ddp_worker import fits

    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    cache = str(tmp_path / "cache")
    out = tmp_path / "fits.npz"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    _, reference = fits(str(water_dataset), cache, world_override=1)  # also fills the descriptor cache
    r = subprocess.run(
        [
            torchrun,
            "--standalone",
            "--nproc_per_node",
            "2",
            str(HERE / "exact_ddp_worker.py"),
            str(water_dataset),
            cache,
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    got = np.load(out)
    assert set(got.files) == set(reference)
    for name, w in reference.items():
        if name.endswith("_processes"):
            assert (int(w[0]), int(got[name][0])) == (1, 2)
        else:
            np.testing.assert_allclose(got[name], w, rtol=0, atol=1e-10 * np.abs(w).max())
