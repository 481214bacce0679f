"""Periodic structures as PySCF cells: geometry checks, the AO and auxiliary cells, the SCF.

A structure is periodic when its pbc is T T T (3D) or T T F (2D: the third lattice vector spans the
vacuum, PySCF's ``dimension = 2``). Every Cell of pyscf-io is built here (run and field builder), so
the two always agree on the lattice sums and on the normalisation of the auxiliary functions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .basis import BasisSpec, build_system
from .errors import PyscfIoError

#: The pbc patterns pyscf-io computes: 3D and 2D (vacuum along the third lattice vector).
DIMENSIONS = {(True, True, True): 3, (True, True, False): 2}
#: Stored in provenance.extra.cell_convention.
CELL_CONVENTION = (
    "lattice vectors as rows, Angstrom (rho-data cell); PySCF Cell.a in Angstrom, dimension 3 or 2 (vacuum along a3)"
)
HARTREE_EV = 27.211386245988  # CODATA 2018
#: Cells smaller than this (Angstrom^3) are refused as having no volume.
MIN_VOLUME = 1e-3


def pbc_text(pbc: Sequence[bool]) -> str:
    return " ".join("T" if p else "F" for p in pbc)


def cell_dimension(pbc: Sequence[bool]) -> int:
    """3 for pbc T T T, 2 for T T F; other patterns raise."""
    key = tuple(bool(p) for p in pbc)
    if key not in DIMENSIONS:
        raise PyscfIoError(
            f"pbc {pbc_text(key)} is not computed: use T T T (bulk) or T T F (2D, vacuum along the third lattice vector)"
        )
    return DIMENSIONS[key]


def cell_problem(lattice: np.ndarray, pbc: Sequence[bool]) -> str | None:
    """Why a frame's cell cannot be computed (one line), or None: pbc pattern, cell without pbc, zero volume."""
    lattice = np.asarray(lattice, dtype=np.float64).reshape(3, 3)
    periodic = any(bool(p) for p in pbc)
    if not np.all(np.isfinite(lattice)):
        return "its lattice vectors are not finite numbers"
    if not periodic:
        if np.any(lattice != 0.0):
            return (
                "has lattice vectors but pbc F F F: a periodic structure needs pbc T T T or T T F, "
                "a molecule no Lattice (drop it from the extxyz comment line)"
            )
        return None
    try:
        cell_dimension(pbc)
    except PyscfIoError as err:
        return str(err)
    volume = abs(float(np.linalg.det(lattice)))
    if volume < MIN_VOLUME:
        return f"its cell has zero volume ({volume:.3g} A^3; pbc {pbc_text(pbc)} needs three independent lattice vectors)"
    return None


def closest_pair(positions: np.ndarray, lattice: np.ndarray, pbc: Sequence[bool]) -> tuple[int, int, float]:
    """(i, j, distance in Angstrom) of the closest two atoms, over all periodic images for a cell
    (ASE's general minimum-image search; i = j: an atom and its own image); (0, 0, inf) for one atom
    of a molecule."""
    from ase.geometry import get_distances

    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    periodic = np.asarray(pbc, dtype=bool)
    best = (0, 0, float("inf"))
    if len(positions) > 1:
        if periodic.any():
            _, dist = get_distances(positions, cell=np.asarray(lattice), pbc=periodic)
        else:
            _, dist = get_distances(positions)
        dist = dist + np.eye(len(positions)) * 1e9
        i, j = np.unravel_index(np.argmin(dist), dist.shape)
        best = (int(min(i, j)), int(max(i, j)), float(dist[i, j]))
    if periodic.any():
        lattice = np.asarray(lattice, dtype=np.float64)
        shortest = min(float(np.linalg.norm(lattice[k])) for k in range(3) if periodic[k])
        if shortest < best[2]:
            best = (0, 0, shortest)  # every atom meets its own image at the shortest lattice vector
    return best


def make_cell(
    numbers,
    positions_angstrom,
    lattice_angstrom,
    pbc,
    basis: BasisSpec,
    pseudo: str | None,
    charge: int = 0,
    spin: int = 0,
):
    """A built PySCF ``Cell`` (Angstrom input, spherical functions, quiet), 3D or 2D by ``pbc``."""
    from pyscf.pbc import gto

    lattice = np.asarray(lattice_angstrom, dtype=np.float64).reshape(3, 3)
    extra = {"pseudo": pseudo} if pseudo else {}
    return build_system(
        gto.Cell(), numbers, positions_angstrom, basis, charge, spin, a=lattice, dimension=cell_dimension(pbc), **extra
    )


def make_auxcell(cell, aux: BasisSpec):
    """The cell of the auxiliary basis: the AO cell's atoms, lattice, dimension and precision, the
    functions of ``aux`` as PySCF normalises any basis (so the coefficients belong to the dataset's
    GaussianRadial basis; PySCF's ``pbc.df.make_auxcell`` would rescale each s function to unit
    charge), no pseudopotential; its lattice-sum radius and mesh come from its own functions."""
    from pyscf.pbc import gto

    auxcell = gto.Cell()
    auxcell.atom = cell.atom
    auxcell.a = cell.a
    auxcell.unit = cell.unit
    auxcell.dimension = cell.dimension
    auxcell.precision = cell.precision
    auxcell.basis = aux
    auxcell.spin = sum(int(z) for z in cell.atom_charges()) % 2 if cell.pseudo is None else 0
    auxcell.cart = False
    auxcell.verbose = 0
    auxcell.build(parse_arg=False, dump_input=False)
    return auxcell


def kpoints(cell, kmesh: Sequence[int]) -> np.ndarray | None:
    """The Monkhorst-Pack k-points of ``kmesh`` (1/bohr, PySCF's ``cell.make_kpts``), None for the Gamma point."""
    if list(kmesh) == [1, 1, 1]:
        return None
    return np.asarray(cell.make_kpts([int(n) for n in kmesh]))


def scf_method(settings: dict) -> str:
    """The SCF integral scheme of setting ``cell_scf``; ``auto`` is gdf (Gaussian density fitting,
    ``.density_fit()``). multigrid is faster but opt-in: PySCF's Gamma-point ``MultiGridNumInt2``
    converged one of 18 rattled Si8 cells to a state 2 Ha below its neighbours (gdf: the normal state).
    multigrid integrates a density functional only: with ``xc: HF`` it is refused."""
    method = settings["cell_scf"]
    if method == "multigrid" and settings["xc"].upper() == "HF":
        raise PyscfIoError("cell_scf multigrid needs a density functional (xc HF): use gdf or fftdf")
    return "gdf" if method == "auto" else method


def make_cell_scf(cell, settings: dict, kpts: np.ndarray | None):
    """The restricted Kohn-Sham (or HF) object of a closed-shell cell at Gamma (``kpts`` None) or on
    a k-mesh, with the integral scheme of :func:`scf_method` (multigrid, gdf, fftdf), not run; Fermi-Dirac
    occupations of width ``cell_smearing_ev`` when it is > 0 (cells whose gap closes at their k-points,
    e.g. an 8-atom silicon cell at the Gamma point, converge only with it)."""
    from pyscf.pbc import dft, scf

    method = scf_method(settings)
    hf = settings["xc"].upper() == "HF"
    if hf:
        mf = scf.RHF(cell) if kpts is None else scf.KRHF(cell, kpts)
    else:
        mf = dft.RKS(cell) if kpts is None else dft.KRKS(cell, kpts)
        mf.xc = settings["xc"]
    if method == "multigrid":
        from pyscf.pbc.dft.multigrid import MultiGridNumInt, MultiGridNumInt2

        # the pair-based MultiGridNumInt2 is 5x faster per cycle (Si8) but Gamma-point only
        mf._numint = MultiGridNumInt2(cell) if kpts is None else MultiGridNumInt(cell)
    elif method == "gdf":
        mf = mf.density_fit(auxbasis=settings["scf_aux_basis"])
    if settings["cell_smearing_ev"] > 0:
        from pyscf.pbc.scf.addons import smearing_

        mf = smearing_(mf, sigma=settings["cell_smearing_ev"] / HARTREE_EV, method="fermi")
    mf.conv_tol = settings["scf_conv_tol"]
    mf.max_cycle = settings["scf_max_cycle"]
    mf.verbose = 0
    return mf
