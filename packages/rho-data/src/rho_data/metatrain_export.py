"""Export of a dataset for ``mtt train``: metatrain's disk dataset, index files and options per part.

Per part of a split (the names of the index files, e.g. ``train``, ``val``, ``test``) it writes
``<part>.zip`` (metatrain's ``DiskDataset``, through its own ``DiskDatasetWriter``: systems in
Angstrom and the target), ``<part>.idx`` (the dataset index of entry k of ``<part>.zip``) and
``eval-<part>.yaml`` (the ``mtt eval`` options), and one ``options.yaml`` template with the
per-species irreps of the basis. Export needs metatrain installed (it runs in metatrain's environment).
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
from .metatrain_layout import TARGET, species_irreps, to_metatrain
from .records import Structure
from .split import read_index_file, write_index_file

#: Parts that go into the training, validation and test sets of ``options.yaml``.
SET_OF_PART = {"train": "training_set", "training": "training_set", "val": "validation_set", "validation": "validation_set"}
SET_OF_PART |= {"valid": "validation_set", "test": "test_set"}
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


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
