"""Checking every invariant of a rho-data file, structure by structure."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from os import PathLike

import numpy as np

from .errors import RhoDataError
from .files import RhoFile, open_file
from .records import Structure

#: Relative tolerance of the symmetry of diagonal blocks and of w = S d.
SYMMETRY_RTOL = 1e-10
PROJECTION_RTOL = 1e-8

#: The periodicity patterns producers write: 3D, 2D (third cell vector non-periodic), none.
PBC_PATTERNS = ((True, True, True), (True, True, False), (False, False, False))


def pbc_text(pbc) -> str:
    """``pbc`` as letters, e.g. ``"T T F"``."""
    return " ".join("T" if p else "F" for p in pbc)


@dataclass(frozen=True)
class Problem:
    structure: int | None
    label: str
    field: str
    message: str

    def format(self, path) -> str:
        where = (
            f"structure {self.structure}" + (f" ({self.label})" if self.label else "") if self.structure is not None else "file"
        )
        return f"{path}: {where}: {self.field}: {self.message}"


def validate_file(path: str | PathLike, progress: Callable[[int], None] | None = None) -> list[Problem]:
    """All problems found in the file (an empty list means valid)."""
    try:
        f = open_file(path)
    except RhoDataError as err:
        return [Problem(None, "", "file", str(err).removeprefix(f"{path}: "))]
    with f:
        problems = list(_check_header(f))
        for i in range(len(f)):
            try:
                s = f[i]
            except (RhoDataError, OSError, ValueError) as err:
                problems.append(Problem(i, "", "record", str(err)))
                continue
            problems.extend(_check_structure(f, i, s))
            if progress is not None:
                progress(1)
    return problems


def _check_header(f: RhoFile) -> Iterator[Problem]:
    if f.kind == "dataset" and f.dataset_id != f.file_id:
        yield Problem(None, "", "dataset_id", "a dataset's dataset_id must equal its file_id")
    for sym in f.basis.symbols:
        element = f.basis[sym]
        if element.n_functions == 0:
            yield Problem(None, "", f"basis/{sym}", "has no functions")


def _check_structure(f: RhoFile, i: int, s: Structure) -> Iterator[Problem]:
    def problem(field: str, message: str) -> Problem:
        return Problem(i, s.label, field, message)

    if not np.isfinite(s.positions).all():
        yield problem("positions", "non-finite values")
    if not np.isfinite(s.cell).all():
        yield problem("cell", "non-finite values")
    if s.pbc.any() and abs(np.linalg.det(s.cell)) < 1e-12:
        yield problem("cell", "periodic structure with a zero-volume cell")
    if tuple(bool(p) for p in s.pbc) not in PBC_PATTERNS:
        yield problem("pbc", f"pattern {pbc_text(s.pbc)}: periodic structures are T T T (3D) or T T F (2D)")
    if f.kind in ("dataset", "predictions"):
        missing = sorted({int(z) for z in s.numbers if int(z) not in f.basis})
        if missing:
            yield problem("numbers", f"elements {missing} have no basis functions in the file's basis")
            return
        n = f.basis.n_functions(s.numbers)
        vectors = [("coefficients", s.coefficients), ("projections", s.projections)]
        for t, v in s.targets.items():
            vectors += [(f"targets/{t}/coefficients", v.coefficients), (f"targets/{t}/projections", v.projections)]
        for name, vector in vectors:
            if vector is None:
                continue
            if vector.shape != (n,):
                yield problem(name, f"{vector.size} values, but the basis of its elements has {n} functions")
            elif not np.isfinite(vector).all():
                yield problem(name, f"{int((~np.isfinite(vector)).sum())} non-finite values")
    if s.overlap is not None:
        yield from _check_overlap(s, problem)
    if s.grid is not None:
        g = s.grid
        if not np.isfinite(g.points).all() or not np.isfinite(g.weights).all():
            yield problem("grid", "non-finite points or weights")
        for name, values in g.values.items():
            if not np.isfinite(values).all():
                yield problem(f"fields/{name}", "non-finite values")
    for name, values in s.extras.items():
        if not np.isfinite(values).all():
            yield problem(f"extras/{name}", "non-finite values")


def _check_overlap(s: Structure, problem) -> Iterator[Problem]:
    ov = s.overlap
    assert ov is not None
    if not np.isfinite(ov.values).all():
        yield problem("overlap", "non-finite values")
        return
    pairs = ov.pairs
    if len(pairs) > 1 and not (np.diff(pairs[:, 0] * ov.n_atoms + pairs[:, 1]) > 0).all():
        yield problem("overlap", "atom pairs are not sorted and unique")
    for (a, b), block in ov.blocks():
        if a != b:
            continue
        scale = max(np.abs(block).max(), 1e-300)
        if np.abs(block - block.T).max() > SYMMETRY_RTOL * scale:
            yield problem("overlap", f"diagonal block of atom {a} is not symmetric")
        if (np.diag(block) <= 0).any():
            yield problem("overlap", f"diagonal block of atom {a} has non-positive diagonal entries")
    diagonal = {int(a) for a, b in pairs if a == b}
    if len(diagonal) != ov.n_atoms:
        yield problem("overlap", f"atoms {sorted(set(range(ov.n_atoms)) - diagonal)} have no diagonal block")
        return
    vectors = [("projections", s.coefficients, s.projections)]
    vectors += [(f"targets/{t}/projections", v.coefficients, v.projections) for t, v in s.targets.items()]
    for name, coefficients, projections in vectors:
        if projections is None or coefficients is None or projections.shape != coefficients.shape:
            continue
        error = np.abs(ov.matvec(coefficients) - projections).max()
        if error > PROJECTION_RTOL * max(np.abs(projections).max(), 1e-300):
            yield problem(name, f"w differs from S d by up to {error:.3e} (relative tolerance {PROJECTION_RTOL:g})")
