"""What ``rho-data info`` shows of a file: one table of kind, structures, periodic ones, elements, basis, producer, size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.table import Table

from .elements import symbol
from .files import open_file


def summary_table(path: Path) -> Table:
    """The summary of the rho-data file at ``path`` (one read of the per-structure atomic numbers)."""
    with open_file(path) as f:
        table = Table(title=str(path), show_header=False)
        table.add_row("kind", f.kind)
        table.add_row("schema version", f"{f.version[0]}.{f.version[1]}")
        table.add_row("structures", str(len(f)))
        table.add_row("dataset id", f.dataset_id)
        table.add_row("target", f.target)
        if f.extra_targets:
            integrals = []
            for t in f.extra_targets:
                name = f"field_integral@{t}"
                mean = float(np.nanmean(f.metadata_column(name))) if name in f.metadata_names and len(f) else None
                integrals.append(f"{t} (mean integral {mean:.4g})" if mean is not None and np.isfinite(mean) else t)
            table.add_row("further targets", ", ".join(integrals))
        per_structure = f.store.read_segment_rows("numbers")  # one read of the whole column
        atoms = [len(numbers) for numbers in per_structure]
        elements, element_counts = np.unique(np.concatenate(per_structure) if per_structure else [], return_counts=True)
        counts = {int(z): int(c) for z, c in zip(elements, element_counts)}
        table.add_row("elements (atoms)", ", ".join(f"{symbol(z)} ({c})" for z, c in sorted(counts.items())) or "-")
        periodic = periodic_counts(f.store.read_column("pbc"))
        if periodic is not None:
            table.add_row("periodic", periodic)
        if atoms:
            table.add_row("atoms per structure", f"{min(atoms)} - {max(atoms)} (mean {np.mean(atoms):.1f})")
        for sym in f.basis.symbols:
            element = f.basis[sym]
            kind = "Gaussian" if element.gaussians is not None else "numeric"
            table.add_row(
                f"basis {sym}",
                f"{element.n_functions} functions, lmax {element.lmax}, {kind} radial, n_radial {list(element.n_radial)}",
            )
        p = f.provenance
        table.add_row("producer", f"{p.producer} {p.producer_version}".strip() or "-")
        for name in ("functional", "ao_basis", "aux_basis", "fit_metric", "created"):
            if getattr(p, name):
                table.add_row(name.replace("_", " "), getattr(p, name))
        if f.metadata_names and len(f):
            recorded = [n for n in f.metadata_names if np.isfinite(f.metadata_column(n)).any()]
            table.add_row("metadata", ", ".join(recorded) or "-")
        if f.extra_names:
            table.add_row("extras", ", ".join(f.extra_names))
        if f.field_names:
            table.add_row("grid fields", ", ".join(f.field_names))
        size = path.stat().st_size
        table.add_row(
            "size on disk", f"{size / 1e6:.2f} MB" + (f" ({size / len(f) / 1e3:.1f} kB per structure)" if len(f) else "")
        )
    return table


def periodic_counts(pbc: np.ndarray) -> str | None:
    """``"12 of 40 (3D 12, 2D 0)"`` for the per-structure pbc rows, or None when none is periodic."""
    pbc = np.asarray(pbc, dtype=bool).reshape(-1, 3)
    periodic = pbc.any(axis=1)
    if not periodic.any():
        return None
    dims = pbc.sum(axis=1)
    other = int(periodic.sum() - (dims == 3).sum() - (dims == 2).sum())
    text = f"{int(periodic.sum())} of {len(pbc)} (3D {int((dims == 3).sum())}, 2D {int((dims == 2).sum())}"
    return text + (f", other {other})" if other else ")")
