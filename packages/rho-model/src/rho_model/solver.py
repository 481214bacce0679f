"""Solving H(alpha) z = b (:mod:`rho_model.normal_equations`) for one alpha after another.

Two routes, chosen by the number of unknowns ``dim`` against ``dense_max``:

- dense (dim <= dense_max): M = Phi^T S Phi is formed once per problem and every alpha costs one
  Cholesky factorisation of M + alpha I (dim^3 / 3), so a whole alpha scan shares the expensive
  part. The relative residual is then measured with the operator; above the tolerance (or when
  M + alpha I is not numerically positive definite) conjugate gradient continues from it.
- conjugate gradient preconditioned with the exact inverse of the one-centre part of H, warm
  started from a neighbouring alpha's solution: memory linear in the data.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .normal_equations import Coordinates, LinearProblem, dot, norm
from .shifted_cholesky import ShiftedCholesky


@dataclass
class SolveInfo:
    alpha: float
    iterations: int  # conjugate-gradient iterations (0 for a dense solve that met the tolerance)
    relative_residual: float
    seconds: float
    converged: bool
    method: str = "cg"  # "dense", "dense+cg" or "cg"


class DenseNormal:
    """M = Phi^T S Phi of a problem and its right-hand side, factorised per alpha."""

    def __init__(self, problem: LinearProblem):
        t0 = time.perf_counter()
        self.matrix = problem.normal_matrix()
        self.shifted = ShiftedCholesky(self.matrix, keep_factor=False)  # one solve per alpha
        self.b = problem.flatten(problem.rhs())
        self.seconds = time.perf_counter() - t0

    def solve(self, alpha: float) -> torch.Tensor | None:
        """(M + alpha I)^-1 b by Cholesky, or None when M + alpha I is not numerically positive definite."""
        return self.shifted.solve(self.b, alpha)


def solve(
    problem: LinearProblem,
    alpha: float,
    *,
    tol: float = 1e-8,
    max_iter: int = 5000,
    start: Coordinates | None = None,
    warm_tol: float | None = None,
) -> tuple[Coordinates, SolveInfo]:
    """z with ||b - H z|| <= tol ||b|| (see :func:`pcg` for ``start`` and ``warm_tol``), by the dense
    route when ``problem.dim <= problem.dense_max``, else by preconditioned conjugate gradient."""
    if not 0 < problem.dim <= problem.dense_max:
        return pcg(problem, alpha, tol=tol, max_iter=max_iter, start=start, warm_tol=warm_tol)
    t0 = time.perf_counter()
    if problem.dense is None:
        problem.dense = DenseNormal(problem)
    flat = problem.dense.solve(alpha)
    if flat is not None:
        z = problem.unflatten(flat)
        rel = problem.residual_norm(z, alpha)
        if rel <= tol:
            return z, SolveInfo(alpha, 0, rel, time.perf_counter() - t0, True, "dense")
        start = z
    z, info = pcg(problem, alpha, tol=tol, max_iter=max_iter, start=start)
    info.seconds = time.perf_counter() - t0
    info.method = "dense+cg" if flat is not None else "cg"
    return z, info


def pcg(
    problem: LinearProblem,
    alpha: float,
    *,
    tol: float = 1e-8,
    max_iter: int = 5000,
    start: Coordinates | None = None,
    warm_tol: float | None = None,
) -> tuple[Coordinates, SolveInfo]:
    """Preconditioned CG until ||b - H z|| <= tol ||b|| and, from a start, <= warm_tol ||b - H z_start||.

    The second criterion matters for warm starts: the solution at 10 alpha has the residual
    9 alpha z at alpha, below any fixed tol once alpha is small, although the two solutions
    differ in every direction the data determines weakly (eigenvalues of H near alpha).
    """
    t0 = time.perf_counter()
    names = problem.names
    b = problem.rhs()
    z = {n: v.clone() for n, v in start.items()} if start is not None else problem.zeros()
    hz = problem.hessian(z, alpha)
    r = {n: b[n] - hz[n] for n in names}
    bnorm = norm(b) or 1.0
    p_r = problem.precondition(r, alpha)
    p = {n: v.clone() for n, v in p_r.items()}
    rz = dot(r, p_r)
    rel = norm(r) / bnorm
    goal = tol if warm_tol is None or start is None else min(tol, warm_tol * rel)
    it = 0
    while rel > goal and it < max_iter:
        hp = problem.hessian(p, alpha)
        step = rz / dot(p, hp)
        for n in names:
            z[n] = z[n] + step * p[n]
            r[n] = r[n] - step * hp[n]
        it += 1
        if it % 200 == 0:  # refresh the recursive residual against round-off drift
            hz = problem.hessian(z, alpha)
            r = {n: b[n] - hz[n] for n in names}
        rel = norm(r) / bnorm
        p_r = problem.precondition(r, alpha)
        rz_new = dot(r, p_r)
        p = {n: p_r[n] + (rz_new / rz) * p[n] for n in names}
        rz = rz_new
    rel = problem.residual_norm(z, alpha)
    return z, SolveInfo(alpha, it, rel, time.perf_counter() - t0, rel <= goal * 10)


def best_start(problem: LinearProblem, alpha: float, candidates: Sequence[Coordinates | None]) -> Coordinates | None:
    """The candidate start with the smallest relative residual (None: none given).

    A dense problem needs no start: None is returned without computing residuals.
    """
    if 0 < problem.dim <= problem.dense_max:
        return None
    best, best_res = None, np.inf
    for z in candidates:
        if z is None:
            continue
        res = problem.residual_norm(z, alpha)
        if res < best_res:
            best, best_res = z, res
    return best
