"""The order and signs of auxiliary functions in FHI-aims files, and conversion to canonical.

rho-data's canonical order is atom -> l -> n -> m (m = -l..l), real spherical harmonics with
the Condon-Shortley phase. FHI-aims >= 240403 writes exactly this order. Older versions write
their own internal order and omit the Condon-Shortley phase (-1)^m for m > 0; with
``ri_full_output`` they also write

- ``idx_prodbas_details.out``: per function ``index atom l radial_index m`` (1-based index,
  atom and radial index; the radial index counts across l), and
- ``prodbas_condon_shotley_list.out``: the 1-based indices of the functions whose sign
  must flip (those with odd m > 0).

From these :class:`AimsOrder` builds the permutation and signs. Without them an old run is
refused: importing it as is would silently mix m components and signs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .basis_info import n_functions
from .errors import AimsIOError
from .floats import read_floats

#: First FHI-aims version that writes the canonical order and signs itself.
FIRST_CANONICAL_VERSION = 240403
DETAILS_FILE = "idx_prodbas_details.out"
CS_FILE = "prodbas_condon_shotley_list.out"


@dataclass(frozen=True)
class AimsOrder:
    """``canonical[k] = sign[k] * file[perm[k]]``."""

    perm: np.ndarray
    sign: np.ndarray
    legacy: bool = False

    @classmethod
    def identity(cls, n: int) -> AimsOrder:
        return cls(np.arange(n, dtype=np.int64), np.ones(n), False)

    @property
    def is_identity(self) -> bool:
        return not self.legacy

    def to_canonical(self, values: np.ndarray) -> np.ndarray:
        return values if self.is_identity else self.sign * np.asarray(values)[self.perm]

    def from_canonical(self, values: np.ndarray) -> np.ndarray:
        if self.is_identity:
            return np.asarray(values)
        out = np.empty(len(self.perm))
        out[self.perm] = self.sign * np.asarray(values)
        return out

    @classmethod
    def from_files(cls, run_dir: str | Path, atom_counts: list[tuple[int, ...]]) -> AimsOrder:
        """Read the two legacy index files of ``run_dir`` and check them against basis_info."""
        run_dir = Path(run_dir)
        details_path, cs_path = run_dir / DETAILS_FILE, run_dir / CS_FILE
        n = sum(n_functions(c) for c in atom_counts)
        table = read_floats(details_path)
        if len(table) != 5 * n:
            raise AimsIOError(f"has {len(table)} numbers, expected 5 per function for {n} functions", path=details_path)
        rows = table.reshape(n, 5)
        if not np.array_equal(rows, np.round(rows)):
            raise AimsIOError("holds non-integer values", path=details_path)
        idx, atom, l, radial, m = (rows[:, c].astype(np.int64) for c in range(5))
        if not np.array_equal(np.sort(idx), np.arange(1, n + 1)):
            raise AimsIOError("the function indices are not a permutation of 1..N", path=details_path)
        if np.any(np.abs(m) > l) or np.any(l < 0):
            raise AimsIOError("has m outside -l..l", path=details_path)
        order = np.lexsort((m, radial, l, atom))  # canonical: atom, l, radial, m
        atom_s, l_s, radial_s, m_s = atom[order], l[order], radial[order], m[order]
        # expected canonical labels from basis_info
        expected = np.array(
            [
                (a + 1, ll, mm)
                for a, counts in enumerate(atom_counts)
                for ll, nr in enumerate(counts)
                for _ in range(nr)
                for mm in range(-ll, ll + 1)
            ],
            dtype=np.int64,
        ).reshape(-1, 3)
        got = np.stack([atom_s, l_s, m_s], axis=1)
        if not np.array_equal(got, expected):
            raise AimsIOError("the (atom, l, m) of the functions disagree with basis_info.out", path=details_path)
        # each (atom, l, radial) must carry m = -l..l exactly once: checked by the label match plus
        # distinct radial indices per block of 2l+1
        block_start = np.concatenate([[True], (np.diff(atom_s) != 0) | (np.diff(l_s) != 0) | (np.diff(radial_s) != 0)])
        sizes = np.diff(np.concatenate([np.flatnonzero(block_start), [n]]))
        if not np.array_equal(sizes, 2 * l_s[block_start] + 1):
            raise AimsIOError("a radial function does not carry m = -l..l exactly once", path=details_path)
        cs = read_floats(cs_path).astype(np.int64) if cs_path.stat().st_size else np.zeros(0, dtype=np.int64)
        flagged = np.zeros(n + 1, dtype=bool)
        if len(cs) and (cs.min() < 1 or cs.max() > n):
            raise AimsIOError(f"indices must lie in 1..{n}", path=cs_path)
        flagged[cs] = True
        rule = np.zeros(n + 1, dtype=bool)
        rule[idx] = (m > 0) & (m % 2 == 1)
        if not np.array_equal(flagged, rule):
            raise AimsIOError(
                "the flipped functions are not exactly those with odd m > 0; refusing to guess the convention", path=cs_path
            )
        perm = idx[order] - 1
        sign = np.where(flagged[idx[order]], -1.0, 1.0)
        return cls(perm, sign, True)


def order_for_run(run_dir: str | Path, version: int, atom_counts: list[tuple[int, ...]]) -> AimsOrder:
    """Identity for FHI-aims >= 240403, else the legacy conversion (or a clear refusal)."""
    run_dir = Path(run_dir)
    n = sum(n_functions(c) for c in atom_counts)
    if version >= FIRST_CANONICAL_VERSION:
        return AimsOrder.identity(n)
    missing = [f for f in (DETAILS_FILE, CS_FILE) if not (run_dir / f).is_file()]
    if missing:
        raise AimsIOError(
            f"FHI-aims {version} (< {FIRST_CANONICAL_VERSION}) writes another m order and sign convention; "
            f"converting needs {' and '.join(missing)} (written with ri_full_output), refusing to import",
            path=run_dir / "aims.out",
        )
    return AimsOrder.from_files(run_dir, atom_counts)
