"""Statistics of the training records that fix a new model's transforms: feature scales, PCA or
whitening projections, species-mean l = 0 coefficients (the baseline), one-centre O_l^{-1/2}.

Scale: s_k = 1 / sqrt(mean over atoms of |x|^2). Whitening: x s V diag(1 / sqrt(sigma^2 + eps sigma_0^2)) sqrt(N)
from the SVD of the scaled rows (damped, see :func:`feature_statistics`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rho_data import AuxiliaryBasis
from rho_data.layout import BatchLayout, Key, key_name

from .data import Batch, Record
from .normal_equations import one_centre_radial

WHITEN_EPS = 1e-4


def feature_statistics(records: Sequence[Record], keys: Sequence[Key], options: dict, *, whiten: bool) -> dict[str, Any]:
    """Per key: feature scale (unit mean squared norm per atom), optional PCA/whitening projection."""
    stats: dict[str, Any] = {"scale": {}, "projection": {}}
    pca = options["descriptor"]["pca_components"]
    for key in keys:
        name = key_name(key)
        x = np.concatenate([r.features[key] for r in records])
        sq = float((x**2).sum() / max(len(x), 1))
        scale = 1.0 / np.sqrt(sq) if sq > 0 else 1.0
        stats["scale"][name] = scale
        if pca is None and not whiten:
            continue
        rows = (x * scale).reshape(-1, x.shape[-1])
        _, s, vh = np.linalg.svd(rows, full_matrices=False)
        keep = s > (1e-6 if whiten else 1e-8) * s[0] if len(s) and s[0] > 0 else np.zeros(len(s), dtype=bool)
        if pca is not None:
            keep[int(pca) :] = False
        v = vh[keep].T
        if whiten:
            # damped whitening v / sqrt(s^2 + eps s0^2): unit variance for the leading directions, at most
            # 1/sqrt(eps) amplification of weak ones, so that small weight steps stay small on new data
            v = v / np.sqrt(s[keep] ** 2 + WHITEN_EPS * s[0] ** 2) * np.sqrt(max(len(x), 1))
        stats["projection"][name] = v
    return stats


def baseline_means(records: Sequence[Record], keys: Sequence[Key], basis: AuxiliaryBasis) -> dict[str, np.ndarray | None]:
    """Mean invariant (l = 0) coefficients of each element over the training atoms."""
    layout = BatchLayout.build(basis, [r.numbers for r in records])
    flat = np.concatenate([np.asarray(r.coefficients) for r in records])
    out: dict[str, np.ndarray | None] = {}
    for key in keys:
        if key[0] == 0:
            values = flat[layout.index[key]]  # (atoms, n, 1)
            out[key_name(key)] = values[:, :, 0].mean(axis=0) if len(values) else None
    return out


def one_centre_inverse_sqrt(records: Sequence[Record], basis: AuxiliaryBasis) -> dict[str, np.ndarray]:
    """O_l^{-1/2} per key from the same-atom overlap blocks (output whitening)."""
    batch = Batch(records[: min(len(records), 20)], basis)
    out = {}
    for key, o in one_centre_radial(batch).items():
        lam, q = np.linalg.eigh(o)
        lam = np.clip(lam, 1e-12 * lam.max(), None)
        out[key_name(key)] = (q / np.sqrt(lam)) @ q.T
    return out
