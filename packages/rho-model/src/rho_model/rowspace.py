"""Row-space coordinates of a key's features: the solution of the fit lies in them.

For the model c = X_k W_k (+ b_k for l = 0) of key k (o3_lambda, element), the minimiser of
sum_s (X W - d)^T S_s (X W - d) + alpha ||W||^2 lies in the row space of X_k: W_k = V_k z_k with
X_k V_k = phi_k and V_k^T V_k = I, so ||W_k|| = ||z_k|| and the fit is solved for z.
"""

from __future__ import annotations

import torch

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
        self.x, self.u_scaled, self._v = x, u_scaled, v

    @classmethod
    def from_gram(cls, x: torch.Tensor, gram: torch.Tensor, by_rows: bool, rcond: float = RCOND) -> RowSpace:
        """From K = X X^T (``by_rows``) or G = X^T X."""
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

    @property
    def dim(self) -> int:
        return int(self.phi.shape[1])

    def dual(self, z: torch.Tensor) -> torch.Tensor | None:
        """a with W = X^T a (row-Gram spaces), or None."""
        return self.u_scaled @ z if self.u_scaled is not None else None

    def weights(self, z: torch.Tensor) -> torch.Tensor:
        """W = V z."""
        if self._v is not None:
            return self._v @ z
        return self.x.T @ (self.u_scaled @ z)

    def v(self) -> torch.Tensor:
        if self._v is None:
            self._v = self.x.T @ self.u_scaled
        return self._v
