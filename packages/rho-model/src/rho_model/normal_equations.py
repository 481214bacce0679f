"""The normal equations of the overlap-metric linear fit, as an operator on row-space coordinates.

With the design A (coefficients of the training set from the weights, all keys together), the
block-diagonal overlap S = diag(S_s) and the target d (reference minus baseline),

    L(W) = sum_s (A W - d)^T S_s (A W - d) + alpha ||W||^2

is minimised by (A^T S A + alpha I) W = A^T S d. In row-space coordinates z (W_k = V_k z_k,
:mod:`rho_model.rowspace`) the Hessian is H(alpha) = M + alpha I with M = Phi^T S Phi, Phi the
map from z to the flat coefficient vector (phi_k on the rows of key k, for each radial channel).
Every product costs time linear in the number of stored atom pairs; M is formed only on request
(:meth:`LinearProblem.normal_matrix`). Keys are coupled through the atom-pair blocks of S.
"""

from __future__ import annotations

import numpy as np
import torch

from rho_data.layout import key_name

from .data import Batch
from .distributed import Reducer
from .errors import RhoModelError
from .rowspace import RCOND, RowSpace, input_rows

Coordinates = dict[str, torch.Tensor]  # per key name: z of shape (r_k, n_k[, K])


class LinearProblem:
    """H(alpha) z = b of the overlap-metric fit on one batch (the training structures).

    ``spaces`` gives the row-space coordinates of each key (from :class:`rho_model.shared_rows.SharedRows`);
    without it they are computed from the features' Gram matrices. ``dense_max``: the largest
    dimension of z for which :meth:`solve` forms and factorises M (0: always conjugate gradient).
    With an active ``reducer`` the batch is this rank's share of the structures (``spaces`` then
    hold phi for its rows only) and every product with S is summed over the ranks.
    """

    def __init__(
        self,
        batch: Batch,
        inputs: dict[str, torch.Tensor] | None,
        target: torch.Tensor,
        *,
        rcond: float = RCOND,
        spaces: dict[str, RowSpace] | None = None,
        one_centre: dict | None = None,
        dense_max: int = 0,
        coarse_max: int = 0,
        reducer: Reducer | None = None,
    ):
        self.batch, self.target, self.dense_max, self.coarse_max = batch, target, int(dense_max), int(coarse_max)
        self.reducer = reducer if reducer is not None else Reducer()
        self.names: list[str] = []
        self.gather: dict[str, torch.Tensor] = {}
        self.spaces: dict[str, RowSpace] = {}
        self.precond: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        if one_centre is None:
            one_centre = one_centre_radial(batch, self.reducer)
        for key in batch.layout.keys:
            name = key_name(key)
            index = torch.as_tensor(batch.layout.index[key], device=target.device)  # (atoms, n, 2l+1)
            self.gather[name] = index.transpose(1, 2).reshape(-1, index.shape[1])
            self.names.append(name)
            self.spaces[name] = (
                spaces[name] if spaces is not None else RowSpace.from_rows(input_rows(inputs[name], key[0]), rcond)
            )
            lam, q = torch.linalg.eigh(torch.as_tensor(one_centre[key], dtype=target.dtype, device=target.device))
            self.precond[name] = (lam.clamp_min(0.0), q)
        self.phi = {n: self.spaces[n].phi for n in self.names}
        self.sigma2 = {n: self.spaces[n].sigma2 for n in self.names}
        self.shapes = {n: (self.phi[n].shape[1], self.gather[n].shape[1]) for n in self.names}
        self._rhs: Coordinates | None = None
        self.dense = None  # the factorisable M, built by the solver on first use (rho_model.solver.DenseNormal)
        self.coarse = None  # the coarse space of the preconditioner, built on first use (rho_model.coarse_space)

    @property
    def dim(self) -> int:
        """Number of unknowns: sum over keys of (row-space dimension x radial channels)."""
        return sum(r * n for r, n in self.shapes.values())

    @property
    def v(self) -> dict[str, torch.Tensor]:
        """V per key, W = V z (computed on demand when the space came from the row Gram)."""
        return {n: self.spaces[n].v() for n in self.names}

    # the operator -----------------------------------------------------------------------------
    def zeros(self) -> Coordinates:
        return {n: self.target.new_zeros(self.shapes[n]) for n in self.names}

    def apply_a(self, z: Coordinates) -> torch.Tensor:
        """Phi z: the flat coefficients (with a trailing batch dimension when z has one)."""
        extra = next(iter(z.values())).shape[2:] if z else ()
        flat = self.target.new_zeros((self.target.shape[0], *extra))
        for n in self.names:
            if self.phi[n].shape[0]:
                flat[self.gather[n]] = torch.tensordot(self.phi[n], z[n], dims=1)
        return flat

    def apply_at(self, r: torch.Tensor) -> Coordinates:
        """Phi^T r, for r of shape (D,) or (D, K)."""
        return {n: torch.tensordot(self.phi[n].T, r[self.gather[n]], dims=1) for n in self.names}

    def rhs(self) -> Coordinates:
        """b = Phi^T S d (S d from :func:`target_projections`)."""
        if self._rhs is None:
            self._rhs = self.summed(self.apply_at(target_projections(self.batch, self.target)))
        return self._rhs

    def summed(self, z: Coordinates) -> Coordinates:
        """Per-rank contributions summed over the ranks (one all_reduce; unchanged in one process)."""
        return self.unflatten(self.reducer.sum(self.flatten(z))) if self.reducer.active else z

    def hessian(self, z: Coordinates, alpha: float) -> Coordinates:
        """(M + alpha I) z."""
        hz = self.summed(self.apply_at(self.batch.overlap.matvec(self.apply_a(z))))
        return {n: hz[n] + alpha * z[n] for n in self.names}

    def precondition(self, g: Coordinates, alpha: float) -> Coordinates:
        """Exact inverse of the one-centre part of H: 1 / (sigma_i^2 lambda_j + alpha) in the eigenbasis of O_l,
        plus, with ``coarse_max`` > 0, the exact solve on the coarse space (:mod:`rho_model.coarse_space`)."""
        out = {}
        for n in self.names:
            lam, q = self.precond[n]
            denom = self.sigma2[n][:, None] * lam[None, :] + alpha
            out[n] = ((g[n] @ q) / denom) @ q.T
        if self.coarse_max > 0:
            if self.coarse is None:
                from .coarse_space import CoarseSpace

                self.coarse = CoarseSpace(self, self.coarse_max)
            out = self.coarse.correct(g, out, alpha)
        return out

    def normal_matrix(self, chunk: int = 512) -> torch.Tensor:
        """M = Phi^T S Phi (dim x dim), a block of rows at a time (M is symmetric): :meth:`columns` of every
        coordinate."""
        dim = self.dim
        out = self.target.new_empty(dim, dim)
        for start in range(0, dim, chunk):
            stop = min(dim, start + chunk)
            out[start:stop] = self.columns(torch.arange(start, stop)).T
        return out

    def columns(self, positions: torch.Tensor) -> torch.Tensor:
        """M[:, positions] (dim x len(positions)): unit vectors of z at ``positions`` mapped by Phi, multiplied
        by S and mapped back by Phi^T; memory dim x len + D x len, time linear in the atom pairs per column."""
        block = self.target.new_zeros(self.dim, len(positions))
        block[positions, torch.arange(len(positions))] = 1.0
        return self.flatten(self.summed(self.apply_at(self.batch.overlap.matvec(self.apply_a(self.unflatten(block))))))

    # packing ----------------------------------------------------------------------------------
    def flatten(self, z: Coordinates) -> torch.Tensor:
        """Per-key coordinates -> one vector (or matrix, with a trailing batch dimension), key by key."""
        return torch.cat([z[n].reshape(-1, *z[n].shape[2:]) for n in self.names])

    def unflatten(self, flat: torch.Tensor) -> Coordinates:
        out, start = {}, 0
        for n in self.names:
            r, m = self.shapes[n]
            out[n] = flat[start : start + r * m].reshape(r, m, *flat.shape[1:])
            start += r * m
        return out

    # results ----------------------------------------------------------------------------------
    def objective(self, z: Coordinates, alpha: float) -> float:
        w = self.weights(z)
        reg = sum(float((wk**2).sum()) for wk in w.values())
        misfit = self.reducer.sum_float(float(self.batch.overlap.quadratic(self.apply_a(z) - self.target)))
        return misfit + alpha * reg

    def weights(self, z: Coordinates) -> dict[str, torch.Tensor]:
        """Weights in input coordinates, (q [+1 bias row], n_radial) per key."""
        return {n: self.spaces[n].weights(z[n]) for n in self.names}

    def residual_norm(self, z: Coordinates, alpha: float) -> float:
        """||b - H z|| / ||b||."""
        b = self.rhs()
        hz = self.hessian(z, alpha)
        return norm({n: b[n] - hz[n] for n in self.names}) / (norm(b) or 1.0)

    def solve(self, alpha: float, **kwargs):
        """z at ``alpha`` and its :class:`rho_model.solver.SolveInfo` (see :func:`rho_model.solver.solve`)."""
        from .solver import solve

        return solve(self, alpha, **kwargs)


def target_projections(batch: Batch, target: torch.Tensor) -> torch.Tensor:
    """S d for a target d of the batch.

    Where the batch holds the dataset's projections w = S d_ref and its overlap is not truncated
    by a pair cutoff (w is then S d_ref for the S used here), S d = w - S (d_ref - d): no product
    with S at all when d = d_ref (no baseline), else one with the baseline d_ref - d. Otherwise
    one product S d.
    """
    if batch.stored_projections and batch.pair_cutoff is None:
        offset = batch.reference - target
        if not bool(offset.any()):
            return batch.projections
        return batch.projections - batch.overlap.matvec(offset)
    return batch.overlap.matvec(target)


def dot(a: Coordinates, b: Coordinates) -> float:
    return float(sum((a[n] * b[n]).sum() for n in a))


def norm(a: Coordinates) -> float:
    return float(np.sqrt(dot(a, a)))


def one_centre_radial(batch: Batch, reducer: Reducer | None = None) -> dict:
    """O_l[n, n'] per key: the same-atom overlap averaged over m and over the atoms of the element
    (of every rank's structures when ``reducer`` is active)."""
    sums: dict = {}
    counts: dict = {}
    for rec in batch.records:
        sizes = rec.overlap.atom_sizes
        for a, block in enumerate(rec.overlap.diagonal_blocks()):
            z = int(rec.numbers[a])
            start = 0
            nrad = {k[0]: batch.layout.index[k].shape[1] for k in batch.layout.keys if k[1] == z}
            for l in range(max(nrad) + 1 if nrad else 0):
                n = nrad.get(l, 0)
                size = n * (2 * l + 1)
                if n:
                    sub = block[start : start + size, start : start + size].reshape(n, 2 * l + 1, n, 2 * l + 1)
                    sums[(l, z)] = sums.get((l, z), 0.0) + np.einsum("imjm->ij", sub) / (2 * l + 1)
                    counts[(l, z)] = counts.get((l, z), 0) + 1
                start += size
            if start != sizes[a]:
                raise RhoModelError(f"structure {rec.index}: atom {a} has {sizes[a]} basis functions, the basis says {start}")
    if reducer is not None and reducer.active:
        sizes = {k: batch.layout.index[k].shape[1] for k in batch.layout.keys}
        packed = np.concatenate([np.append(np.ravel(sums.get(k, np.zeros((n, n)))), counts.get(k, 0)) for k, n in sizes.items()])
        packed = reducer.sum(torch.as_tensor(packed, dtype=torch.float64)).numpy()
        sums, counts, start = {}, {}, 0
        for k, n in sizes.items():
            if packed[start + n * n] > 0:
                sums[k], counts[k] = packed[start : start + n * n].reshape(n, n), packed[start + n * n]
            start += n * n + 1
    out = {}
    for key in batch.layout.keys:
        o = sums[key] / counts[key] if key in sums else np.eye(batch.layout.index[key].shape[1])
        out[key] = 0.5 * (o + o.T)
    return out
