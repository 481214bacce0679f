"""Exact overlap-metric fit of a linear model, and the choice of alpha by k-fold CV.

The model c = X_k W_k (+ b_k for l = 0) is linear in the weights, so

    L(W) = sum_s (A W - d)^T S_s (A W - d) + alpha ||W||^2

is minimised by the normal equations (A^T S A + alpha I) W = A^T S d. We solve them in the
SVD coordinates of each key's features, X_k = U_k Sigma_k V_k^T, W_k = V_k Z_k (the optimum
lies in the row space of X_k), with preconditioned conjugate gradient. The preconditioner is
the exact inverse of the one-centre part of the Hessian: the same-atom overlap of element z
at angular momentum l is O_l (x) I_{2l+1}, so that part is Sigma_k^2 (x) O_l, inverted in the
eigenbasis of O_l as 1 / (sigma_i^2 lambda_j + alpha). Every product costs time linear in
the number of atom pairs; no dense S is formed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .data import Batch, Record
from .errors import RhoModelError
from .layout import key_name


@dataclass
class SolveInfo:
    alpha: float
    iterations: int
    relative_residual: float
    seconds: float
    converged: bool


class LinearProblem:
    """Normal equations of the overlap-metric fit on one batch (all training structures)."""

    def __init__(self, batch: Batch, inputs: dict[str, torch.Tensor], target: torch.Tensor, *, rcond: float = 1e-10):
        self.batch = batch
        self.target = target
        self.names: list[str] = []
        self.phi: dict[str, torch.Tensor] = {}
        self.v: dict[str, torch.Tensor] = {}
        self.sigma2: dict[str, torch.Tensor] = {}
        self.gather: dict[str, torch.Tensor] = {}
        self.bias: dict[str, bool] = {}
        self.precond: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        one_centre = _one_centre_radial(batch)
        for key in batch.layout.keys:
            name = key_name(key)
            l = key[0]
            x = inputs[name]
            rows = x.reshape(-1, x.shape[-1])
            if l == 0:
                rows = torch.cat([rows, torch.ones(rows.shape[0], 1, dtype=rows.dtype, device=rows.device)], dim=1)
            self.bias[name] = l == 0
            idx = torch.as_tensor(batch.layout.index[key], device=x.device).transpose(1, 2).reshape(rows.shape[0], -1)
            self.gather[name] = idx
            self.names.append(name)
            if rows.shape[0] == 0:
                self.phi[name] = rows.new_zeros(0, 0)
                self.v[name] = rows.new_zeros(rows.shape[1], 0)
                self.sigma2[name] = rows.new_zeros(0)
            else:
                u, s, vh = torch.linalg.svd(rows, full_matrices=False)
                keep = s > rcond * s[0]
                self.phi[name] = u[:, keep] * s[keep]
                self.v[name] = vh[keep].T
                self.sigma2[name] = s[keep] ** 2
            o = one_centre[key]
            lam, q = torch.linalg.eigh(torch.as_tensor(o, dtype=x.dtype, device=x.device))
            self.precond[name] = (lam.clamp_min(0.0), q)
        self.shapes = {n: (self.phi[n].shape[1], self.gather[n].shape[1]) for n in self.names}

    # packing ------------------------------------------------------------------------------------
    def zeros(self) -> dict[str, torch.Tensor]:
        return {n: self.target.new_zeros(self.shapes[n]) for n in self.names}

    def apply_a(self, z: dict[str, torch.Tensor]) -> torch.Tensor:
        flat = torch.zeros_like(self.target)
        for n in self.names:
            if self.phi[n].shape[0]:
                flat[self.gather[n]] = self.phi[n] @ z[n]
        return flat

    def apply_at(self, r: torch.Tensor) -> dict[str, torch.Tensor]:
        return {n: self.phi[n].T @ r[self.gather[n]] for n in self.names}

    def hessian(self, z: dict[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
        hz = self.apply_at(self.batch.overlap.matvec(self.apply_a(z)))
        return {n: hz[n] + alpha * z[n] for n in self.names}

    def precondition(self, g: dict[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
        out = {}
        for n in self.names:
            lam, q = self.precond[n]
            denom = self.sigma2[n][:, None] * lam[None, :] + alpha
            out[n] = ((g[n] @ q) / denom) @ q.T
        return out

    # solving --------------------------------------------------------------------------------------
    def solve(self, alpha: float, *, tol: float = 1e-8, max_iter: int = 5000,
              start: dict[str, torch.Tensor] | None = None) -> tuple[dict[str, torch.Tensor], SolveInfo]:
        """Preconditioned CG until ||b - H z|| <= tol ||b||."""
        t0 = time.perf_counter()
        b = self.apply_at(self.batch.overlap.matvec(self.target))
        z = {n: v.clone() for n, v in start.items()} if start is not None else self.zeros()
        hz = self.hessian(z, alpha)
        r = {n: b[n] - hz[n] for n in self.names}
        bnorm = _norm(b) or 1.0
        p_r = self.precondition(r, alpha)
        p = {n: v.clone() for n, v in p_r.items()}
        rz = _dot(r, p_r)
        rel = _norm(r) / bnorm
        it = 0
        while rel > tol and it < max_iter:
            hp = self.hessian(p, alpha)
            step = rz / _dot(p, hp)
            for n in self.names:
                z[n] = z[n] + step * p[n]
                r[n] = r[n] - step * hp[n]
            it += 1
            if it % 200 == 0:  # refresh the recursive residual against round-off drift
                hz = self.hessian(z, alpha)
                r = {n: b[n] - hz[n] for n in self.names}
            rel = _norm(r) / bnorm
            p_r = self.precondition(r, alpha)
            rz_new = _dot(r, p_r)
            p = {n: p_r[n] + (rz_new / rz) * p[n] for n in self.names}
            rz = rz_new
        hz = self.hessian(z, alpha)
        rel = _norm({n: b[n] - hz[n] for n in self.names}) / bnorm
        return z, SolveInfo(alpha, it, rel, time.perf_counter() - t0, rel <= tol * 10)

    def objective(self, z: dict[str, torch.Tensor], alpha: float) -> float:
        w = self.weights(z)
        reg = sum(float((wk ** 2).sum()) for wk in w.values())
        return float(self.batch.overlap.quadratic(self.apply_a(z) - self.target)) + alpha * reg

    def weights(self, z: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Weights in input coordinates, (q [+1 bias row], n_radial) per key."""
        return {n: self.v[n] @ z[n] for n in self.names}


def _dot(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return float(sum((a[n] * b[n]).sum() for n in a))


def _norm(a: dict[str, torch.Tensor]) -> float:
    return float(np.sqrt(_dot(a, a)))


def _one_centre_radial(batch: Batch) -> dict:
    """O_l[n, n'] per key: the same-atom overlap averaged over m and over the atoms of the element."""
    sums: dict = {}
    counts: dict = {}
    for rec in batch.records:
        sizes = rec.overlap.atom_sizes
        for a, block in enumerate(rec.overlap.diagonal_blocks()):
            z = int(rec.numbers[a])
            start = 0
            ls = [k for k in batch.layout.keys if k[1] == z]
            nrad = {k[0]: batch.layout.index[k].shape[1] for k in ls}
            lmax = max(nrad) if nrad else -1
            for l in range(lmax + 1):
                n = nrad.get(l, 0)
                size = n * (2 * l + 1)
                if n:
                    sub = block[start:start + size, start:start + size].reshape(n, 2 * l + 1, n, 2 * l + 1)
                    o = np.einsum("imjm->ij", sub) / (2 * l + 1)
                    sums[(l, z)] = sums.get((l, z), 0.0) + o
                    counts[(l, z)] = counts.get((l, z), 0) + 1
                start += size
            if start != sizes[a]:
                raise RhoModelError(f"structure {rec.index}: atom {a} has {sizes[a]} basis functions, the basis says {start}")
    out = {}
    for key in batch.layout.keys:
        n = batch.layout.index[key].shape[1]
        out[key] = sums[key] / counts[key] if key in sums else np.eye(n)
        out[key] = 0.5 * (out[key] + out[key].T)
    return out


def split_weights(weights: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
    """(W (q, n), bias (n) or None) per key from the stacked solution."""
    out = {}
    for n, w in weights.items():
        if n.startswith("l0_"):
            out[n] = (w[:-1], w[-1])
        else:
            out[n] = (w, None)
    return out


def cross_validate(records: Sequence[Record], make_problem: Callable[[Sequence[Record]], tuple[LinearProblem, Callable]],
                   alphas: Sequence[float], folds: int, seed: int, *, tol: float, max_iter: int,
                   log: Callable[[str], None] = print) -> tuple[float, list[dict]]:
    """k-fold CV over the training records only; returns the best alpha and the scan.

    ``make_problem(train_records)`` returns (problem, evaluate) where ``evaluate(weights,
    held_records)`` gives (sum of r^T S r, sum of d^T S d) on the held-out fold.
    """
    n = len(records)
    if n < folds:
        raise RhoModelError(f"fit: {folds}-fold cross-validation needs at least {folds} training structures, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    parts = np.array_split(order, folds)
    errors = {float(a): 0.0 for a in alphas}
    norm = 0.0
    scan = []
    for f, held in enumerate(parts):
        held_set = set(int(i) for i in held)
        train = [records[i] for i in range(n) if i not in held_set]
        test = [records[i] for i in sorted(held_set)]
        problem, evaluate = make_problem(train)
        z = None
        for alpha in sorted(alphas, reverse=True):
            z, info = problem.solve(float(alpha), tol=tol, max_iter=max_iter, start=z)
            err, ref = evaluate(problem.weights(z), test)
            errors[float(alpha)] += err
            scan.append({"fold": f, "alpha": float(alpha), "error": err, "norm": ref, "iterations": info.iterations,
                         "relative_residual": info.relative_residual})
            log(f"cv fold {f} alpha {alpha:.1e} held-out rel. error {np.sqrt(err / max(ref, 1e-300)):.3e} "
                f"cg iterations {info.iterations} residual {info.relative_residual:.1e}")
        norm += ref
    best = min(errors, key=lambda a: errors[a])
    for a in sorted(errors):
        log(f"cv alpha {a:.1e} total rel. error {np.sqrt(errors[a] / max(norm, 1e-300)):.4e}{'  <- best' if a == best else ''}")
    return best, scan
