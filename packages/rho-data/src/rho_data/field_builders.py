"""How rho-eval finds the code that rebuilds real-space fields for a dataset's producer.

Rebuilding a field on a real-space grid is the producer's knowledge (PySCF evaluates Gaussian
functions; FHI-aims rebuilds on its own grid). A producer package registers a factory in the
entry-point group ``rho_data.field_builders`` under the name it writes as
``provenance.producer`` (for example ``pyscf-io``)::

    [project.entry-points."rho_data.field_builders"]
    pyscf-io = "pyscf_io.fields:make_field_builder"

The factory takes keyword options (backend settings; it ignores none silently) and returns
an object with a ``build`` method following :class:`FieldBuilder`. Consumers import only
rho-data and call :func:`load_field_builder`.

A builder may also offer ``build_on_points(dataset, request, points_bohr) -> {name: values}``
(:class:`PointFieldBuilder`): the same fields at arbitrary points, used for cube files and
slices. Backends that can only rebuild on their own grid (FHI-aims) leave it out.

A builder may also offer :class:`PropertyBuilder` (``coulomb_matrix``, ``nuclear_potential``,
``scf_properties``): the integrals that turn coefficients into electrostatic properties.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Protocol

import numpy as np

from .errors import RhoDataError
from .files import RhoFile
from .records import Grid

ENTRY_POINT_GROUP = "rho_data.field_builders"

#: The SCF (reference DFT) density on the grid, when the producer can provide it.
SCF_FIELD = "scf"


@dataclass
class FieldRequest:
    """Rebuild, for dataset structure ``index``, one field per named coefficient vector."""

    index: int
    coefficients: Mapping[str, np.ndarray] = field(default_factory=dict)
    #: The dataset target the coefficients are of (None: the main target); ``"scf"`` is that
    #: target's SCF-level field.
    target: str | None = None


class FieldBuilder(Protocol):
    def build(self, dataset: RhoFile, requests: Sequence[FieldRequest]) -> Iterator[tuple[FieldRequest, Grid]]:
        """For each request, the grid (points in bohr, integration weights) with one value
        array per requested coefficient name, plus ``"scf"`` when the producer has the SCF
        density. Results may come in any order, and a request may yield several grids (for
        example one per output file) that the consumer matches by coordinates; a failed
        structure raises RhoDataError."""
        ...


class PointFieldBuilder(FieldBuilder, Protocol):
    def build_on_points(self, dataset: RhoFile, request: FieldRequest, points_bohr: np.ndarray) -> dict[str, np.ndarray]:
        """The requested fields (and ``"scf"`` when available) at ``points_bohr`` (n, 3)."""
        ...


class PropertyBuilder(Protocol):
    """Integrals of a structure's auxiliary basis and properties of its SCF density, for physical
    properties computed from coefficients alone (rho-eval). All in atomic units (bohr, hartree,
    elementary charge); vectors and matrices in the canonical order of the dataset's basis. A
    structure the producer cannot rebuild raises RhoDataError."""

    def coulomb_matrix(self, dataset: RhoFile, index: int) -> np.ndarray:
        """J_PQ = (P|Q) = integral integral phi_P(r) phi_Q(r') / |r - r'| of structure ``index``
        ((n, n), symmetric positive definite); the Hartree energy of rho = sum c_P phi_P is 1/2 c^T J c."""
        ...

    def nuclear_potential(self, dataset: RhoFile, index: int) -> np.ndarray:
        """v_P = integral phi_P(r) sum_A Z_A / |r - R_A| dr ((n,)); the electron-nuclear energy of
        rho = sum c_P phi_P is -v^T c."""
        ...

    def scf_properties(self, dataset: RhoFile, index: int) -> dict:
        """Of the SCF density (the stored density matrix, exact integrals): ``n_electrons`` (float),
        ``dipole_au`` ((3,) total dipole, nuclear minus electronic, e bohr, origin-independent for a
        neutral structure), ``hartree_energy_ha`` (1/2 integral integral rho rho' / |r - r'|),
        ``electron_nuclear_energy_ha`` (-integral rho(r) sum_A Z_A / |r - R_A|)."""
        ...


def available_builders() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_field_builder(producer: str, **options) -> FieldBuilder:
    """The field builder registered for ``producer``; a clear error when none is installed."""
    found = available_builders()
    if producer not in found:
        known = ", ".join(sorted(found)) or "none"
        raise RhoDataError(
            f"no field builder is installed for producer '{producer}' (installed: {known}); "
            f"install the '{producer}' package (pip install {producer}) to rebuild its fields"
        )
    factory = found[producer].load()  # type: ignore[attr-defined]
    return factory(**options)
