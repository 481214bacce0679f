"""lambda-SOAP descriptors: featomic spherical expansion + one Clebsch-Gordan product (:mod:`rho_model.power_spectrum`).

Only the (o3_lambda, o3_sigma=+1, center_type) blocks that the target basis needs are
computed, with a fixed list of neighbour types so that feature sizes do not depend on the
molecule. Structures are always computed in batches (one featomic call per batch). A periodic
structure is computed with its cell (neighbours over lattice images; a slab as in :mod:`rho_model.cells`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rho_data.layout import Key

from .cells import featomic_frame
from .chunking import Call, plan_calls, row_positions, rows_to_positions
from .errors import RhoModelError
from .power_spectrum import PowerSpectrum

CACHE_FORMAT = 2


@dataclass
class DescriptorSpec:
    """Descriptor hyperparameters and the keys to compute; ``hypers()`` round-trips to plain data."""

    cutoff: float
    cutoff_width: float
    density_width: float
    max_radial: int
    max_angular: int
    neighbor_types: tuple[int, ...]
    keys: tuple[Key, ...]

    @classmethod
    def from_options(cls, options: dict[str, Any], keys: Sequence[Key], basis_numbers: Sequence[int]) -> DescriptorSpec:
        lmax = max(l for l, _ in keys)
        max_angular = options["max_angular"] if options["max_angular"] is not None else lmax + 2
        neighbors = options["neighbor_types"] if options["neighbor_types"] is not None else sorted(basis_numbers)
        if 2 * int(max_angular) < lmax:
            raise RhoModelError(f"options: descriptor.max_angular = {max_angular} cannot reach the target lmax {lmax}")
        return cls(
            float(options["cutoff"]),
            float(options["cutoff_width"]),
            float(options["density_width"]),
            int(options["max_radial"]),
            int(max_angular),
            tuple(int(z) for z in neighbors),
            tuple((int(l), int(z)) for l, z in keys),
        )

    def hypers(self) -> dict[str, Any]:
        return {
            "cutoff": self.cutoff,
            "cutoff_width": self.cutoff_width,
            "density_width": self.density_width,
            "max_radial": self.max_radial,
            "max_angular": self.max_angular,
            "neighbor_types": list(self.neighbor_types),
            "keys": [list(k) for k in self.keys],
        }

    @classmethod
    def from_hypers(cls, hypers: dict[str, Any]) -> DescriptorSpec:
        return cls(
            hypers["cutoff"],
            hypers["cutoff_width"],
            hypers["density_width"],
            hypers["max_radial"],
            hypers["max_angular"],
            tuple(hypers["neighbor_types"]),
            tuple(tuple(k) for k in hypers["keys"]),
        )

    def digest(self, content_key: str) -> str:
        """Cache folder name: these hyperparameters and the data's content key (see cache.geometry_digest)."""
        text = json.dumps({"hypers": self.hypers(), "content": content_key, "format": CACHE_FORMAT}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:20]


class LambdaSoap:
    """Computes per-key feature arrays {key: (atoms, 2l+1, n_features)} for a list of ase.Atoms."""

    def __init__(self, spec: DescriptorSpec):
        import featomic
        import metatensor

        self.spec = spec
        hypers = {
            "cutoff": {"radius": spec.cutoff, "smoothing": {"type": "ShiftedCosine", "width": spec.cutoff_width}},
            "density": {"type": "Gaussian", "width": spec.density_width},
            "basis": {
                "type": "TensorProduct",
                "max_angular": spec.max_angular,
                "radial": {"type": "Gto", "max_radial": spec.max_radial},
            },
        }
        self._expansion = featomic.SphericalExpansion(**hypers)
        self._power = PowerSpectrum(spec.max_angular, spec.max_radial, spec.neighbor_types, spec.keys)
        self._labels = metatensor.Labels

    @property
    def sizes(self) -> dict[Key, int]:
        return dict(self._power.sizes)

    def check_elements(self, frames: Sequence[Any]) -> None:
        for i, atoms in enumerate(frames):
            unknown = sorted({int(z) for z in atoms.numbers} - set(self.spec.neighbor_types))
            if unknown:
                raise RhoModelError(
                    f"structure {i}: elements {unknown} are not among the model's neighbour types "
                    f"{list(self.spec.neighbor_types)}"
                )

    def iter_compute(
        self, frames: Sequence[Any], max_atoms: int
    ) -> Iterator[tuple[dict[Key, np.ndarray], dict[Key, np.ndarray]]]:
        """Features in bounded pieces: yields ({key: (rows, 2) of (frame, atom)}, {key: values}).

        Every featomic call holds at most ``max_atoms`` centres (see :func:`plan_calls`), so
        memory stays bounded and time grows linearly with the number of atoms.
        """
        self.check_elements(frames)
        frames = [featomic_frame(a, self.spec.cutoff, f"structure {i}: ") for i, a in enumerate(frames)]
        for call in plan_calls(frames, max_atoms, self.spec.cutoff):
            yield self._compute_call(frames, call)

    def compute(self, frames: Sequence[Any], max_atoms: int = 500) -> dict[Key, np.ndarray]:
        """Features for all atoms of the frames, rows in (frame, atom) order for each key."""
        rank, offsets, totals = row_positions(frames, self.spec.keys)
        out = {k: np.zeros((totals[k], 2 * k[0] + 1, self._power.sizes[k])) for k in self.spec.keys}
        filled = {k: 0 for k in self.spec.keys}
        for rows, values in self.iter_compute(frames, max_atoms):
            for k, r in rows.items():
                if len(r):
                    out[k][rows_to_positions(r, rank, offsets[k])] = values[k]
                    filled[k] += len(r)
        for k in self.spec.keys:
            if filled[k] != totals[k]:
                raise RhoModelError(f"descriptor: key {k} has {filled[k]} atoms, expected {totals[k]}")
        return out

    def _compute_call(self, frames: Sequence[Any], call: Call) -> tuple[dict[Key, np.ndarray], dict[Key, np.ndarray]]:
        """One featomic call; sample atoms are mapped back to (frame, atom) of ``frames``."""
        systems = [frames[i] for i in call.frames] if call.centres is None else [call.sub_atoms]
        selected = None
        if call.centres is not None:
            local = call.local_centres.astype(np.int32)
            selected = self._labels(["system", "atom"], np.stack([np.zeros_like(local), local], axis=1))
        features = self._power.compute(self._expansion.compute(systems, selected_samples=selected))
        rows: dict[Key, np.ndarray] = {}
        values_out: dict[Key, np.ndarray] = {}
        for key in self.spec.keys:
            if key not in features:
                rows[key] = np.zeros((0, 2), dtype=np.int64)
                values_out[key] = np.zeros((0, 2 * key[0] + 1, self._power.sizes[key]))
                continue
            samples, values = features[key]
            if call.centres is None:
                frame_ids = np.asarray(call.frames, dtype=np.int64)[samples[:, 0]]
                rows[key] = np.stack([frame_ids, samples[:, 1]], axis=1)
            else:
                rows[key] = np.stack(
                    [np.full(len(samples), call.frames[0], dtype=np.int64), call.sub_index[samples[:, 1]]], axis=1
                )
            values_out[key] = values
        return rows, values_out
