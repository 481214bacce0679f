"""metatrain's layout of an atomic-basis target and its conversion to and from rho-data coefficients.

metatrain's target ``mtt::electron_density`` is a TensorMap with keys ``(o3_lambda, o3_sigma,
atom_type)``, samples ``(system, atom)``, components ``[o3_mu]`` and properties ``[n]``: rho-data's
layout (:mod:`rho_data.mts`) with the species key named ``atom_type`` instead of ``center_type``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import mts
from .basis import AuxiliaryBasis
from .errors import RhoDataError

#: The name of the target in metatrain (generic targets must start with ``mtt::``).
TARGET = "mtt::electron_density"


def prediction_file(stem: str) -> str:
    """The file ``mtt eval -o <stem>.mts`` writes for our target (metatrain appends the target name)."""
    return f"{stem}_{TARGET}.mts"


def species_irreps(basis: AuxiliaryBasis, species: Sequence[int]) -> dict[int, list[dict[str, int]]]:
    """``type.spherical.irreps`` of ``options.yaml``: per atomic number, one irrep per l with its radial count."""
    irreps = {}
    for z in sorted({int(z) for z in species}):
        element = basis[z]
        irreps[z] = [{"o3_lambda": l, "o3_sigma": 1, "num": int(n)} for l, n in enumerate(element.n_radial) if n > 0]
    return irreps


def to_metatrain(numbers: np.ndarray, coefficients: np.ndarray, basis: AuxiliaryBasis, system: int = 0):
    """The coefficients of one structure -> its target TensorMap in metatrain's layout (metatensor-core)."""
    from metatensor import Labels, TensorMap

    tensor = mts.coefficients_to_tensormap([numbers], [coefficients], basis, [system])
    return TensorMap(
        Labels(["o3_lambda", "o3_sigma", "atom_type"], np.asarray(tensor.keys.values)), [b.copy() for b in tensor.blocks()]
    )


def from_metatrain(
    tensor, numbers: Sequence[np.ndarray], basis: AuxiliaryBasis, *, source: str, indices: Sequence[int] | None = None
) -> list[np.ndarray]:
    """metatrain's TensorMap of n structures -> their flat coefficient vectors, checked against atoms and basis.

    ``indices`` (the dataset index of each system) only serves the error messages.
    """
    from metatensor import Labels, TensorBlock, TensorMap

    where = f"{source}: "
    indices = list(range(len(numbers))) if indices is None else [int(i) for i in indices]

    def name(system: int) -> str:
        return f"system {system} (structure {indices[system]} of the dataset)"

    names = list(tensor.keys.names)
    if names != ["o3_lambda", "o3_sigma", "atom_type"]:
        raise RhoDataError(
            f"{where}keys are {names}, an atomic-basis spherical target has ['o3_lambda', 'o3_sigma', 'atom_type']"
        )
    n = len(numbers)
    seen_systems: set[int] = set()
    blocks = []
    for key, block in tensor.items():
        l, sigma, z = int(key["o3_lambda"]), int(key["o3_sigma"]), int(key["atom_type"])
        label = f"block (o3_lambda={l}, o3_sigma={sigma}, atom_type={z})"
        if z not in basis or l > basis[z].lmax or basis[z].n_radial[l] == 0:
            raise RhoDataError(f"{where}{label} is not in the auxiliary basis of the dataset")
        if sigma != 1:
            raise RhoDataError(f"{where}{label}: a density has only o3_sigma = 1")
        if list(block.samples.names) != ["system", "atom"]:
            raise RhoDataError(f"{where}{label}: samples are {list(block.samples.names)}, expected ['system', 'atom']")
        components = block.components
        if len(components) != 1 or np.asarray(components[0].values).reshape(-1).tolist() != list(range(-l, l + 1)):
            raise RhoDataError(f"{where}{label}: components are not o3_mu = {-l}..{l}")
        n_radial = int(basis[z].n_radial[l])
        if len(block.properties) != n_radial:
            raise RhoDataError(f"{where}{label}: {len(block.properties)} radial functions, the basis has {n_radial}")
        values = np.asarray(block.values, dtype=np.float64)
        samples = np.asarray(block.samples.values)
        for system, atom in samples:
            system, atom = int(system), int(atom)
            if not 0 <= system < n:
                raise RhoDataError(f"{where}{label} has system {system}, the reference part has {n} structures")
            if not 0 <= atom < len(numbers[system]) or int(numbers[system][atom]) != z:
                found = int(numbers[system][atom]) if 0 <= atom < len(numbers[system]) else "no atom"
                raise RhoDataError(f"{where}{name(system)}, atom {atom}: predicted for atom type {z}, the dataset has {found}")
            seen_systems.add(system)
        bad = ~np.isfinite(values).reshape(len(values), -1).all(axis=1)
        if bad.any():
            system, atom = (int(v) for v in samples[np.flatnonzero(bad)[0]])
            raise RhoDataError(f"{where}{name(system)}, atom {atom}: non-finite predicted coefficients in {label}")
        blocks.append((l, z, values, samples))
    missing = sorted(set(range(n)) - seen_systems)
    if missing:
        raise RhoDataError(f"{where}has no predictions for {name(missing[0])} ({len(missing)} structures missing)")

    renamed = TensorMap(
        Labels(
            ["o3_lambda", "o3_sigma", "center_type"],
            np.array([(l, 1, z) for l, z, _, _ in blocks], dtype=np.int32).reshape(-1, 3),
        ),
        [
            TensorBlock(
                values=values,
                samples=Labels(["system", "atom"], samples.astype(np.int32).reshape(-1, 2)),
                components=[Labels(["o3_mu"], np.arange(-l, l + 1, dtype=np.int32).reshape(-1, 1))],
                properties=Labels(["n"], np.arange(values.shape[2], dtype=np.int32).reshape(-1, 1)),
            )
            for l, z, values, samples in blocks
        ],
    )
    try:
        return mts.tensormap_to_coefficients(renamed, numbers, basis)
    except RhoDataError as err:
        raise RhoDataError(f"{where}{err}") from None
