"""Auxiliary (RI) basis per element and the canonical coefficient order.

The canonical order of the coefficients of one atom is l -> n -> m, with m = -l..l running
fastest (real spherical harmonics with the Condon-Shortley phase, the ``o3_mu`` convention of
metatensor/featomic). The coefficients of a structure are the per-atom vectors concatenated in
atom order.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from .elements import atomic_number, symbol
from .errors import RhoDataError


@dataclass(frozen=True)
class GaussianRadial:
    """One contracted radial function R(r) = sum_k c_k r^l exp(-alpha_k r^2), r in bohr.

    The coefficients ``c_k`` include every normalisation factor, so that with orthonormal real
    spherical harmonics Y_lm the basis function is phi(r) = R(|r|) Y_lm(r / |r|).
    """

    l: int
    exponents: tuple[float, ...]
    coefficients: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.l < 0:
            raise RhoDataError(f"a radial function needs l >= 0, got {self.l}")
        if len(self.exponents) != len(self.coefficients) or not self.exponents:
            raise RhoDataError(
                "a Gaussian radial function needs as many exponents as coefficients (and at least one), "
                f"got {len(self.exponents)} and {len(self.coefficients)}"
            )

    def __call__(self, r: np.ndarray) -> np.ndarray:
        """R(r) for distances r in bohr."""
        r = np.asarray(r, dtype=np.float64)
        alpha = np.asarray(self.exponents)[:, None]
        c = np.asarray(self.coefficients)[:, None]
        return (r[None, :] ** self.l * (c * np.exp(-alpha * r[None, :] ** 2))).sum(axis=0)


@dataclass(frozen=True)
class ElementBasis:
    """The auxiliary basis of one element: ``n_radial[l]`` radial functions for each l."""

    symbol: str
    n_radial: tuple[int, ...]
    gaussians: tuple[GaussianRadial, ...] | None = None

    def __post_init__(self) -> None:
        atomic_number(self.symbol)  # validates the symbol
        if not self.n_radial or any(int(n) < 0 for n in self.n_radial):
            raise RhoDataError(f"basis of {self.symbol}: n_radial must list counts >= 0 for l = 0..lmax, got {self.n_radial}")
        object.__setattr__(self, "n_radial", tuple(int(n) for n in self.n_radial))
        if self.gaussians is not None:
            ls = [g.l for g in self.gaussians]
            expected = [l for l, n in enumerate(self.n_radial) for _ in range(n)]
            if ls != expected:
                raise RhoDataError(
                    f"basis of {self.symbol}: Gaussian radial functions must be listed l by l in canonical order "
                    f"(counts {self.n_radial}), got l values {ls}"
                )

    @property
    def atomic_number(self) -> int:
        return atomic_number(self.symbol)

    @property
    def lmax(self) -> int:
        return len(self.n_radial) - 1

    @property
    def n_functions(self) -> int:
        """Number of basis functions of one atom: sum_l n_radial[l] (2l + 1)."""
        return sum(n * (2 * l + 1) for l, n in enumerate(self.n_radial))

    def l_slices(self) -> Iterator[tuple[int, slice]]:
        """(l, slice of this atom's coefficient vector holding the n x (2l+1) values of that l)."""
        start = 0
        for l, n in enumerate(self.n_radial):
            size = n * (2 * l + 1)
            if n:
                yield l, slice(start, start + size)
            start += size

    def function_labels(self) -> np.ndarray:
        """(n_functions, 3) array of (l, n, m) in canonical order."""
        rows = [(l, n, m) for l, nr in enumerate(self.n_radial) for n in range(nr) for m in range(-l, l + 1)]
        return np.array(rows, dtype=np.int32).reshape(-1, 3)


@dataclass(frozen=True)
class AuxiliaryBasis:
    """The auxiliary basis of a dataset: one :class:`ElementBasis` per element."""

    elements: Mapping[str, ElementBasis] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key, value in self.elements.items():
            if key != value.symbol:
                raise RhoDataError(f"auxiliary basis: entry '{key}' holds the basis of '{value.symbol}'")

    @classmethod
    def from_counts(cls, counts: Mapping[str, list[int] | tuple[int, ...]]) -> AuxiliaryBasis:
        """Build from ``{"H": [n_l0, n_l1, ...], ...}`` (numeric radial functions)."""
        return cls({s: ElementBasis(s, tuple(c)) for s, c in counts.items()})

    def __getitem__(self, element: str | int) -> ElementBasis:
        sym = symbol(element) if isinstance(element, (int, np.integer)) else element
        try:
            return self.elements[sym]
        except KeyError:
            raise RhoDataError(f"the auxiliary basis has no functions for element {sym}") from None

    def __contains__(self, element: str | int) -> bool:
        sym = symbol(element) if isinstance(element, (int, np.integer)) else element
        return sym in self.elements

    @property
    def symbols(self) -> list[str]:
        return sorted(self.elements, key=atomic_number)

    def atom_sizes(self, numbers: np.ndarray) -> np.ndarray:
        """Number of basis functions of each atom of a structure."""
        table = {atomic_number(s): b.n_functions for s, b in self.elements.items()}
        try:
            return np.array([table[int(z)] for z in numbers], dtype=np.int64)
        except KeyError as err:
            raise RhoDataError(f"the auxiliary basis has no functions for element {symbol(int(err.args[0]))}") from None

    def n_functions(self, numbers: np.ndarray) -> int:
        return int(self.atom_sizes(numbers).sum())

    def same_as(self, other: AuxiliaryBasis) -> bool:
        return dict(self.elements) == dict(other.elements)
