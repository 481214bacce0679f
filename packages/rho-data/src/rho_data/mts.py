"""Conversion to and from metatensor TensorMaps (needs the ``metatensor`` extra).

Coefficients: keys ``(o3_lambda, o3_sigma, center_type)``, samples ``(system, atom)``,
components ``[o3_mu]``, properties ``[n]``; block values have shape (atoms, 2l+1, n_radial[l]).

Overlap: keys ``(center_1_type, center_2_type)``, samples ``(system, atom_1, atom_2)`` with
atom_1 <= atom_2 (the stored pairs), components ``[l1_n1_m1]`` and properties ``[l2_n2_m2]``
(the function indices of each atom in canonical order); values are the blocks as stored (no
factor 2 on off-diagonal pairs, unlike rholearn's processed files).

Both conversions are exact: converting back gives the same bits.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .atomic import atomic_output
from .basis import AuxiliaryBasis
from .errors import RhoDataError
from .overlap import BlockSparseOverlap

try:
    import metatensor
    from metatensor import Labels, TensorBlock, TensorMap
except ImportError:  # pragma: no cover - exercised only without the extra
    metatensor = None


def _require() -> None:
    if metatensor is None:
        raise RhoDataError("metatensor is not installed: pip install 'rho-data[metatensor]'")


def coefficients_to_tensormap(
    numbers: Sequence[np.ndarray], coefficients: Sequence[np.ndarray], basis: AuxiliaryBasis, systems: Sequence[int] | None = None
) -> TensorMap:
    """Flat canonical coefficient vectors of several structures -> one TensorMap."""
    _require()
    systems = list(range(len(numbers))) if systems is None else list(systems)
    samples: dict[tuple[int, int], list[tuple[int, int]]] = {}
    values: dict[tuple[int, int], list[np.ndarray]] = {}
    for system, z_list, vector in zip(systems, numbers, coefficients):
        sizes = basis.atom_sizes(z_list)
        vector = np.asarray(vector)
        if len(vector) != sizes.sum():
            raise RhoDataError(f"structure {system}: {len(vector)} coefficients, its atoms need {sizes.sum()}")
        starts = np.concatenate([[0], np.cumsum(sizes)])
        for atom, z in enumerate(z_list):
            element = basis[int(z)]
            atom_vector = vector[starts[atom] : starts[atom + 1]]
            for l, sl in element.l_slices():
                key = (l, int(z))
                samples.setdefault(key, []).append((system, atom))
                values.setdefault(key, []).append(atom_vector[sl].reshape(element.n_radial[l], 2 * l + 1).T)
    keys = sorted(samples)
    blocks = []
    for l, z in keys:
        n_radial = basis[z].n_radial[l]
        blocks.append(
            TensorBlock(
                values=np.stack(values[(l, z)]),
                samples=Labels(["system", "atom"], np.array(samples[(l, z)], dtype=np.int32)),
                components=[Labels(["o3_mu"], np.arange(-l, l + 1, dtype=np.int32).reshape(-1, 1))],
                properties=Labels(["n"], np.arange(n_radial, dtype=np.int32).reshape(-1, 1)),
            )
        )
    key_values = np.array([(l, 1, z) for l, z in keys], dtype=np.int32).reshape(-1, 3)
    return TensorMap(Labels(["o3_lambda", "o3_sigma", "center_type"], key_values), blocks)


def tensormap_to_coefficients(
    tensor: TensorMap, numbers: Sequence[np.ndarray], basis: AuxiliaryBasis, systems: Sequence[int] | None = None
) -> list[np.ndarray]:
    """The inverse of :func:`coefficients_to_tensormap`."""
    _require()
    systems = list(range(len(numbers))) if systems is None else list(systems)
    position = {s: k for k, s in enumerate(systems)}
    vectors = [np.zeros(basis.n_functions(z)) for z in numbers]
    atom_starts = [np.concatenate([[0], np.cumsum(basis.atom_sizes(z))]) for z in numbers]
    filled = [np.zeros(len(v), dtype=bool) for v in vectors]
    for key, block in tensor.items():
        l, z = int(key["o3_lambda"]), int(key["center_type"])
        sl = dict(basis[z].l_slices())[l]
        for (system, atom), value in zip(block.samples.values, block.values):
            k = position[int(system)]
            start = atom_starts[k][int(atom)]
            vectors[k][start + sl.start : start + sl.stop] = np.asarray(value).T.reshape(-1)
            filled[k][start + sl.start : start + sl.stop] = True
    for k, mask in enumerate(filled):
        if not mask.all():
            raise RhoDataError(f"system {systems[k]}: the TensorMap misses {int((~mask).sum())} coefficients")
    return vectors


def overlap_to_tensormap(
    numbers: Sequence[np.ndarray], overlaps: Sequence[BlockSparseOverlap], systems: Sequence[int] | None = None
) -> TensorMap:
    """Block-sparse overlaps of several structures -> one TensorMap of atom-pair blocks."""
    _require()
    systems = list(range(len(numbers))) if systems is None else list(systems)
    samples: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
    values: dict[tuple[int, int], list[np.ndarray]] = {}
    for system, z_list, overlap in zip(systems, numbers, overlaps):
        for (i, j), block in overlap.blocks():
            key = (int(z_list[i]), int(z_list[j]))
            samples.setdefault(key, []).append((system, i, j))
            values.setdefault(key, []).append(block)
    keys = sorted(samples)
    blocks = [
        TensorBlock(
            values=np.stack(values[key]),
            samples=Labels(["system", "atom_1", "atom_2"], np.array(samples[key], dtype=np.int32)),
            components=[Labels(["l1_n1_m1"], np.arange(values[key][0].shape[0], dtype=np.int32).reshape(-1, 1))],
            properties=Labels(["l2_n2_m2"], np.arange(values[key][0].shape[1], dtype=np.int32).reshape(-1, 1)),
        )
        for key in keys
    ]
    return TensorMap(Labels(["center_1_type", "center_2_type"], np.array(keys, dtype=np.int32).reshape(-1, 2)), blocks)


def tensormap_to_overlaps(
    tensor: TensorMap, numbers: Sequence[np.ndarray], basis: AuxiliaryBasis, systems: Sequence[int] | None = None
) -> list[BlockSparseOverlap]:
    """The inverse of :func:`overlap_to_tensormap`."""
    _require()
    systems = list(range(len(numbers))) if systems is None else list(systems)
    position = {s: k for k, s in enumerate(systems)}
    blocks: list[dict[tuple[int, int], np.ndarray]] = [{} for _ in numbers]
    for _, block in tensor.items():
        for (system, i, j), value in zip(block.samples.values, block.values):
            blocks[position[int(system)]][(int(i), int(j))] = np.asarray(value)
    return [BlockSparseOverlap.from_blocks(basis.atom_sizes(z), b) for z, b in zip(numbers, blocks)]


def save(path, tensor: TensorMap, *, overwrite: bool = True) -> None:
    """Write a TensorMap as a metatensor ``.mts`` file (through a temporary file: a failure keeps the old one)."""
    _require()
    with atomic_output(path, overwrite=overwrite, what="export") as tmp:
        with open(tmp, "wb") as handle:
            metatensor.save(handle, tensor)
