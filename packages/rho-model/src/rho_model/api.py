"""Python API for notebooks: ``rho_model.load(path).predict(atoms_or_list)``.

It is a thin layer over :class:`rho_model.predict.Predictor` (the pipeline of ``rho-train
predict``) that returns each structure's coefficients with their layout, and writes rho-data
predictions files through the same atomic writer as the command line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rho_data import AuxiliaryBasis, Structure
from rho_data.checks import require_finite
from rho_data.layout import BatchLayout, key_name
from rho_data.yaml_input import short_repr

from .errors import RhoModelError
from .predict import Predictor, _frames_of_input, model_target, write_structures


@dataclass
class Prediction:
    """Predicted density-fitting coefficients of one structure.

    ``coefficients`` is the flat vector in rho-data's canonical order (atom -> l -> n -> m);
    ``blocks`` the same numbers per key ``"l{l}_z{z}"`` as (atoms of that element, 2l + 1, n)
    arrays (metatensor layout), atoms in structure order. ``positions`` are in Angstrom.
    ``dataset_index`` is the structure's index when it came from a rho-data dataset, else -1.
    """

    coefficients: np.ndarray
    numbers: np.ndarray
    positions: np.ndarray
    basis: AuxiliaryBasis
    cell: np.ndarray = field(default_factory=lambda: np.zeros((3, 3)))
    pbc: np.ndarray = field(default_factory=lambda: np.zeros(3, dtype=bool))
    label: str = ""
    dataset_index: int = -1

    @property
    def blocks(self) -> dict[str, np.ndarray]:
        """``{"l{l}_z{z}": (atoms, 2l + 1, n)}`` views of :attr:`coefficients` (see :mod:`rho_data.layout`)."""
        layout = BatchLayout.build(self.basis, [self.numbers])
        return {key_name(k): v for k, v in layout.to_blocks(self.coefficients).items() if len(v)}

    def to_tensormap(self, system: int = 0) -> Any:
        """The coefficients as a metatensor TensorMap (keys o3_lambda, o3_sigma, center_type; via :mod:`rho_data.mts`)."""
        from rho_data.mts import coefficients_to_tensormap

        return coefficients_to_tensormap([self.numbers], [self.coefficients], self.basis, systems=[system])

    def to_structure(self) -> Structure:
        """As a rho-data :class:`~rho_data.Structure` of a predictions file."""
        return Structure(
            numbers=self.numbers,
            positions=self.positions,
            cell=self.cell,
            pbc=self.pbc,
            label=self.label,
            coefficients=self.coefficients,
            dataset_index=self.dataset_index,
        )


class LoadedModel:
    """A saved rho-model model ready to predict (see :func:`load`)."""

    def __init__(self, predictor: Predictor, path: Path):
        self.predictor = predictor
        self.path = path

    @property
    def basis(self) -> AuxiliaryBasis:
        """The auxiliary basis the model predicts coefficients of."""
        return self.predictor.basis

    @property
    def elements(self) -> list[int]:
        """Atomic numbers the model knows."""
        return sorted({int(z) for _, z in self.predictor.calc.spec.keys})

    def predict(self, structures: Any, *, indices: Sequence[int] | None = None) -> Prediction | list[Prediction]:
        """Coefficients of one ``ase.Atoms`` (a :class:`Prediction`), or of a list of them, of a geometry
        file ASE reads or of a rho-data dataset (a list; ``indices`` picks structures of a file)."""
        if isinstance(structures, (str, Path)):
            path = Path(structures)
            if not path.is_file():
                raise RhoModelError(f"{path}: no such file")
            items, _, ds = _frames_of_input(path, indices)
            try:
                entries = [(i if ds is not None else -1, atoms, label) for i, atoms, label in items]
            finally:
                if ds is not None:
                    ds.close()
            return self._predict(entries)
        if indices is not None:
            raise RhoModelError("predict: indices only select structures of a file")
        if hasattr(structures, "numbers") and hasattr(structures, "positions"):
            return self._predict([(-1, structures, "")])[0]
        frames = list(structures)
        for i, atoms in enumerate(frames):
            if not (hasattr(atoms, "numbers") and hasattr(atoms, "positions")):
                raise RhoModelError(f"predict: item {i} is a {type(atoms).__name__}, not an ase.Atoms")
        return self._predict([(-1, atoms, "") for atoms in frames])

    def _predict(self, entries: list[tuple[int, Any, str]]) -> list[Prediction]:
        if not entries:
            return []
        coefs = self.predictor.predict([atoms for _, atoms, _ in entries])
        out = []
        for s, ((index, atoms, label), c) in enumerate(zip(entries, coefs)):
            where = index if index >= 0 else s
            require_finite(c, "the predicted coefficients", structure=where, label=label, error=RhoModelError)
            st = Structure.from_ase(atoms)
            out.append(Prediction(c, st.numbers, st.positions, self.basis, st.cell, st.pbc, label, index))
        return out

    def write(
        self, path: str | Path, predictions: Prediction | Sequence[Prediction], *, dataset_id: str = "", overwrite: bool = False
    ) -> Path:
        """Write a rho-data predictions file (atomically; an existing file needs ``overwrite``).

        ``dataset_id`` ties it to a dataset (``open_dataset(...).dataset_id``) so that rho-eval
        can match ``dataset_index`` to the reference; "" for bare geometries.
        """
        items = [predictions] if isinstance(predictions, Prediction) else list(predictions)
        write_structures(
            path,
            [p.to_structure() for p in items],
            basis=self.basis,
            dataset_id=dataset_id,
            model_path=self.path,
            input_name="python",
            overwrite=overwrite,
            target=model_target(self.predictor.config),
        )
        return Path(path)


def load(
    path: str | Path,
    *,
    device: str = "cpu",
    net_file: str | Path | None = None,
    max_atoms: int = 500,
) -> LoadedModel:
    """A saved model (``model.pt`` of a run or an exported file) ready to :meth:`~LoadedModel.predict`.

    A ``model.type: python`` network is built only from ``net_file``, a net.py the caller names
    (the code stored in the model file is never run).
    """
    if isinstance(max_atoms, bool) or not isinstance(max_atoms, int) or max_atoms < 1:
        raise RhoModelError(f"max_atoms must be an integer >= 1, got {short_repr(max_atoms)}")
    return LoadedModel(Predictor.load(path, device, max_atoms, net_file=net_file), Path(path))
