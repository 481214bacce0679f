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

from rho_data import AuxiliaryBasis
from rho_data.layout import key_name

from .data import Batch
from .errors import RhoModelError


@dataclass
class SolveInfo:
    alpha: float
    iterations: int
    relative_residual: float
    seconds: float
    converged: bool


RCOND = 1e-12  # directions of a key's features with sigma^2 < RCOND * sigma_max^2 are dropped


def input_rows(x: torch.Tensor, l: int) -> torch.Tensor:
    """(atoms, 2l+1, q) model inputs -> (atoms (2l+1), q) rows, with a ones column (bias) for l = 0."""
    rows = x.reshape(-1, x.shape[-1])
    if l == 0:
        rows = torch.cat([rows, torch.ones(rows.shape[0], 1, dtype=rows.dtype, device=rows.device)], dim=1)
    return rows


class RowSpace:
    """Coordinates of the row space of a key's features X (rows, q): X V = phi, V^T V = I.

    Obtained from the eigendecomposition of the smaller Gram matrix, never from an SVD of X:
    K = X X^T = U Lambda U^T when rows <= q (then phi = U Lambda^{1/2}, V = X^T U Lambda^{-1/2},
    formed only when the weights are needed), else G = X^T X = V Lambda V^T (phi = X V).
    Directions with lambda < rcond lambda_max are dropped (1e-12: sigma / sigma_max < 1e-6).
    """

    def __init__(
        self,
        phi: torch.Tensor,
        sigma2: torch.Tensor,
        *,
        x: torch.Tensor | None = None,
        u_scaled: torch.Tensor | None = None,
        v: torch.Tensor | None = None,
    ):
        self.phi, self.sigma2 = phi, sigma2
        self._x, self._u_scaled, self._v = x, u_scaled, v

    @classmethod
    def from_gram(cls, x: torch.Tensor, gram: torch.Tensor, by_rows: bool, rcond: float = RCOND) -> RowSpace:
        if x.shape[0] == 0 or gram.numel() == 0:
            return cls(x.new_zeros(x.shape[0], 0), x.new_zeros(0), v=x.new_zeros(x.shape[1], 0))
        lam, vec = torch.linalg.eigh(gram)
        top = float(lam[-1])
        keep = lam > rcond * top if top > 0 else torch.zeros_like(lam, dtype=torch.bool)
        lam, vec = lam[keep], vec[:, keep]
        if by_rows:
            s = lam.sqrt()
            return cls(vec * s, lam, x=x, u_scaled=vec / s)
        return cls(x @ vec, lam, v=vec)

    @classmethod
    def from_rows(cls, x: torch.Tensor, rcond: float = RCOND) -> RowSpace:
        by_rows = x.shape[0] <= x.shape[1]
        return cls.from_gram(x, x @ x.T if by_rows else x.T @ x, by_rows, rcond)

    def dual(self, z: torch.Tensor) -> torch.Tensor | None:
        """a with W = X^T a (row-Gram spaces), or None."""
        return self._u_scaled @ z if self._u_scaled is not None else None

    def weights(self, z: torch.Tensor) -> torch.Tensor:
        if self._v is not None:
            return self._v @ z
        return self._x.T @ (self._u_scaled @ z)

    def v(self) -> torch.Tensor:
        if self._v is None:
            self._v = self._x.T @ self._u_scaled
        return self._v


class LinearProblem:
    """Normal equations of the overlap-metric fit on one batch (all training structures).

    ``spaces`` (from :class:`SharedRows`) gives the row-space coordinates of each key; without
    it they are computed here from the features' Gram matrix.
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
    ):
        self.batch = batch
        self.target = target
        self.names: list[str] = []
        self.phi: dict[str, torch.Tensor] = {}
        self.sigma2: dict[str, torch.Tensor] = {}
        self.gather: dict[str, torch.Tensor] = {}
        self.bias: dict[str, bool] = {}
        self.precond: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.spaces: dict[str, RowSpace] = {}
        if one_centre is None:
            one_centre = _one_centre_radial(batch)
        for key in batch.layout.keys:
            name = key_name(key)
            l = key[0]
            index = torch.as_tensor(batch.layout.index[key], device=target.device)  # (atoms, n, 2l+1)
            self.gather[name] = index.transpose(1, 2).reshape(-1, index.shape[1])
            self.names.append(name)
            self.bias[name] = l == 0
            if spaces is not None:
                space = spaces[name]
            else:
                space = RowSpace.from_rows(input_rows(inputs[name], l), rcond)
            self.spaces[name] = space
            self.phi[name] = space.phi
            self.sigma2[name] = space.sigma2
            lam, q = torch.linalg.eigh(torch.as_tensor(one_centre[key], dtype=target.dtype, device=target.device))
            self.precond[name] = (lam.clamp_min(0.0), q)
        self.shapes = {n: (self.phi[n].shape[1], self.gather[n].shape[1]) for n in self.names}

    @property
    def v(self) -> dict[str, torch.Tensor]:
        """V per key, W = V z (computed on demand when the space came from the row Gram)."""
        return {n: self.spaces[n].v() for n in self.names}

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
    def solve(
        self,
        alpha: float,
        *,
        tol: float = 1e-8,
        max_iter: int = 5000,
        start: dict[str, torch.Tensor] | None = None,
        warm_tol: float | None = None,
    ) -> tuple[dict[str, torch.Tensor], SolveInfo]:
        """Preconditioned CG until ||b - H z|| <= tol ||b|| and, from a start, <= warm_tol ||b - H z_start||.

        The second criterion matters for warm starts: the solution at 10 alpha has the residual
        9 alpha z at alpha, below any fixed tol once alpha is small, although the two solutions
        differ in every direction the data determines weakly (eigenvalues of H near alpha).
        """
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
        goal = tol if warm_tol is None or start is None else min(tol, warm_tol * rel)
        it = 0
        while rel > goal and it < max_iter:
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
        return z, SolveInfo(alpha, it, rel, time.perf_counter() - t0, rel <= goal * 10)

    def objective(self, z: dict[str, torch.Tensor], alpha: float) -> float:
        w = self.weights(z)
        reg = sum(float((wk**2).sum()) for wk in w.values())
        return float(self.batch.overlap.quadratic(self.apply_a(z) - self.target)) + alpha * reg

    def weights(self, z: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Weights in input coordinates, (q [+1 bias row], n_radial) per key."""
        return {n: self.spaces[n].weights(z[n]) for n in self.names}

    def residual_norm(self, z: dict[str, torch.Tensor], alpha: float) -> float:
        """||b - H z|| / ||b||, to choose between warm starts."""
        b = self.apply_at(self.batch.overlap.matvec(self.target))
        hz = self.hessian(z, alpha)
        return _norm({n: b[n] - hz[n] for n in self.names}) / (_norm(b) or 1.0)


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
                    sub = block[start : start + size, start : start + size].reshape(n, 2 * l + 1, n, 2 * l + 1)
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


State = dict[str, torch.Tensor]  # per key: dual a (rows of the whole training set, n) or primal W (q, n)


class SharedRows:
    """What all CV folds and the final fit share: features, Gram matrices, one-centre blocks.

    Built once from the batch of all training records. A fold's row space comes from the rows
    (or from G minus the held-out part) of the precomputed Gram matrix, so no feature matrix is
    multiplied or decomposed per fold beyond one eigendecomposition per key.
    """

    def __init__(
        self, batch: Batch, inputs: dict[str, torch.Tensor], target: torch.Tensor, basis: AuxiliaryBasis, *, rcond: float = RCOND
    ):
        self.batch, self.target, self.basis, self.rcond = batch, target, basis, rcond
        self.records = batch.records
        self.one_centre = _one_centre_radial(batch)
        self.x: dict[str, torch.Tensor] = {}
        self.row_record: dict[str, np.ndarray] = {}
        self.by_rows: dict[str, bool] = {}
        self.gram: dict[str, torch.Tensor] = {}
        for key in batch.layout.keys:
            name, l = key_name(key), key[0]
            x = input_rows(inputs[name], l)
            self.x[name] = x
            self.row_record[name] = np.repeat(batch.layout.atoms[key][:, 0], 2 * l + 1)
            self.by_rows[name] = x.shape[0] <= x.shape[1]
            self.gram[name] = x @ x.T if self.by_rows[name] else x.T @ x
        offsets = batch.layout.offsets
        self._flat = [np.arange(offsets[i], offsets[i + 1]) for i in range(len(self.records))]

    def __len__(self) -> int:
        return len(self.records)

    def spaces(self, positions: Sequence[int]) -> tuple[dict[str, RowSpace], dict[str, np.ndarray]]:
        """Row spaces of the records at ``positions`` (sorted), and each key's row mask."""
        spaces, masks = {}, {}
        for name, x in self.x.items():
            mask = np.isin(self.row_record[name], positions)
            sel = torch.as_tensor(np.flatnonzero(mask), device=x.device)
            xf = x[sel]
            if self.by_rows[name]:
                gram = self.gram[name][sel][:, sel]
            else:
                out = torch.as_tensor(np.flatnonzero(~mask), device=x.device)
                gram = self.gram[name] - x[out].T @ x[out] if len(out) < len(sel) else xf.T @ xf
            spaces[name] = RowSpace.from_gram(xf, gram, self.by_rows[name], self.rcond)
            masks[name] = mask
        return spaces, masks

    def problem(self, positions: Sequence[int]) -> tuple[LinearProblem, dict[str, np.ndarray]]:
        positions = sorted(int(p) for p in positions)
        if positions == list(range(len(self.records))):
            batch, target = self.batch, self.target
        else:
            batch = Batch([self.records[p] for p in positions], self.basis, dtype=self.target.dtype, device=self.target.device)
            target = self.target[torch.as_tensor(np.concatenate([self._flat[p] for p in positions]), device=self.target.device)]
        spaces, masks = self.spaces(positions)
        return LinearProblem(batch, None, target, spaces=spaces, one_centre=self.one_centre), masks

    def state(self, problem: LinearProblem, masks: dict[str, np.ndarray], z: dict[str, torch.Tensor]) -> State:
        """The weights of z in a fold-independent form (for warm starts of other folds)."""
        out = {}
        for name in problem.names:
            space = problem.spaces[name]
            if self.by_rows[name]:
                a = self.x[name].new_zeros(len(masks[name]), z[name].shape[1])
                if space.phi.shape[1]:
                    a[torch.as_tensor(np.flatnonzero(masks[name]), device=a.device)] = space.dual(z[name])
                out[name] = a
            else:
                out[name] = space.weights(z[name])
        return out

    def start(self, problem: LinearProblem, masks: dict[str, np.ndarray], state: State) -> dict[str, torch.Tensor]:
        """z of ``problem`` whose predictions on its rows are those of the weights in ``state``."""
        out = {}
        for name in problem.names:
            space = problem.spaces[name]
            if self.by_rows[name]:
                sel = torch.as_tensor(np.flatnonzero(masks[name]), device=state[name].device)
                pred = self.gram[name][sel] @ state[name]  # X_fold W
                out[name] = space._u_scaled.T @ pred if space._u_scaled is not None else pred.new_zeros(0, pred.shape[1])
            else:
                out[name] = space.v().T @ state[name]
        return out

    def predict_rows(
        self, problem: LinearProblem, masks: dict[str, np.ndarray], z: dict[str, torch.Tensor], held: np.ndarray
    ) -> dict[str, torch.Tensor]:
        """X_held W per key for the held-out records ``held`` (rows in training order)."""
        out = {}
        for name in problem.names:
            rows = torch.as_tensor(np.flatnonzero(np.isin(self.row_record[name], held)), device=self.target.device)
            space = problem.spaces[name]
            if self.by_rows[name]:
                sel = torch.as_tensor(np.flatnonzero(masks[name]), device=rows.device)
                a = space.dual(z[name])
                out[name] = (
                    self.gram[name][rows][:, sel] @ a
                    if a is not None and a.numel()
                    else self.x[name].new_zeros(len(rows), z[name].shape[1])
                )
            else:
                out[name] = self.x[name][rows] @ space.weights(z[name])
        return out

    def held_out(self, positions: Sequence[int]):
        """(batch, target) of held-out records, to evaluate a fold's solutions."""
        positions = sorted(int(p) for p in positions)
        batch = Batch([self.records[p] for p in positions], self.basis, dtype=self.target.dtype, device=self.target.device)
        target = self.target[torch.as_tensor(np.concatenate([self._flat[p] for p in positions]), device=self.target.device)]
        return batch, target


class Fold:
    """One CV fold: the problem on its training part and the error on its held-out part."""

    def __init__(self, shared: SharedRows, train: Sequence[int], held: Sequence[int]):
        self.shared = shared
        self.held = np.asarray(sorted(int(i) for i in held))
        self.problem, self.masks = shared.problem(train)
        self.held_batch, self.held_target = shared.held_out(self.held)
        self.held_gather = {}
        for key in self.held_batch.layout.keys:
            index = torch.as_tensor(self.held_batch.layout.index[key], device=self.held_target.device)
            self.held_gather[key_name(key)] = index.transpose(1, 2).reshape(-1, index.shape[1])

    def evaluate(self, z: dict[str, torch.Tensor]) -> tuple[float, float]:
        """(sum of r^T S r, sum of d^T S d) over the held-out records."""
        rows = self.shared.predict_rows(self.problem, self.masks, z, self.held)
        pred = torch.zeros_like(self.held_target)
        for name, idx in self.held_gather.items():
            if idx.shape[0]:
                pred[idx] = rows[name]
        return float(self.held_batch.overlap.quadratic(pred - self.held_target)), float(self.held_batch.constant)

    def state(self, z: dict[str, torch.Tensor]) -> State:
        return self.shared.state(self.problem, self.masks, z)

    def start(self, state: State) -> dict[str, torch.Tensor]:
        return self.shared.start(self.problem, self.masks, state)


def best_start(problem: LinearProblem, alpha: float, candidates: Sequence[dict[str, torch.Tensor] | None]):
    """The candidate start with the smallest relative residual (None: none given)."""
    best, best_res = None, np.inf
    for z in candidates:
        if z is None:
            continue
        res = problem.residual_norm(z, alpha)
        if res < best_res:
            best, best_res = z, res
    return best


@dataclass
class CrossValidation:
    alpha: float
    scan: list[dict]
    alphas: list[float]
    start: State | None  # the folds' mean weights at the chosen alpha


PATIENCE_MARGIN = 0.01  # an alpha counts as worse when its held-out error exceeds the best by more than 1 %


def scan_grid(
    alphas: Sequence[float],
    solve_alpha: Callable[[float, object], tuple[float, object]],
    *,
    extend: int,
    patience: int,
    log: Callable[[str], None],
    what: str,
) -> tuple[float, dict[float, float], bool]:
    """The alpha of smallest held-out error; the errors of every alpha scanned; whether the descent stopped.

    ``solve_alpha(alpha, start)`` solves at ``alpha`` from ``start`` (the solution at the
    neighbouring alpha scanned before, None for the first) and returns (held-out error, solution).
    The grid is scanned from large to small alpha; with ``patience`` > 0 the descent stops once
    that many consecutive alphas are worse than the best by more than PATIENCE_MARGIN. When the
    best alpha is at an end of the scanned grid (and the descent was not stopped), the grid is
    extended by factors of 10 on that side, ``extend`` times at most. Ties go to the larger alpha.
    """
    errors: dict[float, float] = {}

    def run(alpha: float, start: object) -> object:
        errors[alpha], solution = solve_alpha(alpha, start)
        return solution

    def best() -> float:
        return min(sorted(errors, reverse=True), key=lambda a: errors[a])

    grid = sorted({float(a) for a in alphas}, reverse=True)
    top = bottom = run(grid[0], None)
    stopped = False
    for k, alpha in enumerate(grid[1:], start=1):
        bottom = run(alpha, bottom)
        worse = [a for a in grid[max(0, k - patience + 1) : k + 1] if errors[a] > (1 + PATIENCE_MARGIN) ** 2 * errors[best()]]
        if patience and k + 1 < len(grid) and len(worse) == patience:
            stopped = True
            log(
                f"{what}: the last {patience} alphas are worse than the best ({best():.0e}) by more than "
                f"{100 * PATIENCE_MARGIN:.0f} %; not scanning below {alpha:.0e}"
            )
            break
    up = down = 0
    while True:
        chosen, scanned = best(), sorted(errors)
        if chosen == scanned[-1] and up < extend:
            up += 1
            log(f"{what}: best alpha {chosen:.0e} is at the top of the grid; extending the scan to {chosen * 10.0:.0e}")
            top = run(chosen * 10.0, top)
        elif chosen == scanned[0] and not stopped and down < extend and len(scanned) > 1:
            down += 1
            log(f"{what}: best alpha {chosen:.0e} is at the bottom of the grid; extending the scan to {chosen / 10.0:.0e}")
            bottom = run(chosen / 10.0, bottom)
        else:
            break
    if len(scanned) > 1 and (chosen == scanned[-1] or (chosen == scanned[0] and not stopped)):
        log(f"{what}: warning: the best alpha {chosen:.0e} is at the end of the scanned grid (extension limit {extend} reached)")
    return chosen, errors, stopped


def cross_validate(
    shared: SharedRows,
    alphas: Sequence[float],
    folds: int,
    seed: int,
    *,
    tol: float,
    max_iter: int,
    warm_tol: float | None = None,
    extend: int = 0,
    patience: int = 0,
    log: Callable[[str], None] = print,
    make_fold: Callable[[SharedRows, Sequence[int], Sequence[int]], Fold] = Fold,
) -> CrossValidation:
    """k-fold CV over the training records only; the best alpha, the scan and a warm start.

    The grid is scanned by :func:`scan_grid`, every fold at one alpha before the next alpha.
    Each solve starts from the better (smaller residual) of the fold's solution at the
    previous alpha and the previous fold's solution at this alpha, and stops at the relative
    residual ``tol`` (looser than the final fit) once it has also reduced its starting residual
    by ``warm_tol``. Without that second condition a warm start from 10 alpha meets ``tol`` at
    once for small alphas, which are then never resolved from their neighbour (ties go to the
    larger alpha). The fold problems are rebuilt per alpha (one is held in memory at a time).
    """
    n = len(shared)
    if n < folds:
        raise RhoModelError(f"fit: {folds}-fold cross-validation needs at least {folds} training structures, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    parts = [sorted(int(i) for i in part) for part in np.array_split(order, folds)]
    norm = 0.0
    scan: list[dict] = []
    means: dict[float, State] = {}  # the folds' mean weights per alpha
    log(
        f"cv: {folds} folds, alphas {' '.join(f'{a:.0e}' for a in sorted(alphas))}, "
        f"fold solves to relative residual {tol:.0e}"
        + (f" and {warm_tol:.0e} of their warm start's" if warm_tol is not None else "")
        + (f"; the descent stops after {patience} alphas worse than the best" if patience else "")
    )

    def solve_alpha(alpha: float, starts: list[State] | None) -> tuple[float, list[State]]:
        """Every fold at ``alpha``; the total held-out error and the folds' states."""
        nonlocal norm
        states: list[State] = []
        total = ref_total = 0.0
        for f, held in enumerate(parts):
            held_set = set(held)
            fold = make_fold(shared, [i for i in range(n) if i not in held_set], held)
            candidates = [fold.start(starts[f]) if starts is not None else None]
            if states:
                candidates.append(fold.start(states[-1]))
            start = best_start(fold.problem, alpha, candidates)
            z, info = fold.problem.solve(alpha, tol=tol, max_iter=max_iter, start=start, warm_tol=warm_tol)
            err, ref = fold.evaluate(z)
            total, ref_total = total + err, ref_total + ref
            states.append(fold.state(z))
            del fold
            scan.append(
                {
                    "fold": f,
                    "alpha": alpha,
                    "error": err,
                    "norm": ref,
                    "iterations": info.iterations,
                    "relative_residual": info.relative_residual,
                    "seconds": info.seconds,
                }
            )
            log(
                f"cv fold {f} alpha {alpha:.1e} held-out rel. error {np.sqrt(err / max(ref, 1e-300)):.3e} "
                f"cg iterations {info.iterations} residual {info.relative_residual:.1e} ({info.seconds:.1f} s)"
            )
            if info.iterations == 0:
                log(
                    f"cv fold {f} alpha {alpha:.1e}: the warm start already meets the CV tolerance; this alpha is "
                    "not resolved from its neighbour (lower fit.cv_tol or fit.warm_tol to resolve it)"
                )
        norm = ref_total
        means[alpha] = {k: sum(s[k] for s in states) / folds for k in states[0]}
        return total, states

    chosen, errors, _ = scan_grid(alphas, solve_alpha, extend=extend, patience=patience, log=log, what="cv")
    for a in sorted(errors):
        log(f"cv alpha {a:.1e} total rel. error {np.sqrt(errors[a] / max(norm, 1e-300)):.4e}{'  <- best' if a == chosen else ''}")
    return CrossValidation(chosen, scan, sorted(errors), means[chosen])


class Holdout:
    """Structures that no weight is fitted to (the validation split): held-out error of given weights."""

    def __init__(self, batch: Batch, inputs: dict[str, torch.Tensor], target: torch.Tensor):
        self.batch, self.target = batch, target
        self.rows: dict[str, torch.Tensor] = {}
        self.gather: dict[str, torch.Tensor] = {}
        for key in batch.layout.keys:
            name = key_name(key)
            index = torch.as_tensor(batch.layout.index[key], device=target.device)
            self.gather[name] = index.transpose(1, 2).reshape(-1, index.shape[1])
            self.rows[name] = input_rows(inputs[name], key[0])
        self.norm = float(batch.constant)  # sum_s d_s^T S_s d_s of the reference

    def error(self, weights: dict[str, torch.Tensor]) -> float:
        """sum_s r_s^T S_s r_s, r = X W - d over the held-out structures."""
        pred = torch.zeros_like(self.target)
        for name, idx in self.gather.items():
            if idx.shape[0]:
                pred[idx] = self.rows[name] @ weights[name]
        return float(self.batch.overlap.quadratic(pred - self.target))


@dataclass
class Selection:
    alpha: float
    scan: list[dict]
    alphas: list[float]
    solution: dict[str, torch.Tensor]  # z of the training problem at the chosen alpha


def select_on_validation(
    problem: LinearProblem,
    holdout: Holdout,
    alphas: Sequence[float],
    *,
    tol: float,
    max_iter: int,
    warm_tol: float | None = None,
    extend: int = 0,
    patience: int = 0,
    log: Callable[[str], None] = print,
) -> Selection:
    """alpha of the smallest validation error of the fit on all training structures.

    The same training problem is solved at every alpha of the grid (:func:`scan_grid`), each
    solve warm-started from the previous alpha's solution, to ``tol`` and ``warm_tol`` as the CV
    folds; the weights never see the validation structures and the test split is not involved.
    """
    scan: list[dict] = []
    solutions: dict[float, dict[str, torch.Tensor]] = {}
    log(
        f"validation: {len(holdout.batch)} structures, alphas {' '.join(f'{a:.0e}' for a in sorted(alphas))}, "
        f"solves to relative residual {tol:.0e}" + (f" and {warm_tol:.0e} of their warm start's" if warm_tol is not None else "")
    )

    def solve_alpha(alpha: float, start: dict[str, torch.Tensor] | None) -> tuple[float, dict[str, torch.Tensor]]:
        start = best_start(problem, alpha, [start])
        z, info = problem.solve(alpha, tol=tol, max_iter=max_iter, start=start, warm_tol=warm_tol)
        err = holdout.error(problem.weights(z))
        solutions[alpha] = z
        scan.append(
            {
                "alpha": alpha,
                "error": err,
                "norm": holdout.norm,
                "iterations": info.iterations,
                "relative_residual": info.relative_residual,
                "seconds": info.seconds,
            }
        )
        log(
            f"validation alpha {alpha:.1e} rel. error {np.sqrt(err / max(holdout.norm, 1e-300)):.4e} "
            f"cg iterations {info.iterations} residual {info.relative_residual:.1e} ({info.seconds:.1f} s)"
        )
        return err, z

    chosen, errors, _ = scan_grid(alphas, solve_alpha, extend=extend, patience=patience, log=log, what="validation")
    log(f"validation: best alpha {chosen:.1e}, rel. error {np.sqrt(errors[chosen] / max(holdout.norm, 1e-300)):.4e}")
    return Selection(chosen, scan, sorted(errors), solutions[chosen])
