"""The header of a rho-data file: root attributes, the auxiliary basis, the version check."""

from __future__ import annotations

import h5py
import numpy as np

from .basis import AuxiliaryBasis, ElementBasis, GaussianRadial
from .errors import RhoDataError
from .schema import SCHEMA_NAME, SCHEMA_VERSION, columns_of
from .store import Column
from .yaml_input import short_repr


# ---- header (everything but the structures) -----------------------------------------------------
def write_basis(h5: h5py.File, basis: AuxiliaryBasis) -> None:
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


def text_attr(attrs, name: str, path, where: str = "root", default: str | None = None) -> str:
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


def names_attr(value: object) -> list[str]:
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


def read_basis(h5: h5py.File, path) -> AuxiliaryBasis:
    if "basis" not in h5:
        raise RhoDataError("the file has no /basis group", path=path)
    if not isinstance(h5["basis"], h5py.Group):
        raise RhoDataError("/basis is not a group", path=path)
    elements = {}
    for sym, g in h5["basis"].items():
        if not isinstance(g, h5py.Group):
            raise RhoDataError(f"/basis/{sym} is not a group", path=path)
        gaussians = None
        radial_type = text_attr(g.attrs, "radial_type", path, where=f"/basis/{sym}", default="numeric")
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


def version_attribute(value: object, path) -> tuple[int, int]:
    """The root attribute ``schema_version`` as (major, minor), or a one-line error."""
    array = np.asarray(value)
    if array.dtype.kind not in "iu" or array.shape != (2,):
        raise RhoDataError(
            f"the root attribute 'schema_version' must be two integers (major, minor), got {short_repr(value)}", path=path
        )
    return int(array[0]), int(array[1])


def check_header(h5: h5py.File, path) -> tuple[int, int]:
    schema = h5.attrs.get("schema")
    if schema is None or not isinstance(schema, (str, bytes)) or text_attr(h5.attrs, "schema", path) != SCHEMA_NAME:
        raise RhoDataError(
            f"not a rho-data file (root attribute 'schema' is {short_repr(schema)}, expected '{SCHEMA_NAME}')", path=path
        )
    version = version_attribute(h5.attrs.get("schema_version", (0, 0)), path)
    if version[0] != SCHEMA_VERSION[0]:
        newer = "a newer" if version[0] > SCHEMA_VERSION[0] else "an older"
        hint = "install a newer rho-data" if version[0] > SCHEMA_VERSION[0] else "run 'rho-data upgrade'"
        raise RhoDataError(
            f"written in {newer} schema version {version[0]}.{version[1]}; this rho-data reads "
            f"{SCHEMA_VERSION[0]}.x ({SCHEMA_VERSION[0]}.{SCHEMA_VERSION[1]}): {hint}",
            path=path,
        )
    return version  # type: ignore[return-value]


def names_under(h5: h5py.File, group: str) -> tuple[str, ...]:
    return tuple(h5[group].keys()) if group in h5 else ()


def columns_in_file(h5: h5py.File, kind: str) -> list[Column]:
    n_metadata = h5["structures/metadata"].shape[1] if "structures/metadata" in h5 else 0
    return columns_of(
        kind,
        has_projections="structures/projections" in h5,
        has_overlap="structures/overlap_values" in h5,
        n_metadata=n_metadata,
        fields=names_under(h5, "structures/fields"),
        extras=names_under(h5, "structures/extras"),
        targets=names_under(h5, "structures/targets") if kind == "dataset" else (),
    )
