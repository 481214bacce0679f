"""Predict coefficients from a saved model for a rho-data dataset or any geometry file ASE reads."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rho_data import AuxiliaryBasis, Provenance, Structure, create_predictions
from rho_data.atomic import atomic_output, check_output_location
from rho_data.checks import require_finite
from rho_data.layout import BatchLayout, key_name
from rho_data.orbital_fields import DENSITY_TARGET
from rho_data.yaml_input import short_repr

from . import __version__
from .chunking import row_positions, rows_to_positions
from .descriptors import DescriptorSpec, LambdaSoap
from .errors import RhoModelError
from .model import DTYPES, RhoModel
from .model_file import load_model
from .model_setup import check_basis


class Predictor:
    """A loaded model with its descriptor calculator: geometry in, canonical coefficient vectors out.

    Descriptors are computed in featomic calls of at most ``max_atoms`` centres and each piece
    goes through the model at once, so only one piece of features is in memory at a time:
    time and memory grow linearly with the number of atoms.
    """

    def __init__(self, model: RhoModel, device: str = "cpu", max_atoms: int = 500):
        self.model = model.eval()
        self.config = model.config
        self.basis = AuxiliaryBasis.from_counts(self.config["basis"])
        self.calc = LambdaSoap(DescriptorSpec.from_hypers(self.config["descriptor"]))
        self.dtype = DTYPES[self.config["dtype"]]
        self.device = device
        self.max_atoms = int(max_atoms)

    @classmethod
    def load(
        cls,
        path: str | Path,
        device: str = "cpu",
        max_atoms: int = 500,
        *,
        net_file: str | Path | None = None,
    ) -> Predictor:
        """A saved model; a python network needs ``net_file`` (see :func:`rho_model.model_file.load_model`)."""
        return cls(load_model(path, device, net_file=net_file), device, max_atoms)

    def predict(self, frames: Sequence[Any]) -> list[np.ndarray]:
        """One flat coefficient vector (canonical order) per ase.Atoms."""
        known = {int(z) for _, z in self.calc.spec.keys}
        for i, atoms in enumerate(frames):
            unknown = sorted({int(z) for z in atoms.numbers} - known)
            if unknown:
                raise RhoModelError(f"structure {i}: elements {unknown} are not known to the model (it knows {sorted(known)})")
        keys = list(self.calc.spec.keys)
        layout = BatchLayout.build(self.basis, [np.asarray(a.numbers) for a in frames])
        rank, offsets, totals = row_positions(frames, keys)
        out = {k: np.zeros((totals[k], 2 * k[0] + 1, self.config["out_sizes"][key_name(k)])) for k in keys}
        for rows, feats in self.calc.iter_compute(frames, self.max_atoms):
            x = {key_name(k): torch.as_tensor(feats[k], dtype=self.dtype, device=self.device) for k in keys}
            samples = {key_name(k): torch.as_tensor(rows[k], device=self.device) for k in keys}
            with torch.no_grad():
                y = self.model(x, samples, overwrite_features=True)  # x: this call's own features
            for k in keys:
                if len(rows[k]):
                    out[k][rows_to_positions(rows[k], rank, offsets[k])] = y[key_name(k)].cpu().numpy()
        flat = layout.to_flat(out)
        return [flat[layout.offsets[s] : layout.offsets[s + 1]] for s in range(len(frames))]


def _frames_of_input(path: Path, indices: Sequence[int] | None) -> tuple[Iterator[tuple[int, Any, str]], int, Any]:
    """(dataset index, ase.Atoms, label) for a rho-data dataset or an ASE-readable file."""
    import h5py

    if h5py.is_hdf5(path):
        from rho_data import open_dataset

        ds = open_dataset(path)
        order = list(range(len(ds))) if indices is None else list(indices)
        return ((i, g.to_ase(), g.label) for i, g in ((i, ds.geometry(i)) for i in order)), len(order), ds
    import ase.io

    try:
        frames = ase.io.read(str(path), index=":")
    except Exception as err:  # noqa: BLE001 - ASE raises many types for unreadable files
        raise RhoModelError(f"{path}: ASE cannot read it ({type(err).__name__}: {err})".splitlines()[0]) from None
    order = list(range(len(frames))) if indices is None else list(indices)
    return ((i, frames[i], f"{path.name}:{i}") for i in order), len(order), None


def predict_file(
    model_path: str | Path,
    input_path: str | Path,
    output: str | Path,
    *,
    indices: Sequence[int] | None = None,
    batch_size: int = 100,
    device: str = "cpu",
    overwrite: bool = False,
    max_atoms: int = 500,
    on_batch: Callable[[int], None] | None = None,
    net_file: str | Path | None = None,
) -> int:
    """Write a rho-data predictions file in the order of the input (or of ``indices``).

    ``batch_size`` structures are read and written together; inside a batch, featomic is
    called on at most ``max_atoms`` atoms at a time. The file is written under a temporary
    name and only replaces ``output`` once every structure is predicted (a failing or killed
    run leaves the old file as it was); a non-finite prediction is an error naming the structure.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise RhoModelError(f"--batch-size must be an integer >= 1, got {short_repr(batch_size)}")
    if isinstance(max_atoms, bool) or not isinstance(max_atoms, int) or max_atoms < 1:
        raise RhoModelError(f"--max-atoms must be an integer >= 1, got {short_repr(max_atoms)}")
    check_output_location(output, overwrite=overwrite, what="predictions file")
    predictor = Predictor.load(model_path, device, max_atoms, net_file=net_file)
    input_path = Path(input_path)
    items, total, ds = _frames_of_input(input_path, indices)
    try:
        basis = predictor.basis
        dataset_id = ""
        if ds is not None:
            check_basis(predictor.config, ds.basis, str(input_path))
            basis, dataset_id = ds.basis, ds.dataset_id
        prov = provenance(model_path, str(input_path))
        with atomic_output(output, overwrite=overwrite, what="predictions file") as tmp:
            writer = create_predictions(tmp, basis, dataset_id=dataset_id, provenance=prov, target=model_target(predictor.config))
            done = 0
            try:
                chunk: list = []
                for item in items:
                    chunk.append(item)
                    if len(chunk) == batch_size:
                        done += _write_chunk(predictor, writer, chunk, ds is not None)
                        chunk = []
                        if on_batch:
                            on_batch(done)
                if chunk:
                    done += _write_chunk(predictor, writer, chunk, ds is not None)
                    if on_batch:
                        on_batch(done)
            finally:
                writer.close()
    finally:
        if ds is not None:
            ds.close()
    return done


def model_target(config: dict) -> str:
    """The field a model predicts (models written before fields existed predict the total density)."""
    return str(config.get("target", DENSITY_TARGET))


def provenance(model_path: str | Path, input_name: str) -> Provenance:
    """Provenance of a predictions file written by rho-model."""
    return Provenance(
        producer="rho-model",
        producer_version=__version__,
        fit_metric="overlap",
        extra={"model": str(model_path), "input": input_name},
    )


def write_structures(
    output: str | Path,
    structures: Sequence[Structure],
    *,
    basis: AuxiliaryBasis,
    dataset_id: str,
    model_path: str | Path,
    input_name: str,
    overwrite: bool = False,
    target: str = DENSITY_TARGET,
) -> None:
    """Write predicted structures into a new rho-data predictions file, atomically (as :func:`predict_file`)."""
    check_output_location(output, overwrite=overwrite, what="predictions file")
    for i, s in enumerate(structures):
        where = s.dataset_index if s.dataset_index >= 0 else i
        require_finite(s.coefficients, "the predicted coefficients", structure=where, label=s.label, error=RhoModelError)
    with atomic_output(output, overwrite=overwrite, what="predictions file") as tmp:
        writer = create_predictions(
            tmp, basis, dataset_id=dataset_id, provenance=provenance(model_path, input_name), target=target
        )
        try:
            for s in structures:
                writer.append(s)
        finally:
            writer.close()


def _write_chunk(predictor: Predictor, writer, chunk, from_dataset: bool) -> int:
    coefs = predictor.predict([atoms for _, atoms, _ in chunk])
    for (i, atoms, label), c in zip(chunk, coefs):
        require_finite(c, "the predicted coefficients", structure=i, label=label, error=RhoModelError)
        writer.append(Structure.from_ase(atoms, label=label, coefficients=c, dataset_index=i if from_dataset else -1))
    return len(chunk)
