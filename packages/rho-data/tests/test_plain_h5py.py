"""The reading example of SCHEMA.md section 5, run as it is against a file rho-data wrote."""

import re
from pathlib import Path

import numpy as np

from rho_data import open_dataset

SCHEMA = Path(__file__).parents[1] / "SCHEMA.md"


def schema_example() -> str:
    text = SCHEMA.read_text()
    section = text[text.index("## 5. Reading with plain h5py") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_schema_example_reads_structure_3_exactly(dataset_path, monkeypatch):
    monkeypatch.chdir(dataset_path.parent)
    namespace: dict = {}
    exec(compile(schema_example(), str(SCHEMA), "exec"), namespace)
    with open_dataset(dataset_path) as f:
        s = f[3]
    assert namespace["label"] == s.label
    np.testing.assert_array_equal(namespace["numbers"], s.numbers)
    np.testing.assert_array_equal(namespace["positions"], s.positions)
    np.testing.assert_array_equal(namespace["d"], s.coefficients)
    np.testing.assert_array_equal(namespace["S"], s.overlap.to_dense())
    assert namespace["n"] == 5
