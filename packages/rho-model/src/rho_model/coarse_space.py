"""The coarse part of the two-level CG preconditioner: an exact solve on the top directions of every key.

The one-centre preconditioner (:meth:`rho_model.normal_equations.LinearProblem.precondition`)
inverts the same-atom part of H(alpha) = M + alpha I exactly and ignores the two-centre overlaps,
which is why CG needs hundreds to thousands of iterations at small alpha. The coarse space Z holds,
for every key, its p row-space directions of largest sigma^2 with all their radial channels (p: the
budget ``coarse_max`` over the number of (key, radial channel) pairs); on it
H is solved exactly, E(alpha) = Z^T M Z + alpha I, and the preconditioner becomes

    P^-1 g = B^-1 g + Z E(alpha)^-1 Z^T g        (additive two-level, symmetric positive definite)

Measured on 80 organic molecules (31,970 unknowns, coarse_max 3000): 4.6x fewer iterations.
Z^T M Z costs one product with S per coarse column (formed once per problem; taken from M where the
dense route formed it); E(alpha) is factorised once per alpha.
"""

from __future__ import annotations

import time

import torch

from .shifted_cholesky import ShiftedCholesky

COLUMN_CHUNK = 128


class CoarseSpace:
    """Z^T M Z of a problem on at most ``max_unknowns`` coordinates, and the correction per alpha."""

    def __init__(self, problem, max_unknowns: int):
        t0 = time.perf_counter()
        channels = sum(m for _, m in problem.shapes.values())
        per_key = max(1, int(max_unknowns) // max(channels, 1))
        self.index: dict[str, torch.Tensor] = {}  # per key: flat positions in z[name].reshape(-1)
        flat, start = [], 0
        for name in problem.names:
            r, m = problem.shapes[name]
            top = torch.argsort(problem.sigma2[name], descending=True)[: min(per_key, r)].sort().values
            local = (top[:, None] * m + torch.arange(m)[None, :]).reshape(-1)
            self.index[name] = local.to(problem.target.device)
            flat.append(local + start)
            start += r * m
        positions = torch.cat(flat) if flat else torch.zeros(0, dtype=torch.long)
        self.dim = int(positions.numel())
        if problem.dense is not None:  # the dense route's M is already formed (CG continues from its solution)
            matrix = problem.dense.matrix[positions][:, positions]
        else:
            matrix = problem.target.new_empty(self.dim, self.dim)
            for s in range(0, self.dim, COLUMN_CHUNK):
                cols = positions[s : s + COLUMN_CHUNK]
                matrix[:, s : s + len(cols)] = problem.columns(cols)[positions]
        self.matrix = 0.5 * (matrix + matrix.T)
        self.shifted = ShiftedCholesky(self.matrix)
        self.seconds = time.perf_counter() - t0

    def correct(self, g: dict[str, torch.Tensor], out: dict[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
        """out + Z E(alpha)^-1 Z^T g (out unchanged when E(alpha) is not numerically positive definite)."""
        if not self.dim:
            return out
        names = list(self.index)
        y = self.shifted.solve(torch.cat([g[n].reshape(-1)[self.index[n]] for n in names]), alpha)
        if y is None:
            return out
        result, start = dict(out), 0
        for n in names:
            k = self.index[n].numel()
            flat = result[n].reshape(-1).clone()
            flat[self.index[n]] += y[start : start + k]
            result[n] = flat.reshape(result[n].shape)
            start += k
        return result
