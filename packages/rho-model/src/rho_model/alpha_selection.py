"""Choice of alpha: a scan of the grid judged on held-out structures (k-fold CV or a validation split).

The test split is never involved: CV holds out parts of the training structures, the validation
route fits all training structures and judges them on the validation split.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .coarse_space import CoarseSpace
from .errors import RhoModelError
from .normal_equations import LinearProblem
from .shared_rows import Fold, Holdout, SharedRows, State
from .solver import best_start


@dataclass
class CrossValidation:
    alpha: float
    scan: list[dict]
    alphas: list[float]
    start: State | None  # the folds' mean weights at the chosen alpha


PATIENCE_MARGIN = 0.01  # an alpha counts as worse when its held-out error exceeds the best by more than 1 %
CLEARLY_WORSE = 0.10  # one alpha this much worse than the best ends the descent at once (with patience > 0)


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
    The grid is scanned from large to small alpha. Whenever the best alpha so far is the largest
    scanned, the scan is first extended upwards by factors of 10 (``extend`` times at most), so that
    the descent is judged against the best alpha above it too: with ``patience`` > 0 the descent
    stops once that many consecutive alphas are worse than the best by more than PATIENCE_MARGIN,
    or at once when the last one is worse by more than CLEARLY_WORSE (the held-out error is then
    rising steeply, and the smaller alphas below are the dearest to solve).
    Large alphas are cheap (few CG iterations) and small ones dear, so an optimum above the grid
    no longer costs the grid's smallest alphas. When the best alpha is at the bottom of the scanned
    grid (and the descent was not stopped), the grid is extended downwards likewise. Ties go to the
    larger alpha.
    """
    errors: dict[float, float] = {}
    up = down = 0

    def run(alpha: float, start: object) -> object:
        errors[alpha], solution = solve_alpha(alpha, start)
        return solution

    def best() -> float:
        return min(sorted(errors, reverse=True), key=lambda a: errors[a])

    def extend_up(top: object) -> object:
        nonlocal up
        while len(errors) > 1 and best() == max(errors) and up < extend:
            up += 1
            log(f"{what}: best alpha {best():.0e} is at the top of the grid; extending the scan to {best() * 10.0:.0e}")
            top = run(best() * 10.0, top)
        return top

    grid = sorted({float(a) for a in alphas}, reverse=True)
    top = bottom = run(grid[0], None)
    stopped = False
    for k, alpha in enumerate(grid[1:], start=1):
        bottom = run(alpha, bottom)
        top = extend_up(top)
        worse = [a for a in grid[max(0, k - patience + 1) : k + 1] if errors[a] > (1 + PATIENCE_MARGIN) ** 2 * errors[best()]]
        clearly = errors[alpha] > (1 + CLEARLY_WORSE) ** 2 * errors[best()]
        if patience and k + 1 < len(grid) and (len(worse) == patience or clearly):
            stopped = True
            reason = (
                f"alpha {alpha:.0e} is worse than the best ({best():.0e}) by more than {100 * CLEARLY_WORSE:.0f} %"
                if clearly
                else f"the last {patience} alphas are worse than the best ({best():.0e}) by more than "
                f"{100 * PATIENCE_MARGIN:.0f} %"
            )
            log(f"{what}: {reason}; not scanning below {alpha:.0e}")
            break
    while True:
        top = extend_up(top)
        chosen, scanned = best(), sorted(errors)
        if chosen == scanned[0] and not stopped and down < extend and len(scanned) > 1:
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
    larger alpha). The fold problems are rebuilt per alpha (one is held in memory at a time),
    except those solved by the dense route (:mod:`rho_model.solver`): their normal matrices are
    kept, so each fold forms its matrix once for the whole scan.
    """
    n = len(shared)
    if n < folds:
        raise RhoModelError(f"fit: {folds}-fold cross-validation needs at least {folds} training structures, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    parts = [sorted(int(i) for i in part) for part in np.array_split(order, folds)]
    norm = 0.0
    scan: list[dict] = []
    means: dict[float, State] = {}  # the folds' mean weights per alpha
    kept: dict[int, Fold] = {}  # folds solved by the dense route, kept for the next alphas
    coarse: dict[int, CoarseSpace] = {}  # the other folds' coarse spaces, kept likewise
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
            fold = kept.get(f)
            if fold is None:
                held_set = set(held)
                fold = make_fold(shared, [i for i in range(n) if i not in held_set], held)
                if 0 < fold.problem.dim <= fold.problem.dense_max:
                    kept[f] = fold  # its normal matrix serves every alpha
                else:
                    fold.problem.coarse = coarse.get(f)  # the rebuilt fold problem is the same: so is its coarse space
            candidates = [fold.start(starts[f]) if starts is not None else None]
            if states:
                candidates.append(fold.start(states[-1]))
            start = best_start(fold.problem, alpha, candidates)
            z, info = fold.problem.solve(alpha, tol=tol, max_iter=max_iter, start=start, warm_tol=warm_tol)
            err, ref = fold.evaluate(z)
            total, ref_total = total + err, ref_total + ref
            states.append(fold.state(z))
            if fold.problem.coarse is not None:
                coarse[f] = fold.problem.coarse
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
