"""Time and memory of importing the real CH4 RI-fit run (798 auxiliary functions).

Run: python benchmarks/import_ch4.py   (needs ../shared/fixtures/fhi-aims/qm7-0-CH4)
The run directory is written by the test stand-in from the recorded FHI-aims files.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from conftest import CH4, make_ri_run  # noqa: E402

from aims_io.importer import import_tree  # noqa: E402
from aims_io.rifiles import read_ri_run  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ri"
        make_ri_run(root / "000000", CH4)
        size = (root / "000000" / "ri_ovlp.out").stat().st_size
        tracemalloc.start()
        t0 = time.perf_counter()
        run = read_ri_run(root / "000000")
        t_read = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        t0 = time.perf_counter()
        import_tree(root, Path(tmp) / "ds.h5")
        t_import = time.perf_counter() - t0
        n = run.n_functions
        print(f"N = {n} auxiliary functions, ri_ovlp.out {size / 1e6:.1f} MB ({n * (n + 1) // 2} values)")
        print(
            f"read_ri_run: {t_read:.2f} s, peak traced memory {peak / 1e6:.1f} MB "
            f"(dense S would be {n * n * 8 / 1e6:.1f} MB; triangle {n * (n + 1) // 2 * 8 / 1e6:.1f} MB)"
        )
        print(f"import_tree (read + write dataset): {t_import:.2f} s")
        print(f"max RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3:.0f} MB")


if __name__ == "__main__":
    main()
