"""A full disk: cheap free-space checks before writing, and a clean exit when a write fails anyway.

HDF5 cannot close a file whose metadata it failed to write: its handle stays dirty and the
library's exit handler then crashes the process (a segfault with no message). When a write to
an HDF5 file fails for lack of space, :func:`abandon_hdf5` points the file's descriptor at
``/dev/null`` so that closing it succeeds without touching the disk again: the file keeps
what was flushed before, exactly as a killed writer leaves it (rho-data's files commit one
structure at a time and are repaired when reopened), and the process ends with one line.
"""

from __future__ import annotations

import contextlib
import os
from os import PathLike

import numpy as np

from rho_data import RhoDataError, Structure
from rho_data.atomic import disk_full, require_free_space

from .errors import DISK_FULL, DiskFull

#: Room for HDF5's chunk allocation and metadata of a new rho-data file (one chunk per column).
HDF5_SLACK = 1 << 20
#: Room for the chunks one more structure may allocate in an existing file.
APPEND_SLACK = 256 << 10


def structure_bytes(structure: Structure) -> int:
    """Bytes of the arrays one structure stores (coefficients, projections, overlap, extras)."""
    arrays = [structure.coefficients, structure.projections, *structure.extras.values()]
    total = sum(np.asarray(a).nbytes for a in arrays if a is not None)
    if structure.overlap is not None:
        total += structure.overlap.values.nbytes
    return int(total + 64 * len(structure.metadata))


def ensure_space(path: str | PathLike, needed_bytes: int) -> None:
    """Refuse (one line, :class:`DiskFull`) when the file system of ``path`` has less than ``needed_bytes`` free."""
    try:
        require_free_space(path, needed_bytes)
    except RhoDataError as err:
        raise DiskFull(f"{err}; finished structures are kept, run the command again when there is room") from None


def abandon_hdf5(rho_file) -> None:
    """Close an HDF5-backed rho-data file after a failed write, without writing anything more."""
    h5 = getattr(rho_file, "h5", None)
    if h5 is None:
        return
    with contextlib.suppress(Exception):
        fd = h5.id.get_vfd_handle()
        null = os.open(os.devnull, os.O_RDWR)
        try:
            os.dup2(null, fd)
        finally:
            os.close(null)
    with contextlib.suppress(Exception):
        rho_file.close()


def disk_full_error(where: str) -> DiskFull:
    return DiskFull(f"{where}: {DISK_FULL}")


__all__ = ["HDF5_SLACK", "abandon_hdf5", "disk_full", "disk_full_error", "ensure_space", "structure_bytes"]


def _ao_functions(shells: list) -> int:
    """Spherical AO functions of one element's PySCF basis ([l, (kappa,) [exp, c1, c2, ...], ...])."""
    total = 0
    for shell in shells:
        l, rows = int(shell[0]), [r for r in shell[1:] if isinstance(r, (list, tuple))]
        total += (2 * l + 1) * (max(len(rows[0]) - 1, 1) if rows else 0)
    return total


def estimate_structure_bytes(ctx, structure) -> int:
    """Upper bound of the bytes one structure takes in a rho-data file (dense overlap, AO density matrix)."""
    from rho_data.elements import symbol

    basis = ctx.basis()
    n_aux = sum(basis[int(z)].n_functions for z in structure.numbers if int(z) in basis)
    n_ao = sum(_ao_functions(ctx.ao[symbol(z)]) for z in structure.numbers if symbol(z) in ctx.ao)
    return 8 * (n_aux * (n_aux + 2) + n_ao * n_ao) + 64 * 32 + 16 * len(structure.numbers)


def require_space_for_run(workdir: PathLike, output: PathLike, ctx, structures: list, pending: list[int]) -> None:
    """Before computing: room for the pending structures' part files and for the whole dataset."""
    from pathlib import Path

    if not pending:
        return
    sizes = [estimate_structure_bytes(ctx, s) for s in structures]
    parts = sum(sizes[i] for i in pending) + HDF5_SLACK
    dataset = sum(sizes) + HDF5_SLACK
    workdir, output = Path(workdir), Path(output)
    try:
        same = os.stat(workdir).st_dev == os.stat(output.parent).st_dev
    except OSError:
        same = False
    if same:
        ensure_space(workdir, parts + dataset)
    else:
        ensure_space(workdir, parts)
        ensure_space(output.parent, dataset)
