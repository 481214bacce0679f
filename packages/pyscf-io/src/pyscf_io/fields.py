"""Rebuilding real-space fields of a pyscf-io dataset (the rho-data field builder).

Everything needed is in the dataset: the AO and auxiliary bases per element, charge, spin
and grid level in ``provenance.extra`` (charge and spin also per structure, metadata
``charge`` and ``spin``), the geometry and the SCF density matrix (extra
``density_matrix``) per structure. ``"scf"`` is rho(r) = sum_mn D_mn chi_m(r) chi_n(r), and
each coefficient vector c (canonical order) gives rho(r) = sum_P c_P phi_P(r).

A periodic structure (any ``pbc``) is rebuilt as a PySCF Cell (:mod:`pyscf_io.cell`, with the
stored ``pseudo`` and ``kmesh``): its fields are lattice sums (:mod:`pyscf_io.grid`), ``"scf"`` from
``density_matrix`` (Gamma) or ``density_matrix_k`` (flattened (nk, 2, nao, nao): real and imaginary
parts of D^k, k-points ``cell.make_kpts(kmesh)``), and every value is per unit cell.

- :meth:`PyscfFieldBuilder.build`: on PySCF's DFT grid of the structure at the stored level
  (points in bohr, Becke weights), for integrals; for a cell its uniform grid (mesh = the stored
  ``grid_mesh_a/b/c``, else max(cell.mesh, auxcell.mesh); weights vol / n_points);
- :meth:`PyscfFieldBuilder.build_on_points`: at any points (bohr), for slices and cube files;
- ``coulomb_matrix``, ``nuclear_potential``, ``scf_properties``: rho-data's ``PropertyBuilder``
  (electrostatic properties from coefficients, atomic units, canonical order); molecules only.

Both evaluate the functions in chunks of points of bounded memory (:mod:`pyscf_io.grid`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from rho_data import Grid, RhoFile
from rho_data.elements import symbol
from rho_data.field_builders import SCF_FIELD, FieldRequest
from rho_data.orbital_fields import parse_field

from .basis import canonical_permutation, make_mole, to_pyscf_order
from .errors import PyscfIoError
from .grid import ao_density, aux_density, cell_ao_density, cell_aux_density, dft_grid, uniform_grid, uniform_mesh


def structure_charge_spin(dataset: RhoFile, metadata: dict) -> tuple[int, int]:
    """Charge and 2S of one structure: its own metadata when stored, else the run's settings."""
    extra = dataset.provenance.extra
    charge, spin = metadata.get("charge", np.nan), metadata.get("spin", np.nan)
    return (
        int(extra["charge"]) if not np.isfinite(charge) else int(np.rint(charge)),
        int(extra["spin"]) if not np.isfinite(spin) else int(np.rint(spin)),
    )


def scf_matrix_name(dataset: RhoFile, target: str | None) -> str:
    """The extra holding the AO density matrix of ``target``'s SCF-level field (None: the main target).

    ``density_matrix`` is the total density; any other field T is ``density_matrix@T``.
    """
    name = dataset.target if target is None else target
    if name not in dataset.targets:
        raise PyscfIoError(f"no target '{name}' (the dataset holds {dataset.targets})", path=dataset.path)
    return "density_matrix" if parse_field(name).kind == "density" else f"density_matrix@{name}"


def is_periodic(structure) -> bool:
    """Whether a structure is a cell (periodic in any direction)."""
    return bool(np.any(structure.pbc))


def _not_per_cell(dataset: RhoFile, index: int) -> None:
    if is_periodic(dataset.geometry(index)):
        raise PyscfIoError(
            "is periodic: dipole and electrostatic properties are not defined per cell here",
            path=dataset.path,
            structure=index,
        )


class PyscfFieldBuilder:
    """Builds fields for datasets written by pyscf-io (see :func:`make_field_builder`)."""

    def __init__(self, grid_level: int | None = None, threads: int | None = None):
        self.grid_level = grid_level
        self.threads = threads

    def _set_threads(self) -> None:
        if self.threads is not None:
            from pyscf import lib

            lib.num_threads(self.threads)

    def molecules(self, dataset: RhoFile, index: int):
        """(structure, PySCF Mole of the AO basis, Mole of the auxiliary basis) of one structure."""
        from pyscf import df

        extra = dataset.provenance.extra
        if dataset.provenance.producer != "pyscf-io" or "ao_basis" not in extra:
            raise PyscfIoError("was not written by pyscf-io (no AO basis in its provenance)", path=dataset.path)
        s = dataset[index]
        if is_periodic(s):
            raise PyscfIoError("is periodic: rebuild it as a cell (PyscfFieldBuilder.cells)", path=dataset.path, structure=index)
        charge, spin = structure_charge_spin(dataset, s.metadata)
        mol = make_mole(s.numbers, s.positions, extra["ao_basis"], charge, spin)
        auxmol = df.addons.make_auxmol(mol, {sym: extra["aux_basis"][sym] for sym in {symbol(z) for z in s.numbers}})
        return s, mol, auxmol

    def cells(self, dataset: RhoFile, index: int):
        """(structure, PySCF Cell of the AO basis, Cell of the auxiliary basis) of one periodic structure."""
        from .cell import make_auxcell, make_cell

        extra = dataset.provenance.extra
        if dataset.provenance.producer != "pyscf-io" or "ao_basis" not in extra:
            raise PyscfIoError("was not written by pyscf-io (no AO basis in its provenance)", path=dataset.path)
        s = dataset[index]
        charge, spin = structure_charge_spin(dataset, s.metadata)
        cell = make_cell(s.numbers, s.positions, s.cell, s.pbc, extra["ao_basis"], extra.get("pseudo"), charge, spin)
        auxcell = make_auxcell(cell, {sym: extra["aux_basis"][sym] for sym in {symbol(z) for z in s.numbers}})
        return s, cell, auxcell

    def _system(self, dataset: RhoFile, index: int):
        """(structure, Mole or Cell, auxiliary Mole or Cell) of one structure."""
        return self.cells(dataset, index) if is_periodic(dataset.geometry(index)) else self.molecules(dataset, index)

    def _scf(self, dataset: RhoFile, request: FieldRequest, s, mol, points: np.ndarray) -> np.ndarray | None:
        """The SCF-level field of the request's target at ``points`` (None when its density matrix is not stored)."""
        matrix = scf_matrix_name(dataset, request.target)
        nao = mol.nao_nr()
        if not is_periodic(s):
            return ao_density(mol, s.extras[matrix].reshape(nao, nao), points) if matrix in s.extras else None
        if matrix in s.extras:  # Gamma
            return cell_ao_density(mol, s.extras[matrix].reshape(nao, nao), points)
        matrix_k = matrix.replace("density_matrix", "density_matrix_k", 1)
        if matrix_k not in s.extras:
            return None
        kmesh = dataset.provenance.extra.get("kmesh") or [1, 1, 1]
        kpts = mol.make_kpts([int(n) for n in kmesh])
        values = s.extras[matrix_k]
        if values.size != 2 * len(kpts) * nao * nao:
            raise PyscfIoError(
                f"extra '{matrix_k}' has {values.size} values, kmesh {list(kmesh)} x {nao} AOs need {2 * len(kpts) * nao * nao}",
                path=dataset.path,
                structure=request.index,
            )
        parts = values.reshape(len(kpts), 2, nao, nao)
        return cell_ao_density(mol, parts[:, 0] + 1j * parts[:, 1], points, kpts)

    def _fields(self, dataset: RhoFile, request: FieldRequest, s, mol, auxmol, points: np.ndarray) -> dict[str, np.ndarray]:
        """``"scf"`` (when the density matrix is stored) and one field per coefficient vector at ``points``."""
        if SCF_FIELD in request.coefficients:
            raise PyscfIoError(
                f"a coefficient vector may not be named '{SCF_FIELD}' (the SCF density's name)",
                path=dataset.path,
                structure=request.index,
            )
        values: dict[str, np.ndarray] = {}
        scf = self._scf(dataset, request, s, mol, points)
        if scf is not None:
            values[SCF_FIELD] = scf
        perm = canonical_permutation(auxmol)
        names = list(request.coefficients)
        if names:
            stack = []
            for name in names:
                c = np.asarray(request.coefficients[name], dtype=np.float64)
                if c.shape != perm.shape:
                    raise PyscfIoError(
                        f"coefficients '{name}' have {c.size} values, the basis has {perm.size}",
                        path=dataset.path,
                        structure=request.index,
                    )
                stack.append(to_pyscf_order(c, perm))
            evaluate = cell_aux_density if is_periodic(s) else aux_density
            fields = evaluate(auxmol, np.stack(stack, axis=1), points)
            values.update({name: np.ascontiguousarray(fields[:, k]) for k, name in enumerate(names)})
        return values

    def build(self, dataset: RhoFile, requests: Sequence[FieldRequest]) -> Iterator[tuple[FieldRequest, Grid]]:
        """Per request, PySCF's DFT grid of the structure (a cell: its uniform grid) with ``"scf"`` and the requested fields."""
        self._set_threads()
        level = self.grid_level if self.grid_level is not None else int(dataset.provenance.extra.get("grid_level", 3))
        for request in requests:
            s, mol, auxmol = self._system(dataset, request.index)
            points, weights = uniform_grid(mol, self._mesh(s, mol, auxmol)) if is_periodic(s) else dft_grid(mol, level)
            yield request, Grid(points=points, weights=weights, values=self._fields(dataset, request, s, mol, auxmol, points))

    @staticmethod
    def _mesh(s, cell, auxcell) -> tuple[int, int, int]:
        """The stored uniform mesh of a cell (metadata grid_mesh_a/b/c), else max(cell.mesh, auxcell.mesh)."""
        stored = [s.metadata.get(f"grid_mesh_{axis}", np.nan) for axis in "abc"]
        if all(np.isfinite(n) and n >= 1 for n in stored):
            return tuple(int(n) for n in stored)  # type: ignore[return-value]
        return uniform_mesh(cell, auxcell)

    # ---- rho_data.field_builders.PropertyBuilder ---------------------------------------------
    def coulomb_matrix(self, dataset: RhoFile, index: int) -> np.ndarray:
        """J_PQ = (P|Q) of structure ``index``'s auxiliary functions (canonical order, hartree / e^2)."""
        _not_per_cell(dataset, index)
        self._set_threads()
        _, _, auxmol = self.molecules(dataset, index)
        perm = canonical_permutation(auxmol)
        j = auxmol.intor("int2c2e")
        return np.ascontiguousarray(0.5 * (j + j.T)[np.ix_(perm, perm)])

    def nuclear_potential(self, dataset: RhoFile, index: int) -> np.ndarray:
        """v_P = integral phi_P(r) sum_A Z_A / |r - R_A| dr (canonical order, hartree / e).

        The nuclei are unit point charges (PySCF's ``fakemol_for_charges``: Gaussians of exponent
        1e16, normalised to integral 1), so v = (P|delta_A) Z exactly to machine precision.
        """
        from pyscf import gto

        _not_per_cell(dataset, index)
        self._set_threads()
        _, mol, auxmol = self.molecules(dataset, index)
        nuclei = gto.fakemol_for_charges(mol.atom_coords())
        v = gto.mole.intor_cross("int2c2e", auxmol, nuclei) @ mol.atom_charges().astype(np.float64)
        return np.ascontiguousarray(v[canonical_permutation(auxmol)])

    def scf_properties(self, dataset: RhoFile, index: int) -> dict:
        """Electron count, total dipole (e bohr), Hartree and electron-nuclear energies (hartree) of
        the SCF density, from the stored AO density matrix with exact integrals."""
        from pyscf.scf import hf

        _not_per_cell(dataset, index)
        self._set_threads()
        s, mol, _ = self.molecules(dataset, index)
        if "density_matrix" not in s.extras:
            raise PyscfIoError("has no SCF density matrix (extra 'density_matrix')", path=dataset.path, structure=index)
        nao = mol.nao_nr()
        dm = s.extras["density_matrix"].reshape(nao, nao)
        charges = mol.atom_charges().astype(np.float64)
        with mol.with_common_orig((0.0, 0.0, 0.0)):
            electronic = np.einsum("xij,ji->x", mol.intor("int1e_r"), dm)
        vj = hf.get_jk(mol, dm, with_k=False)[0]
        return {
            "n_electrons": float(np.einsum("ij,ji->", mol.intor("int1e_ovlp"), dm)),
            "dipole_au": charges @ mol.atom_coords() - electronic,
            "hartree_energy_ha": 0.5 * float(np.einsum("ij,ji->", vj, dm)),
            "electron_nuclear_energy_ha": float(np.einsum("ij,ji->", mol.intor("int1e_nuc"), dm)),
        }

    def build_on_points(self, dataset: RhoFile, request: FieldRequest, points_bohr: np.ndarray) -> dict[str, np.ndarray]:
        """``"scf"`` and each requested coefficient vector's field at ``points_bohr`` ((n, 3), bohr; a cell's
        fields are periodic, so points outside it give the values of their image)."""
        points = np.asarray(points_bohr, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 3:
            raise PyscfIoError(f"points must have shape (n, 3), got {points.shape}", path=dataset.path, structure=request.index)
        if not np.isfinite(points).all():
            raise PyscfIoError("points contain NaN or infinite coordinates", path=dataset.path, structure=request.index)
        self._set_threads()
        s, mol, auxmol = self._system(dataset, request.index)
        return self._fields(dataset, request, s, mol, auxmol, np.ascontiguousarray(points))


def make_field_builder(**options) -> PyscfFieldBuilder:
    """The entry point of group ``rho_data.field_builders`` (name ``pyscf-io``).

    Options: ``grid_level`` (default: the level stored with the dataset), ``threads``.
    """
    unknown = set(options) - {"grid_level", "threads"}
    if unknown:
        raise PyscfIoError(f"pyscf-io field builder: unknown options {sorted(unknown)} (known: grid_level, threads)")
    return PyscfFieldBuilder(**options)
