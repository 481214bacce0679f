"""A tree of finished RI-fit runs -> one rho-data dataset.

Every directory under the root that holds a ``geometry.in`` is a run. A run that cannot be
imported (unfinished, truncated or missing files, sizes that disagree, NaN, an unsupported
FHI-aims version, another basis or version than the dataset's) is reported with its run
directory and file, and the others are still imported. Importing into an existing dataset
appends the runs it does not hold yet (resume).

The dataset's basis is read from ``basis_info.out`` (numeric radial functions: counts only),
the overlap is stored block-sparse by atom pairs, and the metadata are: energy (hartree,
converted from FHI-aims's eV with 1 Ha = 27.211386245988 eV), scf_converged, scf_cycles and
time_scf_s from the SCF run when the RI run knows it (else from the RI run's aims.out),
time_fit_s, n_electrons (sum of Z minus the charge in control.in) and, when the grid files
are present, n_electrons_fit, fit_squared_error and fit_nmae_percent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ase.data import chemical_symbols

from rho_data import (
    AuxiliaryBasis,
    Provenance,
    RhoDataError,
    RhoWriter,
    Structure,
    create_dataset,
)

from . import __version__
from .aimsout import HARTREE_EV, parse_aims_out
from .basis_info import read_basis_info
from .control import read_keywords
from .errors import AimsIOError
from .geometry import read_geometry
from .layout import RUN_INFO, read_json
from .order import order_for_run
from .rifiles import RIRun, read_finished_aims_out, read_ri_run

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
]


@dataclass
class ImportReport:
    imported: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already in the dataset
    failed: list[tuple[str, str]] = field(default_factory=list)  # (run dir, message)


def find_runs(root: Path) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        raise AimsIOError("not a directory", path=root)
    return sorted({p.parent for p in root.rglob("geometry.in")}, key=lambda p: str(p.relative_to(root)))


def _label(root: Path, run_dir: Path) -> str:
    rel = str(run_dir.relative_to(root))
    return "." if rel == "." else rel


def _scan(run_dir: Path) -> tuple[str, dict[str, tuple[int, ...]]]:
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


def _metadata(run: RIRun) -> dict[str, float]:
    run_dir = run.run_dir
    info = read_json(run_dir / RUN_INFO)
    scf_out = None
    if info.get("scf_dir") and (Path(info["scf_dir"]) / "aims.out").is_file():
        scf_out = parse_aims_out(Path(info["scf_dir"]) / "aims.out")
    source = scf_out or run.aims
    meta: dict[str, float] = {}
    if source.total_energy_ev is not None:
        meta["energy"] = source.total_energy_ev / HARTREE_EV
    meta["scf_converged"] = 1.0 if source.scf_converged else 0.0
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
    meta.update(run.fit_quality)
    return meta


def _provenance(root: Path, first: Path, version: str, commit: str | None, threshold: float) -> Provenance:
    keywords = read_keywords(first / "control.in") if (first / "control.in").is_file() else {}
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
    }
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


def import_tree(
    root: str | Path, out: str | Path, *, threshold: float = 0.0, on_progress: Callable[[str, str | None], None] | None = None
) -> ImportReport:
    """Import every run under ``root`` into the dataset ``out`` (created or appended to)."""
    root, out = Path(root), Path(out)
    report = ImportReport()
    runs = find_runs(root)
    if not runs:
        raise AimsIOError("holds no run directories (no geometry.in below it)", path=root)
    writer: RhoWriter | None = None
    done: set[str] = set()
    if out.exists():
        writer = RhoWriter(out)
        if writer.provenance.producer != "aims-io":
            writer.close()
            raise AimsIOError(f"was written by '{writer.provenance.producer}', not aims-io", path=out)
        done = set(writer.labels())
    # pass 1: versions and basis counts (cheap), to fix the dataset's basis and version
    scanned: dict[Path, tuple[str, dict]] = {}
    for run_dir in runs:
        if _label(root, run_dir) in done:
            continue
        try:
            scanned[run_dir] = _scan(run_dir)
        except (AimsIOError, RhoDataError) as err:
            report.failed.append((str(run_dir), str(err)))
            if on_progress:
                on_progress(str(run_dir), str(err))
    version = writer.provenance.producer_version if writer else None
    basis_counts: dict[str, tuple[int, ...]] = {s: writer.basis[s].n_radial for s in writer.basis.symbols} if writer else {}
    for run_dir, (run_version, per_element) in list(scanned.items()):
        problem, file = None, "aims.out"
        if version is None:
            version = run_version
        elif run_version != version:
            problem = f"FHI-aims version {run_version} differs from the dataset's {version}"
        for sym, counts in per_element.items():
            if problem is None and sym in basis_counts and basis_counts[sym] != counts:
                problem, file = (
                    f"basis of {sym} {list(counts)} differs from the dataset's {list(basis_counts[sym])}",
                    "basis_info.out",
                )
        if problem is not None:
            report.failed.append((str(run_dir), str(AimsIOError(problem, path=run_dir / file))))
            if on_progress:
                on_progress(str(run_dir), problem)
            del scanned[run_dir]
            continue
        for sym, counts in per_element.items():
            basis_counts.setdefault(sym, counts)
    if writer is None and scanned:
        first = next(iter(scanned))
        commit = parse_aims_out(first / "aims.out").commit
        basis = AuxiliaryBasis.from_counts(basis_counts)
        writer = create_dataset(out, basis, _provenance(root, first, str(version), commit, threshold), metadata=METADATA)
    elif writer is not None and scanned:
        for run_dir, (_, pe) in list(scanned.items()):
            lacking = sorted(set(pe) - set(writer.basis.symbols))
            if lacking:
                report.failed.append(
                    (
                        str(run_dir),
                        str(AimsIOError(f"has elements {lacking} the dataset's basis lacks", path=run_dir / "basis_info.out")),
                    )
                )
                del scanned[run_dir]
    # pass 2: read and append, one run at a time (memory: one run)
    try:
        for run_dir in runs:
            label = _label(root, run_dir)
            if label in done:
                report.skipped.append(label)
                if on_progress:
                    on_progress(str(run_dir), None)
                continue
            if run_dir not in scanned:
                continue
            try:
                run = read_ri_run(run_dir, threshold=threshold)
                structure = Structure(
                    numbers=run.geometry.numbers,
                    positions=run.geometry.positions,
                    cell=run.geometry.cell,
                    pbc=run.geometry.pbc,
                    label=label,
                    coefficients=run.coefficients,
                    projections=run.projections,
                    overlap=run.overlap,
                    metadata=_metadata(run),
                )
                writer.append(structure)  # type: ignore[union-attr]
                report.imported.append(label)
                if on_progress:
                    on_progress(str(run_dir), None)
            except (AimsIOError, RhoDataError) as err:
                report.failed.append((str(run_dir), str(err)))
                if on_progress:
                    on_progress(str(run_dir), str(err))
    finally:
        if writer is not None:
            writer.close()
    return report
