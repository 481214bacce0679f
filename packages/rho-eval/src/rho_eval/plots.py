"""PNG plots of an evaluation (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from rho_data.atomic import atomic_output  # noqa: E402
from rho_data.elements import symbol  # noqa: E402

NAMES = {"ri": "RI", "scf": "SCF", "ml": "predicted"}


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    try:
        with atomic_output(path, overwrite=True, what="plot") as tmp:
            fig.savefig(tmp, dpi=130, format=path.suffix.lstrip(".") or "png")
    finally:
        plt.close(fig)
    return path


def _finite(records: Sequence[dict], key: str) -> np.ndarray:
    v = np.array([r.get(key, np.nan) for r in records], dtype=float)
    return v[np.isfinite(v)]


def error_distribution(records: Sequence[dict], references: Sequence[str], path: Path) -> Path:
    """Histogram of the per-structure %NMAE against each reference (log-spaced bins)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    values = {ref: _finite(records, f"nmae_{ref}_percent") for ref in references}
    values = {ref: v[v > 0] for ref, v in values.items() if (v > 0).any()}
    if values:
        pooled = np.concatenate(list(values.values()))
        bins = np.geomspace(pooled.min() / 1.1, pooled.max() * 1.1, min(40, max(6, len(pooled) // 3)))
        for ref, v in values.items():
            ax.hist(v, bins=bins, alpha=0.6, label=f"vs {NAMES[ref]} (median {np.median(v):.3g} %)")
    if ax.get_legend_handles_labels()[1]:
        ax.set_xscale("log")
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no positive %NMAE to show", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("%NMAE per structure")
    ax.set_ylabel("structures")
    return _save(fig, path)


def nmae_vs_size(records: Sequence[dict], references: Sequence[str], path: Path) -> Path:
    """%NMAE of each structure against its number of atoms."""
    fig, ax = plt.subplots(figsize=(6, 4))
    n = np.array([r["n_atoms"] for r in records], dtype=float)
    for ref in references:
        v = np.array([r.get(f"nmae_{ref}_percent", np.nan) for r in records], dtype=float)
        ok = np.isfinite(v)
        if ok.any():
            ax.scatter(n[ok], v[ok], s=12, alpha=0.7, label=f"vs {NAMES[ref]}")
    ax.set_xlabel("atoms in the structure")
    ax.set_ylabel("%NMAE")
    if ax.get_legend_handles_labels()[1]:
        ax.legend()
    return _save(fig, path)


def parity_by_l(data: Mapping[int, tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    """Predicted against RI coefficients, one panel per angular momentum l."""
    ls = sorted(data)
    cols = min(4, max(1, len(ls)))
    rows = (len(ls) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    for ax, l in zip(axes.flat, ls):
        ref, pred = data[l]
        ax.scatter(ref, pred, s=2, alpha=0.4)
        lim = float(max(np.abs(ref).max(initial=0), np.abs(pred).max(initial=0))) or 1.0
        ax.plot([-lim, lim], [-lim, lim], "k-", lw=0.7)
        rmse = float(np.sqrt(np.mean((pred - ref) ** 2))) if len(ref) else float("nan")
        ax.set_title(f"l = {l} (RMSE {rmse:.2g})")
        ax.set_xlabel("RI coefficient")
        ax.set_ylabel("predicted")
    for ax in list(axes.flat)[len(ls) :]:
        ax.axis("off")
    return _save(fig, path)


def density_slice(
    s: np.ndarray,
    t: np.ndarray,
    reference: np.ndarray,
    difference: np.ndarray,
    atoms_2d: np.ndarray,
    numbers: np.ndarray,
    title: str,
    labels: tuple[str, str],
    path: Path,
    outline: np.ndarray | None = None,
) -> Path:
    """Reference density (log contours) and the density difference on a plane through the molecule
    (``outline``: a closed polygon (m, 2) drawn on both panels, the cell of a periodic structure)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    extent = (s[0], s[-1], t[0], t[-1])
    ref = np.maximum(reference, 1e-12)
    im0 = axes[0].imshow(np.log10(ref).T, origin="lower", extent=extent, cmap="viridis", vmin=max(np.log10(ref).max() - 6, -12))
    fig.colorbar(im0, ax=axes[0], label=f"log10 {labels[0]} (e/bohr^3)")
    lim = float(np.abs(difference).max()) or 1.0
    im1 = axes[1].imshow(difference.T, origin="lower", extent=extent, cmap="RdBu_r", vmin=-lim, vmax=lim)
    fig.colorbar(im1, ax=axes[1], label=f"{labels[1]} (e/bohr^3)")
    for ax in axes:
        for (x, y), z in zip(atoms_2d, numbers):
            ax.plot(x, y, "k.", ms=4)
            ax.annotate(symbol(int(z)), (x, y), textcoords="offset points", xytext=(3, 3), fontsize=8)
        if outline is not None:
            ax.plot(outline[:, 0], outline[:, 1], "k--", lw=0.8)
        ax.set_xlabel("bohr")
        ax.set_ylabel("bohr")
    axes[0].set_title(labels[0])
    axes[1].set_title(labels[1])
    fig.suptitle(title)
    return _save(fig, path)
