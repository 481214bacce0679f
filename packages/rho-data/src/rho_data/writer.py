"""Writing rho-data files: one committed structure at a time, under a writer lock."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from os import PathLike
from pathlib import Path

import h5py
import numpy as np

from .basis import AuxiliaryBasis
from .errors import RhoDataError
from .files import RhoFile
from .header import write_basis
from .provenance import Provenance
from .records import Structure
from .schema import KINDS, SCHEMA_NAME, SCHEMA_VERSION, STANDARD_METADATA, TARGET_NAME, UNITS, columns_of, segments_of
from .store import RaggedStore, lock_for_writing, open_h5


class RhoWriter(RhoFile):
    """Appends structures to a rho-data file, one committed structure at a time.

    Only one writer may have a file open (parallel jobs write one file each, then ``merge``).
    """

    def __init__(self, path: str | PathLike):
        self._lock = lock_for_writing(path)
        try:
            h5 = open_h5(path, "r+")
            super().__init__(path, _h5=h5)
            self.store.truncate_uncommitted()
            self.h5.swmr_mode = True
        except BaseException:
            self._lock.close()
            raise

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._lock.close()

    @classmethod
    def create(
        cls,
        path: str | PathLike,
        kind: str,
        *,
        basis: AuxiliaryBasis | None = None,
        provenance: Provenance | None = None,
        target: str = "electron_density",
        dataset_id: str | None = None,
        projections: bool = True,
        overlap: bool = True,
        metadata: Sequence[str] = tuple(STANDARD_METADATA),
        fields: Sequence[str] = (),
        extras: Sequence[str] = (),
        targets: Sequence[str] = (),
        overwrite: bool = False,
    ) -> RhoWriter:
        """Create a new file (refuses to replace an existing one unless ``overwrite``).

        ``targets`` (datasets only): further targets stored beside ``target`` on the same overlap.
        """
        path = Path(path)
        if kind not in KINDS:
            raise RhoDataError(f"unknown file kind '{kind}', expected one of {KINDS}", path=path)
        if path.exists() and not overwrite:
            raise RhoDataError("already exists; open it with RhoWriter(path) to append", path=path)
        if kind != "grids" and (basis is None or not basis.elements):
            raise RhoDataError(f"a '{kind}' file needs the auxiliary basis", path=path)
        if len(set(metadata)) != len(metadata):
            raise RhoDataError(f"metadata names repeat: {list(metadata)}", path=path)
        _check_targets(path, kind, target, tuple(targets))
        file_id = uuid.uuid4().hex
        with h5py.File(path, "w", libver="latest") as h5:
            h5.attrs["schema"] = SCHEMA_NAME
            h5.attrs["schema_version"] = np.array(SCHEMA_VERSION, dtype=np.int64)
            h5.attrs["kind"] = kind
            h5.attrs["file_id"] = file_id
            h5.attrs["dataset_id"] = file_id if kind == "dataset" else (dataset_id or "")
            h5.attrs["target"] = target
            h5.attrs["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            units = h5.create_group("units")
            for k, v in UNITS.items():
                units.attrs[k] = v
            prov = h5.create_group("provenance")
            for k, v in (provenance or Provenance()).to_attrs().items():
                prov.attrs[k] = v
            if basis is not None and basis.elements:
                write_basis(h5, basis)
            columns = columns_of(
                kind,
                has_projections=projections,
                has_overlap=overlap,
                n_metadata=len(metadata),
                fields=tuple(fields),
                extras=tuple(extras),
                targets=tuple(targets),
            )
            RaggedStore.create_layout(h5, columns, segments_of(kind, tuple(extras)))
            if kind == "dataset" and metadata:
                h5["structures/metadata"].attrs["columns"] = list(metadata)
            if targets:
                h5["structures/targets"].attrs["names"] = list(targets)  # their order (HDF5 lists groups sorted)
        return cls(path)

    def append(self, structure: Structure) -> int:
        """Validate and commit one structure; returns its index."""
        return self.store.append(self._rows(structure, len(self)))

    def _fail(self, i: int, structure: Structure, message: str) -> RhoDataError:
        name = f" ({structure.label})" if structure.label else ""
        return RhoDataError(f"{message}{name}", path=self.path, structure=i)

    def _rows(self, s: Structure, i: int) -> dict[str, np.ndarray]:
        n = s.n_atoms
        if n == 0:
            raise self._fail(i, s, "has no atoms")
        if s.positions.shape != (n, 3) or not np.isfinite(s.positions).all():
            raise self._fail(i, s, f"positions must be {n} x 3 finite values, got shape {s.positions.shape}")
        if s.cell.shape != (3, 3) or s.pbc.shape != (3,):
            raise self._fail(i, s, "cell must be 3 x 3 and pbc 3 booleans")
        if not np.isfinite(s.cell).all():
            raise self._fail(i, s, "cell has non-finite values")
        if s.pbc.any() and abs(np.linalg.det(s.cell)) < 1e-12:
            raise self._fail(i, s, "is periodic but its cell has zero volume")
        rows: dict[str, np.ndarray] = {
            "numbers": s.numbers,
            "positions": s.positions,
            "cell": s.cell,
            "pbc": s.pbc,
            "label": np.frombuffer(s.label.encode(), dtype=np.uint8),
        }
        if self.kind in ("dataset", "predictions"):
            unknown = sorted({int(z) for z in s.numbers} - {self.basis[x].atomic_number for x in self.basis.symbols})
            if unknown:
                raise self._fail(i, s, f"has elements with atomic numbers {unknown} that the auxiliary basis lacks")
            sizes = self.basis.atom_sizes(s.numbers)
            rows["coefficients"] = self._vector(s.coefficients, int(sizes.sum()), "coefficients", i, s)
        if self.kind == "dataset":
            if self.has_projections:
                rows["projections"] = self._vector(s.projections, int(sizes.sum()), "projections", i, s)
            if self.has_overlap:
                if s.overlap is None:
                    raise self._fail(i, s, "has no overlap, which this dataset stores")
                if not np.array_equal(s.overlap.atom_sizes, sizes):
                    raise self._fail(i, s, "overlap blocks do not match the basis sizes of its atoms")
                if not np.isfinite(s.overlap.values).all():
                    raise self._fail(i, s, "overlap has non-finite values")
                rows["overlap_pairs"] = s.overlap.pairs.astype(np.int32)
                rows["overlap_values"] = s.overlap.values
            unknown_meta = set(s.metadata) - set(self.metadata_names)
            if unknown_meta:
                raise self._fail(
                    i, s, f"metadata {sorted(unknown_meta)} not declared when the file was created ({self.metadata_names})"
                )
            if self.metadata_names:
                rows["metadata"] = np.array([s.metadata.get(k, np.nan) for k in self.metadata_names], dtype=np.float64)
        if self.kind in ("predictions", "grids"):
            rows["dataset_index"] = np.int64(s.dataset_index)
        if self.kind == "grids":
            g = s.grid
            if g is None:
                raise self._fail(i, s, "has no grid")
            npts = len(g.points)
            if g.points.shape != (npts, 3) or g.weights.shape != (npts,):
                raise self._fail(i, s, f"grid points must be (n, 3) and weights (n,), got {g.points.shape} and {g.weights.shape}")
            if set(g.values) != set(self.field_names):
                raise self._fail(i, s, f"grid fields {sorted(g.values)} differ from the file's {self.field_names}")
            rows["grid_points"], rows["grid_weights"] = g.points, g.weights
            for name in self.field_names:
                values = np.asarray(g.values[name], dtype=np.float64)
                if values.shape != (npts,):
                    raise self._fail(i, s, f"field '{name}' has shape {values.shape}, the grid has {npts} points")
                rows[f"fields/{name}"] = values
        if self.kind == "dataset":
            rows.update(self._target_rows(s, i, int(sizes.sum())))
        if set(s.extras) != set(self.extra_names):
            raise self._fail(i, s, f"extras {sorted(s.extras)} differ from the file's {self.extra_names}")
        for name in self.extra_names:
            values = np.asarray(s.extras[name], dtype=np.float64).reshape(-1)
            if not np.isfinite(values).all():
                raise self._fail(i, s, f"extra '{name}' has non-finite values")
            rows[f"extras/{name}"] = values
        return rows

    def _target_rows(self, s: Structure, i: int, size: int) -> dict[str, np.ndarray]:
        if set(s.targets) != set(self.extra_targets):
            raise self._fail(i, s, f"targets {sorted(s.targets)} differ from the file's further targets {self.extra_targets}")
        rows = {}
        for name in self.extra_targets:
            values = s.targets[name]
            rows[f"targets/{name}/coefficients"] = self._vector(values.coefficients, size, f"coefficients of '{name}'", i, s)
            if self.has_projections:
                rows[f"targets/{name}/projections"] = self._vector(values.projections, size, f"projections of '{name}'", i, s)
        return rows

    def _vector(self, value, size: int, name: str, i: int, s: Structure) -> np.ndarray:
        if value is None:
            raise self._fail(i, s, f"has no {name}")
        value = np.asarray(value, dtype=np.float64)
        if value.shape != (size,):
            raise self._fail(i, s, f"{name} has {value.size} values, the basis of its atoms has {size} functions")
        if not np.isfinite(value).all():
            raise self._fail(i, s, f"{name} has non-finite values (NaN or inf)")
        return value


def _check_targets(path: Path, kind: str, target: str, targets: tuple[str, ...]) -> None:
    if not targets:
        return
    if kind != "dataset":
        raise RhoDataError(f"only datasets hold further targets, not a '{kind}' file", path=path)
    bad = [t for t in targets if not TARGET_NAME.match(t)]
    if bad:
        raise RhoDataError(f"target names {bad} may hold only letters, digits and _ : + . -", path=path)
    if len(set(targets)) != len(targets) or target in targets:
        raise RhoDataError(f"target names repeat: main '{target}', further {list(targets)}", path=path)


def create_dataset(path: str | PathLike, basis: AuxiliaryBasis, provenance: Provenance | None = None, **options) -> RhoWriter:
    """A new dataset: reference coefficients, projections, overlap and metadata per structure."""
    return RhoWriter.create(path, "dataset", basis=basis, provenance=provenance, **options)


def create_predictions(
    path: str | PathLike, basis: AuxiliaryBasis, dataset_id: str = "", provenance: Provenance | None = None, **options
) -> RhoWriter:
    """A new predictions file, tied to the dataset ``dataset_id`` ("" for bare geometries)."""
    return RhoWriter.create(path, "predictions", basis=basis, dataset_id=dataset_id, provenance=provenance, **options)


def create_grids(
    path: str | PathLike, fields: Sequence[str], dataset_id: str = "", provenance: Provenance | None = None, **options
) -> RhoWriter:
    """A new grid file holding the named fields on each structure's integration grid."""
    return RhoWriter.create(path, "grids", fields=fields, dataset_id=dataset_id, provenance=provenance, **options)
