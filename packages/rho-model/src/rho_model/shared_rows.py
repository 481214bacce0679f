"""What the CV folds, the validation scan and the final fit share: features, Gram matrices, one-centre blocks.

A subset of the training structures (a CV fold) gets its row spaces from the rows of the shared
Gram matrices (:class:`SharedRows`), and its held-out error from the same matrices (:class:`Fold`);
a separate set of structures (the validation split) is judged by :class:`Holdout`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from rho_data import AuxiliaryBasis
from rho_data.layout import key_name

from .data import Batch
from .distributed import Reducer
from .errors import RhoModelError
from .normal_equations import LinearProblem, one_centre_radial
from .rowspace import RCOND, RowSpace, input_rows

State = dict[str, torch.Tensor]  # per key: dual a (rows of the whole training set, n) or primal W (q, n)


class SharedRows:
    """What all CV folds and the final fit share: features, Gram matrices, one-centre blocks.

    Built once from the batch of all training records. A fold's row space comes from the rows
    (or from G minus the held-out part) of the precomputed Gram matrix, so no feature matrix is
    multiplied or decomposed per fold beyond one eigendecomposition per key.

    With an active ``reducer`` (data-parallel fit) the batch is this rank's share: the Gram
    matrices cover every rank's rows (X^T X summed, or the rows of X gathered for X X^T), and only
    the problem on all training structures is available (no CV folds).
    """

    def __init__(
        self,
        batch: Batch,
        inputs: dict[str, torch.Tensor],
        target: torch.Tensor,
        basis: AuxiliaryBasis,
        *,
        rcond: float = RCOND,
        dense_max: int = 0,
        coarse_max: int = 0,
        reducer: Reducer | None = None,
    ):
        self.batch, self.target, self.basis, self.rcond, self.dense_max = batch, target, basis, rcond, int(dense_max)
        self.coarse_max = int(coarse_max)
        self.reducer = reducer if reducer is not None else Reducer()
        self.records = batch.records
        self.one_centre = one_centre_radial(batch, self.reducer)
        self.x_all: dict[str, torch.Tensor] = {}  # every rank's rows (row-Gram keys)
        self.mine: dict[str, slice] = {}  # this rank's rows among them
        self.x: dict[str, torch.Tensor] = {}
        self.row_record: dict[str, np.ndarray] = {}
        self.by_rows: dict[str, bool] = {}
        self.gram: dict[str, torch.Tensor] = {}
        for key in batch.layout.keys:
            name, l = key_name(key), key[0]
            x = input_rows(inputs[name], l)
            self.x[name] = x
            self.row_record[name] = np.repeat(batch.layout.atoms[key][:, 0], 2 * l + 1)
            rows = int(self.reducer.sum_float(float(x.shape[0])))
            self.by_rows[name] = rows <= x.shape[1]
            if self.by_rows[name]:
                self.x_all[name], self.mine[name] = self.reducer.gather_rows(x)
                self.gram[name] = self.x_all[name] @ self.x_all[name].T
            else:
                self.gram[name] = self.reducer.sum(x.T @ x)
        offsets = batch.layout.offsets
        self._flat = [np.arange(offsets[i], offsets[i + 1]) for i in range(len(self.records))]

    def __len__(self) -> int:
        return len(self.records)

    def spaces(self, positions: Sequence[int]) -> tuple[dict[str, RowSpace], dict[str, np.ndarray]]:
        """Row spaces of the records at ``positions`` (sorted), and each key's row mask."""
        if self.reducer.active:
            return self._all_ranks_spaces(positions)
        spaces, masks = {}, {}
        for name, x in self.x.items():
            mask = np.isin(self.row_record[name], positions)
            if mask.all():  # every row (the final fit, the validation scan): no copy of X or of its Gram matrix
                xf, gram = x, self.gram[name]
            else:
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

    def _all_ranks_spaces(self, positions: Sequence[int]) -> tuple[dict[str, RowSpace], dict[str, np.ndarray]]:
        """Row spaces of every rank's structures, phi restricted to this rank's rows."""
        if list(positions) != list(range(len(self.records))):
            raise RhoModelError("fit: a data-parallel exact fit solves on all training structures only (no CV folds)")
        spaces, masks = {}, {}
        for name, x in self.x.items():
            if self.by_rows[name]:
                space = RowSpace.from_gram(self.x_all[name], self.gram[name], True, self.rcond)
                space.phi = space.phi[self.mine[name]]
            else:
                space = RowSpace.from_gram(x, self.gram[name], False, self.rcond)
            spaces[name] = space
            masks[name] = np.ones(x.shape[0], dtype=bool)
        return spaces, masks

    def problem(self, positions: Sequence[int]) -> tuple[LinearProblem, dict[str, np.ndarray]]:
        positions = sorted(int(p) for p in positions)
        if positions == list(range(len(self.records))):
            batch, target = self.batch, self.target
        else:
            batch = Batch([self.records[p] for p in positions], self.basis, dtype=self.target.dtype, device=self.target.device)
            target = self.target[torch.as_tensor(np.concatenate([self._flat[p] for p in positions]), device=self.target.device)]
        spaces, masks = self.spaces(positions)
        problem = LinearProblem(
            batch,
            None,
            target,
            spaces=spaces,
            one_centre=self.one_centre,
            dense_max=self.dense_max,
            coarse_max=self.coarse_max,
            reducer=self.reducer,
        )
        return problem, masks

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
                out[name] = space.u_scaled.T @ pred if space.u_scaled is not None else pred.new_zeros(0, pred.shape[1])
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


class Holdout:
    """Structures that no weight is fitted to (the validation split): held-out error of given weights."""

    def __init__(self, batch: Batch, inputs: dict[str, torch.Tensor], target: torch.Tensor, reducer: Reducer | None = None):
        self.batch, self.target = batch, target
        self.reducer = reducer if reducer is not None else Reducer()  # data-parallel: this rank's share
        self.rows: dict[str, torch.Tensor] = {}
        self.gather: dict[str, torch.Tensor] = {}
        for key in batch.layout.keys:
            name = key_name(key)
            index = torch.as_tensor(batch.layout.index[key], device=target.device)
            self.gather[name] = index.transpose(1, 2).reshape(-1, index.shape[1])
            self.rows[name] = input_rows(inputs[name], key[0])
        self.norm = self.reducer.sum_float(float(batch.constant))  # sum_s d_s^T S_s d_s of the reference

    def error(self, weights: dict[str, torch.Tensor]) -> float:
        """sum_s r_s^T S_s r_s, r = X W - d over the held-out structures."""
        pred = torch.zeros_like(self.target)
        for name, idx in self.gather.items():
            if idx.shape[0]:
                pred[idx] = self.rows[name] @ weights[name]
        return self.reducer.sum_float(float(self.batch.overlap.quadratic(pred - self.target)))
