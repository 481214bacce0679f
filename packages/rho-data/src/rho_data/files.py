"""Writing and reading rho-data files of every kind (dataset, predictions, grids)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from os import PathLike
from pathlib import Path

import h5py
import numpy as np

from .basis import AuxiliaryBasis, ElementBasis, GaussianRadial
from .errors import RhoDataError
from .overlap import BlockSparseOverlap
from .provenance import Provenance
from .records import Grid, Structure
from .schema import KINDS, SCHEMA_NAME, SCHEMA_VERSION, STANDARD_METADATA, UNITS, columns_of, segments_of
from .store import Column, RaggedStore, lock_for_writing, open_h5
from .yaml_input import short_repr


# ---- header (everything but the structures) -----------------------------------------------------
def _write_basis(h5: h5py.File, basis: AuxiliaryBasis) -> None:
    group = h5.create_group("basis")
    for sym in basis.symbols:
        element = basis[sym]
        g = group.create_group(sym)
        g.attrs["atomic_number"] = element.atomic_number
        g.attrs["radial_type"] = "gaussian" if element.gaussians is not None else "numeric"
        g.create_dataset("n_radial", data=np.array(element.n_radial, dtype=np.int32))
        if element.gaussians is not None:
            g.create_dataset("function_l", data=np.array([f.l for f in element.gaussians], dtype=np.int32))
            g.create_dataset("function_nprim", data=np.array([len(f.exponents) for f in element.gaussians], dtype=np.int32))
            g.create_dataset("exponents", data=np.concatenate([f.exponents for f in element.gaussians]).astype(np.float64))
            g.create_dataset("coefficients", data=np.concatenate([f.coefficients for f in element.gaussians]).astype(np.float64))


def _text(attrs, name: str, path, where: str = "root", default: str | None = None) -> str:
    """A text attribute, or a one-line error naming it when it is missing or not text."""
    if name not in attrs:
        if default is not None:
            return default
        raise RhoDataError(f"the {where} attribute '{name}' is missing", path=path)
    value = attrs[name]
    if isinstance(value, (bytes, np.bytes_)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise RhoDataError(f"the {where} attribute '{name}' is not UTF-8 text", path=path) from None
    if not isinstance(value, str):
        raise RhoDataError(f"the {where} attribute '{name}' must be text, got {short_repr(value)}", path=path)
    return value


def _names(value: object) -> list[str]:
    """A list-of-names attribute (a scalar counts as one name)."""
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.atleast_1d(np.asarray(value)).reshape(-1)]


def _array(group: h5py.Group, name: str, kinds: str, path) -> np.ndarray:
    """A 1-D dataset of one of the dtype ``kinds`` ('iu': integers, 'f': floats), or a one-line error."""
    where = f"{group.name}/{name}"
    if not isinstance(group.get(name), h5py.Dataset):
        raise RhoDataError(f"{where} is missing or not a dataset", path=path)
    value = np.asarray(group[name][()])
    if value.ndim != 1 or value.dtype.kind not in kinds:
        expected = {"iu": "integers", "f": "floats"}.get(kinds, kinds)
        raise RhoDataError(f"{where} must be a 1-D array of {expected}, got {value.dtype} of shape {value.shape}", path=path)
    return value


def _read_basis(h5: h5py.File, path) -> AuxiliaryBasis:
    if "basis" not in h5:
        raise RhoDataError("the file has no /basis group", path=path)
    if not isinstance(h5["basis"], h5py.Group):
        raise RhoDataError("/basis is not a group", path=path)
    elements = {}
    for sym, g in h5["basis"].items():
        if not isinstance(g, h5py.Group):
            raise RhoDataError(f"/basis/{sym} is not a group", path=path)
        gaussians = None
        radial_type = _text(g.attrs, "radial_type", path, where=f"/basis/{sym}", default="numeric")
        if radial_type not in ("gaussian", "numeric"):
            raise RhoDataError(
                f"/basis/{sym}: radial_type must be 'gaussian' or 'numeric', got {short_repr(radial_type)}", path=path
            )
        n_radial = _array(g, "n_radial", "iu", path)
        if radial_type == "gaussian":
            ls, nprim = _array(g, "function_l", "iu", path), _array(g, "function_nprim", "iu", path)
            exps, coefs = _array(g, "exponents", "f", path), _array(g, "coefficients", "f", path)
            if len(ls) != len(nprim) or int(nprim.sum()) != len(exps) or len(exps) != len(coefs):
                raise RhoDataError(
                    f"/basis/{sym}: function_l, function_nprim, exponents and coefficients disagree in length", path=path
                )
            starts = np.concatenate([[0], np.cumsum(nprim)])
            gaussians = tuple(
                GaussianRadial(int(l), tuple(exps[a:b]), tuple(coefs[a:b])) for l, a, b in zip(ls, starts[:-1], starts[1:])
            )
        elements[sym] = ElementBasis(sym, tuple(int(n) for n in n_radial), gaussians)
    return AuxiliaryBasis(elements)


def _version(value: object, path) -> tuple[int, int]:
    """The root attribute ``schema_version`` as (major, minor), or a one-line error."""
    array = np.asarray(value)
    if array.dtype.kind not in "iu" or array.shape != (2,):
        raise RhoDataError(
            f"the root attribute 'schema_version' must be two integers (major, minor), got {short_repr(value)}", path=path
        )
    return int(array[0]), int(array[1])


def _check_header(h5: h5py.File, path) -> tuple[int, int]:
    schema = h5.attrs.get("schema")
    if schema is None or not isinstance(schema, (str, bytes)) or _text(h5.attrs, "schema", path) != SCHEMA_NAME:
        raise RhoDataError(
            f"not a rho-data file (root attribute 'schema' is {short_repr(schema)}, expected '{SCHEMA_NAME}')", path=path
        )
    version = _version(h5.attrs.get("schema_version", (0, 0)), path)
    if version[0] != SCHEMA_VERSION[0]:
        newer = "a newer" if version[0] > SCHEMA_VERSION[0] else "an older"
        hint = "install a newer rho-data" if version[0] > SCHEMA_VERSION[0] else "run 'rho-data upgrade'"
        raise RhoDataError(
            f"written in {newer} schema version {version[0]}.{version[1]}; this rho-data reads "
            f"{SCHEMA_VERSION[0]}.x ({SCHEMA_VERSION[0]}.{SCHEMA_VERSION[1]}): {hint}",
            path=path,
        )
    return version  # type: ignore[return-value]


def _names_under(h5: h5py.File, group: str) -> tuple[str, ...]:
    return tuple(h5[group].keys()) if group in h5 else ()


def _columns_in_file(h5: h5py.File, kind: str) -> list[Column]:
    n_metadata = h5["structures/metadata"].shape[1] if "structures/metadata" in h5 else 0
    return columns_of(
        kind,
        has_projections="structures/projections" in h5,
        has_overlap="structures/overlap_values" in h5,
        n_metadata=n_metadata,
        fields=_names_under(h5, "structures/fields"),
        extras=_names_under(h5, "structures/extras"),
    )


# ---- reading ---------------------------------------------------------------------------------------
class RhoFile:
    """A rho-data file opened for reading: ``len``, ``f[i]``, batches; nothing loaded up front."""

    def __init__(self, path: str | PathLike, _h5: h5py.File | None = None):
        self.path = Path(path)
        self.h5 = _h5 if _h5 is not None else open_h5(path, "r")
        try:
            self.version = _check_header(self.h5, path)
            self.kind = _text(self.h5.attrs, "kind", path)
            if self.kind not in KINDS:
                raise RhoDataError(f"unknown file kind {short_repr(self.kind)}", path=path)
            for name in ("file_id", "dataset_id"):
                _text(self.h5.attrs, name, path)
            _text(self.h5.attrs, "target", path, default="")
            self.basis = _read_basis(self.h5, path) if self.kind != "grids" or "basis" in self.h5 else AuxiliaryBasis({})
            self.provenance = Provenance.from_attrs(self.h5["provenance"].attrs) if "provenance" in self.h5 else Provenance()
            self.extra_names: list[str] = list(_names_under(self.h5, "structures/extras"))
            self.store = RaggedStore(
                self.h5, _columns_in_file(self.h5, self.kind), segments_of(self.kind, tuple(self.extra_names)), path
            )
            self.metadata_names: list[str] = (
                _names(self.h5["structures/metadata"].attrs["columns"]) if "structures/metadata" in self.h5 else []
            )
            if "structures/metadata" in self.h5 and len(self.metadata_names) != self.h5["structures/metadata"].shape[1]:
                raise RhoDataError("/structures/metadata: the 'columns' attribute does not name every column", path=path)
            self.field_names: list[str] = list(_names_under(self.h5, "structures/fields"))
        except KeyError as err:
            self.h5.close()
            raise RhoDataError(f"incomplete rho-data file, missing {err}", path=path) from None
        except RhoDataError as err:
            self.h5.close()
            if err.path is None:  # errors of the basis or provenance name no file
                raise RhoDataError(str(err), path=path) from None
            raise
        except (TypeError, ValueError, AttributeError, IndexError) as err:  # a layout no check above foresaw
            self.h5.close()
            raise RhoDataError(f"damaged or not a rho-data file of this version: {str(err).splitlines()[0]}", path=path) from None

    # identity
    @property
    def file_id(self) -> str:
        return _text(self.h5.attrs, "file_id", self.path)

    @property
    def dataset_id(self) -> str:
        """The dataset this file belongs to (its own id for a dataset)."""
        return _text(self.h5.attrs, "dataset_id", self.path)

    @property
    def target(self) -> str:
        return _text(self.h5.attrs, "target", self.path, default="")

    @property
    def has_projections(self) -> bool:
        return "projections" in self.store.columns

    @property
    def has_overlap(self) -> bool:
        return "overlap_values" in self.store.columns

    # access
    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, i: int) -> Structure:
        return self._to_structure(self.store.read(int(i)), int(i) % max(len(self), 1))

    def __iter__(self) -> Iterator[Structure]:
        for i in range(len(self)):
            yield self[i]

    def iter_batches(self, batch_size: int, indices: Sequence[int] | None = None) -> Iterator[list[Structure]]:
        """Structures in lists of ``batch_size`` (all, or the given indices in that order)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        order = range(len(self)) if indices is None else [int(i) for i in indices]
        batch: list[Structure] = []
        for i in order:
            batch.append(self[i])
            if len(batch) == batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def numbers(self, i: int) -> np.ndarray:
        return self.store.read(int(i), ["numbers"])["numbers"]

    def labels(self) -> list[str]:
        return [row.tobytes().decode() for row in self.store.read_segment_rows("label")]

    def metadata_column(self, name: str) -> np.ndarray:
        """One metadata quantity for every structure (NaN where not recorded)."""
        if name not in self.metadata_names:
            raise RhoDataError(f"no metadata '{name}' (the file has {self.metadata_names})", path=self.path)
        return self.store.read_column("metadata")[:, self.metadata_names.index(name)]

    def _to_structure(self, rows: dict[str, np.ndarray], i: int) -> Structure:
        s = Structure(
            numbers=rows["numbers"],
            positions=rows["positions"],
            cell=rows["cell"],
            pbc=rows["pbc"],
            label=rows["label"].tobytes().decode(),
        )
        if "coefficients" in rows:
            s.coefficients = rows["coefficients"]
        if "projections" in rows:
            s.projections = rows["projections"]
        if "overlap_values" in rows:
            s.overlap = BlockSparseOverlap(self.basis.atom_sizes(s.numbers), rows["overlap_pairs"], rows["overlap_values"])
        if "metadata" in rows:
            s.metadata = {n: float(v) for n, v in zip(self.metadata_names, rows["metadata"]) if not np.isnan(v)}
        if "dataset_index" in rows:
            s.dataset_index = int(rows["dataset_index"])
        if "grid_points" in rows:
            s.grid = Grid(rows["grid_points"], rows["grid_weights"], {n: rows[f"fields/{n}"] for n in self.field_names})
        s.extras = {n: rows[f"extras/{n}"] for n in self.extra_names if f"extras/{n}" in rows}
        return s

    # lifetime
    def close(self) -> None:
        self.h5.close()

    def __enter__(self) -> RhoFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_file(path: str | PathLike, kind: str | None = None) -> RhoFile:
    """Open any rho-data file for reading; with ``kind``, refuse files of another kind."""
    f = RhoFile(path)
    if kind is not None and f.kind != kind:
        f.close()
        raise RhoDataError(f"is a rho-data '{f.kind}' file, expected a '{kind}' file", path=path)
    return f


def open_dataset(path: str | PathLike) -> RhoFile:
    return open_file(path, "dataset")


def open_predictions(path: str | PathLike) -> RhoFile:
    return open_file(path, "predictions")


def open_grids(path: str | PathLike) -> RhoFile:
    return open_file(path, "grids")


# ---- writing ----------------------------------------------------------------------------------------
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
        overwrite: bool = False,
    ) -> RhoWriter:
        """Create a new file (refuses to replace an existing one unless ``overwrite``)."""
        path = Path(path)
        if kind not in KINDS:
            raise RhoDataError(f"unknown file kind '{kind}', expected one of {KINDS}", path=path)
        if path.exists() and not overwrite:
            raise RhoDataError("already exists; open it with RhoWriter(path) to append", path=path)
        if kind != "grids" and (basis is None or not basis.elements):
            raise RhoDataError(f"a '{kind}' file needs the auxiliary basis", path=path)
        if len(set(metadata)) != len(metadata):
            raise RhoDataError(f"metadata names repeat: {list(metadata)}", path=path)
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
                _write_basis(h5, basis)
            columns = columns_of(
                kind,
                has_projections=projections,
                has_overlap=overlap,
                n_metadata=len(metadata),
                fields=tuple(fields),
                extras=tuple(extras),
            )
            RaggedStore.create_layout(h5, columns, segments_of(kind, tuple(extras)))
            if kind == "dataset" and metadata:
                h5["structures/metadata"].attrs["columns"] = list(metadata)
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
        if set(s.extras) != set(self.extra_names):
            raise self._fail(i, s, f"extras {sorted(s.extras)} differ from the file's {self.extra_names}")
        for name in self.extra_names:
            values = np.asarray(s.extras[name], dtype=np.float64).reshape(-1)
            if not np.isfinite(values).all():
                raise self._fail(i, s, f"extra '{name}' has non-finite values")
            rows[f"extras/{name}"] = values
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
