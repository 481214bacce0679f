"""Import of ``mtt eval``'s predictions into a rho-data predictions file.

It reads the TensorMap that ``mtt eval`` writes (``<stem>_mtt::electron_density.mts``, or a
``.zip`` DiskDataset) with metatensor-core alone, checks it against the dataset (structure count,
atom types and order, geometry when the systems are given, basis irreps) and writes a
predictions file.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import numpy as np

from . import mts
from .atomic import atomic_output, check_output_location
from .errors import RhoDataError
from .files import open_dataset
from .metatrain_layout import TARGET, from_metatrain
from .provenance import Provenance
from .records import Structure
from .split import read_index_file
from .writer import create_predictions


def _load_tensormap(path: Path):
    """``mtt eval``'s output: a ``.mts`` TensorMap, or a ``.zip`` DiskDataset (one TensorMap per entry, joined here)."""
    import zipfile

    import metatensor

    if not path.is_file():
        raise RhoDataError(f"no such file (mtt eval -o NAME.mts writes NAME_{TARGET}.mts)", path=path)
    try:
        if path.suffix != ".zip":
            return metatensor.load(str(path))
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            entries = []
            while f"{len(entries)}/{TARGET}.mts" in names:
                raw = np.load(io.BytesIO(archive.read(f"{len(entries)}/{TARGET}.mts")), allow_pickle=False)
                entries.append(metatensor.io.load_buffer(raw))
    except (OSError, ValueError, zipfile.BadZipFile, metatensor.MetatensorError) as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise RhoDataError(f"is not a metatensor TensorMap or metatrain dataset: {message[:200]}", path=path) from None
    if not entries:
        raise RhoDataError(f"holds no {TARGET} predictions (no 0/{TARGET}.mts)", path=path)
    return join_entries(entries)


def join_entries(entries: Sequence):
    """The per-structure TensorMaps of a DiskDataset as one (their system labels are the entry numbers)."""
    from metatensor import Labels, TensorBlock, TensorMap

    pieces: dict[tuple[int, ...], list] = {}
    for tensor in entries:
        for key, block in tensor.items():
            pieces.setdefault(tuple(int(v) for v in key.values), []).append(block)
    keys = sorted(pieces, key=lambda k: (k[0], k[-1]))
    blocks = []
    for key in keys:
        first = pieces[key][0]
        blocks.append(
            TensorBlock(
                values=np.concatenate([np.asarray(b.values) for b in pieces[key]]),
                samples=Labels(first.samples.names, np.concatenate([np.asarray(b.samples.values) for b in pieces[key]])),
                components=first.components,
                properties=first.properties,
            )
        )
    return TensorMap(Labels(entries[0].keys.names, np.array(keys, dtype=np.int32).reshape(len(keys), -1)), blocks)


def read_disk_dataset_geometry(path: str | PathLike) -> list[tuple[np.ndarray, np.ndarray]]:
    """(atomic numbers, positions) of each entry of a metatrain ``DiskDataset`` zip (needs metatomic-torch)."""
    import zipfile

    path = Path(path)
    try:
        from metatomic.torch import load_system
    except ImportError:
        raise RhoDataError(
            "reading the systems of a metatrain dataset needs metatomic-torch (installed with metatrain)"
        ) from None
    geometry = []
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            k = 0
            while f"{k}/system.mta" in names:
                system = load_system(io.BytesIO(archive.read(f"{k}/system.mta")))
                geometry.append(
                    (system.types.numpy().astype(np.int64), system.positions.to(dtype=__import__("torch").float64).numpy())
                )
                k += 1
    except (OSError, zipfile.BadZipFile, RuntimeError) as err:
        raise RhoDataError(f"is not a metatrain dataset zip: {str(err).splitlines()[0][:200]}", path=path) from None
    if not geometry:
        raise RhoDataError("holds no systems (no 0/system.mta)", path=path)
    return geometry


def import_metatrain(
    prediction: str | PathLike,
    reference: str | PathLike,
    output: str | PathLike,
    *,
    indices: str | PathLike | None = None,
    systems: str | PathLike | None = None,
    overwrite: bool = False,
    tolerance: float = 1e-5,
) -> int:
    """Write the predictions file ``output`` from ``mtt eval``'s output; returns the structure count.

    ``prediction`` is what ``mtt eval -o NAME.zip`` (a DiskDataset, with the systems) or
    ``-o NAME.mts`` (``NAME_mtt::electron_density.mts``) writes. System k of it is structure
    ``indices[k]`` of the dataset ``reference`` (by default the index file beside ``systems``,
    ``<part>.idx``; without either, structure k). The geometry of ``systems`` (the exported
    ``<part>.zip``; by default the prediction zip itself) is checked against the dataset
    (``tolerance`` in Angstrom: models in float32 round positions to about 1e-7 A).
    """
    mts._require()
    prediction, reference, output = Path(prediction), Path(reference), Path(output)
    systems = Path(systems) if systems is not None else None
    if indices is None and systems is not None and systems.with_suffix(".idx").is_file():
        indices = systems.with_suffix(".idx")  # the index file export wrote beside <part>.zip
    check_output_location(output, overwrite=overwrite, what="predictions file")
    tensor = _load_tensormap(prediction)
    with open_dataset(reference) as ds:
        n = len(ds)
        selection = read_index_file(indices, dataset_id=ds.dataset_id, n_structures=n) if indices is not None else np.arange(n)
        structures = [ds[int(i)] for i in selection]
        basis, dataset_id = ds.basis, ds.dataset_id
    if systems is None and prediction.suffix == ".zip":
        systems = prediction  # mtt eval's dataset output holds the systems it predicted
    if systems is not None:
        geometry = read_disk_dataset_geometry(systems)
        if len(geometry) != len(structures):
            hint = "" if indices is not None else " (give --indices, the <part>.idx the export wrote)"
            raise RhoDataError(
                f"holds {len(geometry)} systems, the selection of {reference} {len(structures)}{hint}", path=systems
            )
        for k, ((numbers, positions), s) in enumerate(zip(geometry, structures)):
            if not np.array_equal(numbers, s.numbers):
                raise RhoDataError(f"entry {k}: atoms differ from structure {selection[k]} of {reference}", path=systems)
            shift = float(np.abs(positions - s.positions).max())
            if shift > tolerance:
                raise RhoDataError(
                    f"entry {k}: positions differ from structure {selection[k]} of {reference} by {shift:.3g} A", path=systems
                )
    n_systems = _system_count(tensor)
    if n_systems != len(structures):
        hint = "" if indices is not None else " (give --indices, the <part>.idx the export wrote)"
        raise RhoDataError(
            f"predicts {n_systems} structures, the selection of {reference} has {len(structures)}{hint}", path=prediction
        )
    vectors = from_metatrain(tensor, [s.numbers for s in structures], basis, source=str(prediction), indices=selection)
    provenance = Provenance(producer="metatrain", extra={"input": str(prediction), "reference": str(reference)})
    with atomic_output(output, overwrite=overwrite, what="predictions file") as tmp:
        writer = create_predictions(tmp, basis, dataset_id=dataset_id, provenance=provenance)
        try:
            for i, s, vector in zip(selection, structures, vectors):
                writer.append(
                    Structure(s.numbers, s.positions, s.cell, s.pbc, label=s.label, coefficients=vector, dataset_index=int(i))
                )
        finally:
            writer.close()
    return len(structures)


def _system_count(tensor) -> int:
    """1 + the largest system label (metatrain numbers the evaluated systems 0..n-1)."""
    systems: set[int] = set()
    for block in tensor.blocks():
        if "system" in block.samples.names:
            systems.update(int(v) for v in np.asarray(block.samples.column("system")))
    return max(systems) + 1 if systems else 0
