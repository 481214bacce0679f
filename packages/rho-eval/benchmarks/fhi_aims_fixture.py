"""Coefficient-space squared error vs FHI-aims's own grid integral on the shared CH4 fixture.

Run: python benchmarks/fhi_aims_fixture.py [/work/shared/fixtures/fhi-aims/qm7-0-CH4]
Prints (d_ML - d_RI)^T S (d_ML - d_RI), FHI-aims's grid value and their relative difference.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
from rho_data import BlockSparseOverlap

from rho_eval import coefficient_squared_error
from rho_eval.metrics import relative_difference

FHI_AIMS = 0.2185265651976613  # fixture README: FHI-aims grid integral of (rho_ML - rho_RI)^2


def floats(path: Path) -> np.ndarray:
    return np.array(path.read_text().replace("D", "E").split(), dtype=float)


def main(folder: Path) -> None:
    sizes, current = [], 0
    for line in (folder / "basis_info.out").read_text().splitlines():
        if line.split()[:1] == ["atom"] and current:
            sizes.append(current)
            current = 0
        m = re.match(r"\s*For L =\s*(\d+) there are\s*(\d+) radial functions", line)
        if m:
            current += int(m.group(2)) * (2 * int(m.group(1)) + 1)
    sizes.append(current)
    n = sum(sizes)
    S = np.zeros((n, n))
    S[np.triu_indices(n)] = floats(folder / "ri_ovlp.out")
    S = S + np.triu(S, 1).T
    error = coefficient_squared_error(
        BlockSparseOverlap.from_dense(S, np.array(sizes)), floats(folder / "ml_coeffs.out"), floats(folder / "ri_restart_coeffs.out")
    )
    print(f"coefficient space {error:.12g}  FHI-aims grid {FHI_AIMS:.12g}  relative difference {relative_difference(error, FHI_AIMS):.3g}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/work/shared/fixtures/fhi-aims/qm7-0-CH4"))
