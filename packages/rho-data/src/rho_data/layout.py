"""Between flat coefficient vectors (canonical order atom -> l -> n -> m) and per-key blocks.

A key is (o3_lambda, center_type) with o3_sigma = +1; its block holds, for every atom of
that element in a batch of structures (in structure, atom order), an (n_radial, 2l + 1) array
of indices into the flat vector, and its values have shape (atoms, 2l + 1, n_radial).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .basis import AuxiliaryBasis
from .elements import atomic_number

Key = tuple[int, int]  # (o3_lambda, center_type)


def key_name(key: Key) -> str:
    return f"l{key[0]}_z{key[1]}"


def basis_keys(basis: AuxiliaryBasis) -> list[Key]:
    """The (o3_lambda, center_type) keys with at least one radial function, sorted."""
    keys = []
    for sym in basis.symbols:
        for l, n in enumerate(basis[sym].n_radial):
            if n:
                keys.append((l, atomic_number(sym)))
    return sorted(keys, key=lambda k: (k[1], k[0]))


@dataclass
class BatchLayout:
    """Where each key's block values live in the concatenated coefficient vector of a batch.

    ``index[key]`` has shape (n_atoms_of_type, n_radial, 2l + 1) and indexes the flat vector;
    ``atoms[key]`` lists (structure in batch, atom) of those rows; ``offsets[s]`` is where
    structure s starts in the flat vector.
    """

    keys: list[Key]
    index: dict[Key, np.ndarray]
    atoms: dict[Key, np.ndarray]
    offsets: np.ndarray
    atom_offsets: np.ndarray

    @property
    def size(self) -> int:
        return int(self.offsets[-1])

    @classmethod
    def build(cls, basis: AuxiliaryBasis, numbers_list: list[np.ndarray]) -> BatchLayout:
        keys = basis_keys(basis)
        sizes = [basis.atom_sizes(numbers) for numbers in numbers_list]
        offsets = np.concatenate([[0], np.cumsum([int(s.sum()) for s in sizes])]).astype(np.int64)
        atom_offsets = np.concatenate([[0], np.cumsum([len(n) for n in numbers_list])]).astype(np.int64)
        # start of each l inside one atom's vector, per element
        l_start: dict[int, dict[int, int]] = {}
        for sym in basis.symbols:
            z = atomic_number(sym)
            l_start[z] = {l: sl.start for l, sl in basis[sym].l_slices()}
        index: dict[Key, list] = {k: [] for k in keys}
        atoms: dict[Key, list] = {k: [] for k in keys}
        for s, (numbers, atom_sizes) in enumerate(zip(numbers_list, sizes)):
            starts = offsets[s] + np.concatenate([[0], np.cumsum(atom_sizes)[:-1]])
            for a, z in enumerate(numbers):
                for l, start in l_start[int(z)].items():
                    index[(l, int(z))].append(starts[a] + start)
                    atoms[(l, int(z))].append((s, a))
        out_index, out_atoms = {}, {}
        for key in keys:
            l, z = key
            n = basis[int(z)].n_radial[l]
            base = np.asarray(index[key], dtype=np.int64).reshape(-1)
            local = np.arange(n * (2 * l + 1), dtype=np.int64).reshape(n, 2 * l + 1)
            out_index[key] = base[:, None, None] + local[None]
            out_atoms[key] = np.asarray(atoms[key], dtype=np.int64).reshape(-1, 2)
        return cls(keys, out_index, out_atoms, offsets, atom_offsets)

    def to_blocks(self, flat: np.ndarray) -> dict[Key, np.ndarray]:
        """Flat vector -> {key: (atoms, 2l+1, n_radial)} (metatensor layout: components, then properties)."""
        return {k: np.swapaxes(flat[idx], 1, 2) for k, idx in self.index.items()}

    def to_flat(self, blocks: dict[Key, np.ndarray]) -> np.ndarray:
        flat = np.zeros(self.size)
        for k, idx in self.index.items():
            flat[idx] = np.swapaxes(blocks[k], 1, 2)
        return flat
