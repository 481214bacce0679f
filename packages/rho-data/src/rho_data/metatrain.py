"""Datasets for metatrain (``mtt train``) and its predictions (``mtt eval``) back as rho-data files.

metatrain trains atomic-basis spherical targets only from its disk dataset format (a zip with
``<i>/system.mta`` and ``<i>/<target>.mts`` per structure: the other readers do not provide
the ``mtt::aux::system_index`` such targets need), so export writes, per part of a split
(the names of the index files, e.g. ``train``, ``val``, ``test``):

- ``<part>.zip``: metatrain's ``DiskDataset``, written with its own ``DiskDatasetWriter``: the
  systems (Angstrom) and the target ``mtt::electron_density``, a TensorMap in metatrain's
  layout of an atomic-basis target: keys ``(o3_lambda, o3_sigma, atom_type)``, samples
  ``(system, atom)``, components ``[o3_mu]``, properties ``[n]``;
- ``<part>.idx``: a rho-data index file, the dataset index of entry k of ``<part>.zip``;
- ``options.yaml``: an ``mtt train`` template with the per-species irreps of the basis;
- ``eval-<part>.yaml``: the ``mtt eval`` options of each part.

Export needs metatrain installed (it runs in metatrain's environment). Import reads the
TensorMap that ``mtt eval`` writes (``<stem>_mtt::electron_density.mts``) with metatensor-core
alone, checks it against the dataset (structure count, atom types and order, geometry when
the systems are given, basis irreps) and writes a predictions file.

The coefficient layout is rho-data's (:mod:`rho_data.mts`): only the key name of the
species differs (``center_type`` there, ``atom_type`` here).
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import numpy as np

from . import mts
from .atomic import atomic_output, check_output_location, write_text_atomic
from .basis import AuxiliaryBasis
from .checks import require_finite
from .errors import RhoDataError
from .files import open_dataset
from .provenance import Provenance
from .records import Structure
from .split import read_index_file, write_index_file
from .writer import create_predictions

#: The name of the target in metatrain (generic targets must start with ``mtt::``).
TARGET = "mtt::electron_density"
#: Parts that go into the training, validation and test sets of ``options.yaml``.
SET_OF_PART = {"train": "training_set", "training": "training_set", "val": "validation_set", "validation": "validation_set"}
SET_OF_PART |= {"valid": "validation_set", "test": "test_set"}
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def prediction_file(stem: str) -> str:
    """The file ``mtt eval -o <stem>.mts`` writes for our target (metatrain appends the target name)."""
    return f"{stem}_{TARGET}.mts"


# ---- layout ------------------------------------------------------------------------------------------
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


# ---- export ------------------------------------------------------------------------------------------
def part_name(index_file: Path) -> str:
    """The part an index file stands for: its name without ``.idx``."""
    name = index_file.name.removesuffix(".idx")
    if not _PLAIN_NAME.fullmatch(name):
        raise RhoDataError("the name of an index file must be a plain part name (letters, digits, _ . -)", path=index_file)
    return name


def _no_aliases_dumper():
    import yaml

    class NoAliases(yaml.SafeDumper):
        """Writes repeated parts (the irreps) out in full: no YAML anchors, which rho's own reader refuses."""

        def ignore_aliases(self, data) -> bool:
            return True

    return NoAliases


def _dataset_section(part: str, irreps: dict) -> dict:
    target = {"quantity": "", "unit": "", "sample_kind": "atom", "type": {"spherical": {"irreps": irreps}}}
    return {"systems": {"read_from": f"{part}.zip", "length_unit": "angstrom"}, "targets": {TARGET: target}}


def _yaml(options: dict) -> str:
    import yaml

    return yaml.dump(options, Dumper=_no_aliases_dumper(), sort_keys=False, default_flow_style=None)


def options_yaml(parts: Sequence[str], irreps: dict, source: str) -> str:
    """The ``mtt train`` template: SOAP-BPNN, the parts as training, validation and test sets."""
    sets = {SET_OF_PART[p]: p for p in parts if p in SET_OF_PART}
    options: dict = {
        "seed": 0,
        "architecture": {"name": "soap_bpnn", "training": {"batch_size": 8, "num_epochs": 100}},
        "training_set": _dataset_section(sets["training_set"], irreps),
        "validation_set": _dataset_section(sets["validation_set"], irreps) if "validation_set" in sets else 0.1,
        "test_set": _dataset_section(sets["test_set"], irreps) if "test_set" in sets else 0.0,
    }
    header = (
        f"# mtt train template written by rho-data from {source}.\n"
        "# Run it in this directory: mtt train options.yaml; then mtt eval model.pt eval-test.yaml -o test.mts\n"
        "# writes test_mtt::electron_density.mts, which rho-data import metatrain turns into a predictions file.\n"
        f"# Target {TARGET}: the RI coefficients; irreps per atomic number, num = radial functions of each l.\n"
    )
    return header + _yaml(options)


def _metatrain_modules():
    try:
        import metatensor
        import metatensor.torch
        import torch
        from metatomic.torch import System
        from metatrain.utils.data.writers import DiskDatasetWriter
    except ImportError as err:
        raise RhoDataError(
            f"export --format metatrain needs metatrain ({err.name} is missing): pip install 'metatrain[soap-bpnn]' "
            "in an environment of its own (nox -s metatrain makes one)"
        ) from None
    return metatensor, metatensor.torch, torch, System, DiskDatasetWriter


def write_disk_dataset(
    path: str | PathLike, structures: Sequence[Structure], indices: Sequence[int], basis: AuxiliaryBasis
) -> None:
    """metatrain's ``DiskDataset`` zip of the structures (their coefficients as the target), written at ``path``."""
    metatensor, mts_torch, torch, System, DiskDatasetWriter = _metatrain_modules()
    writer = DiskDatasetWriter(str(path))
    try:
        for index, s in zip(indices, structures):
            try:
                system = System(
                    types=torch.tensor(s.numbers, dtype=torch.int32),
                    positions=torch.tensor(s.positions, dtype=torch.float64),
                    cell=torch.tensor(s.cell, dtype=torch.float64),
                    pbc=torch.tensor(s.pbc, dtype=torch.bool),
                )
            except RuntimeError as err:
                raise RhoDataError(f"metatomic refuses the structure: {str(err).splitlines()[0]}", structure=int(index)) from None
            target = to_metatrain(s.numbers, s.coefficients, basis)
            handle = io.BytesIO()
            metatensor.save(handle, target)
            buffer = torch.tensor(np.frombuffer(handle.getvalue(), dtype=np.uint8))
            writer.write([system], {TARGET: mts_torch.load_buffer(buffer)})
    finally:
        writer.finish()


def export_metatrain(
    path: str | PathLike, output: str | PathLike, index_files: Sequence[str | PathLike] = (), *, overwrite: bool = False
) -> dict[str, int]:
    """Write the metatrain directory ``output`` from the dataset ``path``; returns the structures per part."""
    mts._require()
    _metatrain_modules()
    path, output = Path(path), Path(output)
    index_files = [Path(p) for p in index_files]
    parts = [part_name(p) for p in index_files] or ["train"]
    if len(set(parts)) != len(parts):
        raise RhoDataError(f"two index files name the same part: {parts}")
    if "train" not in parts and "training" not in parts:
        raise RhoDataError(f"one index file must be named train.idx (the training set), got {[p.name for p in index_files]}")
    if output.exists() and not output.is_dir():
        raise RhoDataError("exists and is not a directory", path=output)
    files = ["options.yaml"] + [f"{part}.{ext}" for part in parts for ext in ("zip", "idx")] + [f"eval-{p}.yaml" for p in parts]
    if output.is_dir():
        for name in files:  # before any work
            check_output_location(output / name, overwrite=overwrite, what="metatrain export")
    with open_dataset(path) as f:
        n, dataset_id, basis = len(f), f.dataset_id, f.basis
        if index_files:
            selections = [read_index_file(p, dataset_id=dataset_id, n_structures=n) for p in index_files]
        else:
            selections = [np.arange(n)]
        for p, selection in zip(index_files, selections):
            if len(selection) == 0:
                raise RhoDataError("selects no structures", path=p)
        structures = {part: [f[int(i)] for i in selection] for part, selection in zip(parts, selections)}
    for part, selection in zip(parts, selections):
        for i, s in zip(selection, structures[part]):
            require_finite(s.coefficients, "the coefficients", path=path, structure=int(i), label=s.label)
    species = sorted({int(z) for part in structures.values() for s in part for z in s.numbers})
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RhoDataError(f"cannot create the directory: {err.strerror}", path=output) from None
    for name in files:
        check_output_location(output / name, overwrite=overwrite, what="metatrain export")
    irreps = species_irreps(basis, species)
    for part, selection in zip(parts, selections):
        with atomic_output(output / f"{part}.zip", overwrite=overwrite, what="metatrain export") as tmp:
            try:
                write_disk_dataset(tmp, structures[part], selection, basis)
            except RhoDataError as err:
                raise RhoDataError(str(err), path=path) from None
        comment = f"entries of {part}.zip: structures of {path.name}"
        write_index_file(output / f"{part}.idx", selection, dataset_id=dataset_id, comment=comment, overwrite=overwrite)
        eval_options = _dataset_section(part, irreps)
        write_text_atomic(output / f"eval-{part}.yaml", _yaml(eval_options), overwrite=overwrite, what="metatrain export")
    write_text_atomic(
        output / "options.yaml", options_yaml(parts, irreps, path.name), overwrite=overwrite, what="metatrain export"
    )
    return {part: len(s) for part, s in structures.items()}


# ---- import ------------------------------------------------------------------------------------------
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
    return _join_entries(entries)


def _join_entries(entries: Sequence):
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
