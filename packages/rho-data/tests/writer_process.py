"""Appends deterministic synthetic structures to a dataset forever, printing each committed index.

Used by test_crash.py, which kills this process with SIGKILL at random moments.
    python writer_process.py PATH [--resume]
"""

import sys

import numpy as np

from rho_data import Provenance, RhoWriter, create_dataset
from rho_data.synthetic import synthetic_basis, synthetic_structure

BASIS = synthetic_basis(40)


def structure(i: int):
    return synthetic_structure(np.random.default_rng(1000 + i), BASIS, 2 + i % 5, label=f"s{i}")


if __name__ == "__main__":
    path = sys.argv[1]
    writer = RhoWriter(path) if "--resume" in sys.argv else create_dataset(path, BASIS, Provenance(producer="crash-test"))
    i = len(writer)
    while True:
        writer.append(structure(i))
        print(i, flush=True)
        i += 1
