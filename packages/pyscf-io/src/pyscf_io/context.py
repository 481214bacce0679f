"""What every structure of a run shares: settings, resolved bases, dataset header."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rho_data import STANDARD_METADATA, AuxiliaryBasis, Provenance
from rho_data.elements import symbol
from rho_data.orbital_fields import FieldSpec, parse_field, target_name

from .basis import BasisSpec, aux_basis_name, auxiliary_basis, load_ao_basis, load_aux_basis
from .cell import CELL_CONVENTION
from .config import fit_metric, physics

PRODUCER = "pyscf-io"
EXTRAS = ["density_matrix"]
#: Standard rho-data metadata plus: fit_dropped (metric eigenvectors dropped by the solve),
#: fit_condition (condition number of the kept metric), input_index (position in the run's input),
#: charge and spin (2S) of the structure (per-structure values from the input, else the settings).
METADATA = list(STANDARD_METADATA) + ["fit_dropped", "fit_condition", "input_index", "charge", "spin"]
#: Cells add the uniform mesh of the fit and of the fit error (points along each lattice vector).
CELL_METADATA = ("grid_mesh_a", "grid_mesh_b", "grid_mesh_c")
#: A cell's SCF density matrix: real (nao, nao) at Gamma; on a k-mesh (nk, 2, nao, nao), real and
#: imaginary parts of D^k for the k-points ``cell.make_kpts(kmesh)`` in PySCF's order.
CELL_EXTRAS = ("density_matrix",)
CELL_K_EXTRAS = ("density_matrix_k",)
#: Metadata of each further target T, stored as ``<name>@T``.
TARGET_METADATA = ("field_integral", "n_fit", "fit_nmae_percent", "fit_squared_error")


@dataclass
class RunContext:
    """Settings and the per-element bases (PySCF format) of one run."""

    settings: dict[str, Any]
    ao: BasisSpec
    aux: BasisSpec
    missing: dict[str, str] = field(default_factory=dict)
    run_id: str = ""
    periodic: bool = False  # a run of cells (AO basis ``cell_basis``, pseudopotential ``pseudo``)

    @classmethod
    def build(cls, settings: dict[str, Any], numbers: set[int], run_id: str = "", periodic: bool = False) -> RunContext:
        symbols = [symbol(z) for z in sorted(numbers)]
        ao, missing = load_ao_basis(settings["cell_basis" if periodic else "basis"], symbols)
        aux, missing_aux = load_aux_basis(settings, ao, symbols)
        missing.update(missing_aux)
        return cls(settings, ao, aux, missing, run_id, periodic)

    def to_json(self) -> dict:
        return {"ao": self.ao, "aux": self.aux, "missing": self.missing, "run_id": self.run_id, "periodic": self.periodic}

    @classmethod
    def from_json(cls, settings: dict[str, Any], data: dict) -> RunContext:
        return cls(settings, data["ao"], data["aux"], data.get("missing", {}), data.get("run_id", ""), bool(data.get("periodic")))

    @property
    def gamma_only(self) -> bool:
        return list(self.settings["kmesh"]) == [1, 1, 1]

    def fields(self) -> list[FieldSpec]:
        """The fields of the run (setting ``fields``), the main target first."""
        return [parse_field(name) for name in self.settings["fields"]]

    def dataset_layout(self) -> dict[str, Any]:
        """What ``create_dataset`` needs besides basis and provenance: targets, metadata, extras.

        Further target T adds metadata ``field_integral@T``, ``n_fit@T``, ``fit_nmae_percent@T``,
        ``fit_squared_error@T``; every field but the density adds the extra ``density_matrix@T``
        (its AO density matrix, for the SCF-level field); a main target other than the density
        adds ``field_integral``.
        """
        names = [target_name(f) for f in self.fields()]
        metadata = list(METADATA) + (["field_integral"] if self.fields()[0].kind != "density" else [])
        metadata += [f"{m}@{t}" for t in names[1:] for m in TARGET_METADATA]
        extras = list(EXTRAS) + [f"density_matrix@{t}" for t, f in zip(names, self.fields()) if f.kind != "density"]
        if self.periodic:
            metadata += list(CELL_METADATA)
            extras = list(CELL_EXTRAS if self.gamma_only else CELL_K_EXTRAS)
        return {"target": names[0], "targets": names[1:], "metadata": metadata, "extras": sorted(extras)}

    def basis(self) -> AuxiliaryBasis:
        return auxiliary_basis(self.aux)

    def provenance(self) -> Provenance:
        import pyscf

        from . import __version__

        s = self.settings
        extra = {
            "ao_basis": {k: self.ao[k] for k in self.aux},
            "aux_basis": self.aux,
            "scf_aux_basis": s["scf_aux_basis"],
            "scf_density_fit": s["scf_density_fit"],
            "charge": s["charge"],
            "spin": s["spin"],
            "xc": s["xc"],
            "grid_level": s["grid_level"],
            "unit": "angstrom",
            "pyscf_version": pyscf.__version__,
            "settings": physics(s),
            "run_id": self.run_id,
        }
        if self.periodic:
            extra.update(
                {
                    "periodic": True,
                    "pseudo": s["pseudo"],
                    "kmesh": list(s["kmesh"]),
                    "cell_scf": s["cell_scf"],
                    "cell_smearing_ev": s["cell_smearing_ev"],
                    "cell_fit_integrals": s["cell_fit_integrals"],
                    "cell_convention": CELL_CONVENTION,
                }
            )
        return Provenance(
            producer=PRODUCER,
            producer_version=__version__,
            functional=s["xc"],
            ao_basis=s["cell_basis" if self.periodic else "basis"],
            aux_basis=aux_basis_name(s),
            fit_metric=fit_metric(s, self.periodic),
            extra=extra,
        )
