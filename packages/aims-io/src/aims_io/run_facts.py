"""What one finished RI-fit run tells the dataset: its version and basis counts, convergence, metadata, provenance.

The metadata of a structure are: energy (hartree, converted from FHI-aims's eV with
1 Ha = 27.211386245988 eV), scf_converged, scf_cycles and time_scf_s from the SCF run when the
RI run knows it (else from the RI run's aims.out), time_fit_s, n_electrons (sum of Z minus the
charge in control.in), homo_energy and lumo_energy (hartree: the highest occupied and lowest
unoccupied state aims.out prints, SCF run first) and, when the grid files are present, n_electrons_fit, fit_squared_error
and fit_nmae_percent. A periodic dataset adds n_k_points (the k-points FHI-aims used after
symmetry, from ``| k-points reduced from: N to M``; NaN where aims.out does not say), and its
provenance records ``periodic``, the k-point keyword and the cell convention; every dataset's
provenance records the species sections of the first run's control.in (``species_sections``).
"""

from __future__ import annotations

from pathlib import Path

from ase.data import chemical_symbols

from rho_data import Provenance

from . import __version__
from .aimsout import HARTREE_EV, AimsOutput, parse_aims_out
from .basis_info import read_basis_info
from .control import read_keywords, species_sections
from .errors import AimsIOError
from .geometry import read_geometry
from .layout import RUN_INFO, read_json
from .order import order_for_run
from .rifiles import RIRun, read_finished_aims_out

METADATA = [
    "energy",
    "scf_converged",
    "scf_cycles",
    "n_electrons",
    "n_electrons_fit",
    "fit_nmae_percent",
    "fit_squared_error",
    "time_scf_s",
    "time_fit_s",
    "homo_energy",
    "lumo_energy",
]
#: Metadata of periodic datasets only.
PERIODIC_METADATA = ["n_k_points"]


def scf_output(run_dir: Path, ri_aims: AimsOutput) -> tuple[AimsOutput, Path, AimsOutput | None]:
    """The aims.out that tells the SCF facts: the SCF run's when the RI run records it, else the RI run's.

    Returns (that output, its path, the SCF run's output or None).
    """
    info = read_json(run_dir / RUN_INFO)
    if info.get("scf_dir") and (Path(info["scf_dir"]) / "aims.out").is_file():
        path = Path(info["scf_dir"]) / "aims.out"
        scf_out = parse_aims_out(path)
        return scf_out, path, scf_out
    return ri_aims, run_dir / "aims.out", None


def not_converged(run_dir: Path) -> AimsIOError | None:
    """An error naming the run when its SCF did not converge (else None)."""
    source, path, _ = scf_output(run_dir, parse_aims_out(run_dir / "aims.out"))
    if source.scf_converged:
        return None
    return AimsIOError("the SCF did not converge (no 'Self-consistency cycle converged.')", path=path)


def scan_run(run_dir: Path) -> tuple[str, dict[str, tuple[int, ...]]]:
    """Version and per-element radial counts of one run (cheap: aims.out, geometry, basis_info)."""
    aims = read_finished_aims_out(run_dir)
    geometry = read_geometry(run_dir / "geometry.in")
    counts = read_basis_info(run_dir / "basis_info.out")
    if len(counts) != len(geometry.numbers):
        raise AimsIOError(
            f"describes {len(counts)} atoms, geometry.in has {len(geometry.numbers)}", path=run_dir / "basis_info.out"
        )
    per_element: dict[str, tuple[int, ...]] = {}
    for k, (z, c) in enumerate(zip(geometry.numbers, counts)):
        sym = chemical_symbols[int(z)]
        if per_element.setdefault(sym, c) != c:
            raise AimsIOError(
                f"atom {k + 1} ({sym}) has radial counts {list(c)}, another {sym} atom has {list(per_element[sym])}",
                path=run_dir / "basis_info.out",
            )
    order_for_run(run_dir, aims.version_number, counts)  # refuses unsupported versions early
    return str(aims.version), per_element


def run_metadata(run: RIRun) -> dict[str, float]:
    """The metadata of the run's structure (see the module doc)."""
    run_dir = run.run_dir
    source, _, scf_out = scf_output(run_dir, run.aims)
    meta: dict[str, float] = {}
    if source.total_energy_ev is not None:
        meta["energy"] = source.total_energy_ev / HARTREE_EV
    meta["scf_converged"] = 1.0 if source.scf_converged else 0.0
    for key, value in (("homo_energy", source.homo_ev), ("lumo_energy", source.lumo_ev)):
        if value is not None:
            meta[key] = value / HARTREE_EV
    if scf_out is not None:
        if scf_out.scf_cycles is not None:
            meta["scf_cycles"] = float(scf_out.scf_cycles)
        if scf_out.wall_time_s is not None:
            meta["time_scf_s"] = scf_out.wall_time_s
    if run.aims.wall_time_s is not None:
        meta["time_fit_s"] = run.aims.wall_time_s
    charge = 0.0
    if (run_dir / "control.in").is_file():
        try:
            charge = float(read_keywords(run_dir / "control.in").get("charge", "0").replace("d", "e").replace("D", "E"))
        except ValueError:
            raise AimsIOError("cannot read the value of 'charge'", path=run_dir / "control.in") from None
    meta["n_electrons"] = float(run.geometry.numbers.sum()) - charge
    if run.periodic and run.aims.n_k_points is not None:
        meta["n_k_points"] = float(run.aims.n_k_points)
    meta.update(run.fit_quality)
    return meta


def dataset_provenance(
    root: Path, first: Path, version: str, commit: str | None, threshold: float, *, periodic: bool = False
) -> Provenance:
    """The provenance of a dataset imported from ``root``: functional, RI and k-point settings and
    species sections from the first run's control.in."""
    control = first / "control.in"
    keywords = read_keywords(control) if control.is_file() else {}
    try:
        species = species_sections(control) if control.is_file() else ""
    except AimsIOError:
        species = ""
    acc = keywords.get("default_prodbas_acc", "FHI-aims default")
    max_l = keywords.get("default_max_l_prodbas", "FHI-aims default")
    settings_file = None
    for parent in [root, *root.parents]:
        if (parent / "aims-io.yaml").is_file():
            settings_file = parent / "aims-io.yaml"
            break
    extra = {
        "aims_io_version": __version__,
        "aims_commit": commit or "",
        "ri_root": str(root.resolve()),
        "run_dirs": "structure label = run directory relative to ri_root",
        "energy_conversion": f"1 Ha = {HARTREE_EV} eV",
        "overlap_threshold": threshold,
        "control_keywords": keywords,
        "settings": settings_file.read_text() if settings_file else "",
        "species_sections": species,
        "periodic": periodic,
    }
    if periodic:
        k = {key: keywords[key] for key in ("k_grid", "k_grid_density") if key in keywords}
        extra["k_points"] = " ".join(f"{key} {value}" for key, value in k.items()) or "none"
        # as pyscf-io's provenance: [n1, n2, n3] (null with k_grid_density: FHI-aims chose the grid per
        # structure, see metadata n_k_points); FHI-aims is all-electron (no pseudopotential)
        extra["kmesh"] = [int(w) for w in k["k_grid"].split()] if "k_grid" in k else None
        extra["pseudo"] = None
        extra["cell_convention"] = (
            "cell rows = FHI-aims lattice_vector lines (Angstrom), pbc T T T; coefficients, projections and "
            "overlap of the cell's auxiliary functions at the Gamma point (overlap lattice-summed)"
        )
    return Provenance(
        producer="aims-io",
        producer_version=version,
        functional=keywords.get("xc", ""),
        ao_basis="FHI-aims numeric atom-centred orbitals (species defaults in control.in)",
        aux_basis=(
            f"FHI-aims RI product basis (default_prodbas_acc {acc}, default_max_l_prodbas {max_l}; numeric radial functions)"
        ),
        fit_metric="overlap",
        extra=extra,
    )
