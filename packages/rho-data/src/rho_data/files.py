"""Reading rho-data files of every kind (dataset, predictions, grids): whole structures or single columns."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from os import PathLike
from pathlib import Path

import h5py
import numpy as np

from .basis import AuxiliaryBasis
from .errors import RhoDataError
from .header import check_header, columns_in_file, names_attr, names_under, read_basis, text_attr
from .overlap import BlockSparseOverlap
from .provenance import Provenance
from .records import Grid, Structure, TargetValues
from .schema import KINDS, segments_of
from .store import RaggedStore, open_h5
from .targets import further_targets, resolve_target, target_column
from .yaml_input import short_repr

#: What :meth:`RhoFile.read` can read of a structure besides its geometry (numbers, positions, cell, pbc, label).
PARTS = ("geometry", "coefficients", "projections", "overlap", "metadata", "dataset_index", "grid", "extras", "targets")
GEOMETRY_COLUMNS = ("numbers", "positions", "cell", "pbc", "label")


# ---- reading ---------------------------------------------------------------------------------------
class RhoFile:
    """A rho-data file opened for reading: ``len``, ``f[i]``, batches; nothing loaded up front."""

    def __init__(self, path: str | PathLike, _h5: h5py.File | None = None):
        self.path = Path(path)
        self.h5 = _h5 if _h5 is not None else open_h5(path, "r")
        try:
            self.version = check_header(self.h5, path)
            self.kind = text_attr(self.h5.attrs, "kind", path)
            if self.kind not in KINDS:
                raise RhoDataError(f"unknown file kind {short_repr(self.kind)}", path=path)
            for name in ("file_id", "dataset_id"):
                text_attr(self.h5.attrs, name, path)
            text_attr(self.h5.attrs, "target", path, default="")
            self.basis = read_basis(self.h5, path) if self.kind != "grids" or "basis" in self.h5 else AuxiliaryBasis({})
            self.provenance = Provenance.from_attrs(self.h5["provenance"].attrs) if "provenance" in self.h5 else Provenance()
            self.extra_names: list[str] = list(names_under(self.h5, "structures/extras"))
            self.store = RaggedStore(
                self.h5, columns_in_file(self.h5, self.kind), segments_of(self.kind, tuple(self.extra_names)), path
            )
            self.metadata_names: list[str] = (
                names_attr(self.h5["structures/metadata"].attrs["columns"]) if "structures/metadata" in self.h5 else []
            )
            if "structures/metadata" in self.h5 and len(self.metadata_names) != self.h5["structures/metadata"].shape[1]:
                raise RhoDataError("/structures/metadata: the 'columns' attribute does not name every column", path=path)
            self.field_names: list[str] = list(names_under(self.h5, "structures/fields"))
            #: A dataset's further targets (schema 1.1), beside the main one (:attr:`target`).
            self.extra_targets: list[str] = further_targets(self.h5, self.kind, path)
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
        return text_attr(self.h5.attrs, "file_id", self.path)

    @property
    def dataset_id(self) -> str:
        """The dataset this file belongs to (its own id for a dataset)."""
        return text_attr(self.h5.attrs, "dataset_id", self.path)

    @property
    def target(self) -> str:
        return text_attr(self.h5.attrs, "target", self.path, default="")

    @property
    def targets(self) -> list[str]:
        """Every target the file holds coefficients of: the main one first, then the further ones."""
        return [self.target, *self.extra_targets]

    def target_column(self, name: str, target: str | None) -> str:
        """The column of ``name`` (coefficients or projections) of ``target`` (None: the main target)."""
        return target_column(name, target, self.target, self.extra_targets, self.path)

    def resolve_target(self, asked: str | None) -> str:
        """The stored target a name means (``density`` = ``electron_density``; None: the main target)."""
        return resolve_target(asked, self.targets, self.path)

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
        """Structure ``i`` with everything the file stores about it."""
        return self.read(i, PARTS)

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

    # per-column reads: each reads only the columns it names
    def read(self, i: int, parts: Iterable[str] = PARTS) -> Structure:
        """Structure ``i`` with its geometry and the named ``parts`` (see ``PARTS``) that the file stores.

        Parts the file's kind does not store stay unset; a name outside ``PARTS`` is an error.
        """
        wanted = set(parts)
        unknown = sorted(wanted - set(PARTS))
        if unknown:
            raise ValueError(f"unknown structure parts {unknown}, expected some of {list(PARTS)}")
        names = [n for part in PARTS if part in wanted for n in self._part_columns(part)]
        return self._to_structure(self.store.read(int(i), list(dict.fromkeys([*GEOMETRY_COLUMNS, *names]))))

    def read_many(self, indices: Iterable[int], parts: Iterable[str] = PARTS) -> list[Structure]:
        """:meth:`read` for each of ``indices``, in that order."""
        parts = tuple(parts)
        return [self.read(int(i), parts) for i in indices]

    def geometry(self, i: int) -> Structure:
        """Numbers, positions (Angstrom), cell, pbc and label of structure ``i``; nothing else is read."""
        return self.read(i, ("geometry",))

    def geometries(self, indices: Iterable[int] | None = None) -> list[Structure]:
        """The geometries of all structures (whole columns at once) or of ``indices``, in order."""
        if indices is not None:
            return self.read_many(indices, ("geometry",))
        rows = {n: self.store.read_segment_rows(n) for n in ("numbers", "positions", "label")}
        cells, pbcs = self.store.read_column("cell"), self.store.read_column("pbc")
        return [
            self._to_structure({"numbers": z, "positions": r, "cell": c, "pbc": p, "label": b})
            for z, r, c, p, b in zip(rows["numbers"], rows["positions"], cells, pbcs, rows["label"])
        ]

    def numbers(self, i: int) -> np.ndarray:
        """Atomic numbers of structure ``i``."""
        return self._column(i, "numbers")

    def coefficients(self, i: int, target: str | None = None) -> np.ndarray:
        """The flat coefficient vector c of structure ``i`` (canonical order, see rho_data.layout),
        of the main target or of the named one."""
        return self._column(i, self.target_column("coefficients", target))

    def coefficients_many(self, indices: Iterable[int], target: str | None = None) -> list[np.ndarray]:
        """:meth:`coefficients` for each of ``indices``, in that order."""
        return [self.coefficients(int(i), target) for i in indices]

    def overlap(self, i: int) -> BlockSparseOverlap:
        """The block-sparse overlap S of structure ``i``'s auxiliary basis."""
        self._require("overlap_values", "overlap")
        rows = self.store.read(int(i), ["numbers", "overlap_pairs", "overlap_values"])
        return BlockSparseOverlap(self.basis.atom_sizes(rows["numbers"]), rows["overlap_pairs"], rows["overlap_values"])

    def projections(self, i: int, target: str | None = None) -> np.ndarray:
        """w = S d of structure ``i`` (main or named target): the stored projections, or S times the
        coefficients when none are stored."""
        if self.has_projections:
            return self._column(i, self.target_column("projections", target))
        return self.overlap(i).matvec(self.coefficients(i, target))

    def metadata(self, i: int) -> dict[str, float]:
        """The metadata recorded for structure ``i`` (names absent where not recorded)."""
        if not self.metadata_names:
            return {}
        return {n: float(v) for n, v in zip(self.metadata_names, self._column(i, "metadata")) if not np.isnan(v)}

    def dataset_index(self, i: int) -> int:
        """The dataset structure that row ``i`` of a predictions or grids file belongs to."""
        return int(self._column(i, "dataset_index"))

    def dataset_indices(self) -> np.ndarray:
        """:meth:`dataset_index` of every row, as one array."""
        self._require("dataset_index", "dataset indices")
        return self.store.read_column("dataset_index").astype(np.int64)

    def labels(self) -> list[str]:
        return [row.tobytes().decode() for row in self.store.read_segment_rows("label")]

    def metadata_column(self, name: str) -> np.ndarray:
        """One metadata quantity for every structure (NaN where not recorded)."""
        if name not in self.metadata_names:
            raise RhoDataError(f"no metadata '{name}' (the file has {self.metadata_names})", path=self.path)
        return self.store.read_column("metadata")[:, self.metadata_names.index(name)]

    def _require(self, column: str, what: str) -> None:
        if column not in self.store.columns:
            raise RhoDataError(f"this '{self.kind}' file stores no {what}", path=self.path)

    def _column(self, i: int, name: str) -> np.ndarray:
        self._require(name, name.replace("_", " "))
        return self.store.read(int(i), [name])[name]

    def _part_columns(self, part: str) -> list[str]:
        names = {
            "geometry": list(GEOMETRY_COLUMNS),
            "coefficients": ["coefficients"],
            "projections": ["projections"],
            "overlap": ["overlap_pairs", "overlap_values"],
            "metadata": ["metadata"],
            "dataset_index": ["dataset_index"],
            "grid": ["grid_points", "grid_weights", *(f"fields/{n}" for n in self.field_names)],
            "extras": [f"extras/{n}" for n in self.extra_names],
            "targets": [f"targets/{t}/{n}" for t in self.extra_targets for n in ("coefficients", "projections")],
        }[part]
        return [n for n in names if n in self.store.columns]

    def _to_structure(self, rows: dict[str, np.ndarray]) -> Structure:
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
        s.targets = {
            t: TargetValues(rows[f"targets/{t}/coefficients"], rows.get(f"targets/{t}/projections"))
            for t in self.extra_targets
            if f"targets/{t}/coefficients" in rows
        }
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
