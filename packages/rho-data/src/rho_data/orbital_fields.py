"""Fields built from Kohn-Sham orbitals with weights: what a field name means, and its weights.

Every field rho-data knows is rho_f(r) = sum_{s,k,i} w_{ski} |psi_{ski}(r)|^2 over spin channels
s, k-points k and orbitals i, so its density matrix is D_f = sum w_{ski} c_{ski} c_{ski}^H and it is
fitted on the auxiliary basis exactly like the total density. The names (stored in datasets):

- ``density``: w = occupation x k-weight (the total electron density);
- ``spin_density``: rho_alpha - rho_beta (w = +occupation for alpha, -occupation for beta);
- ``homo``, ``homo-K``, ``lumo``, ``lumo+K`` (also spelled ``orbital:homo-K``): one energy *level* (orbitals within the degeneracy
  tolerance of each other, summed so that the field does not depend on a rotation inside a
  degenerate set), w = k-weight for each orbital of the level (a restricted orbital counts once:
  the field is |psi|^2, not the doubly occupied density); levels are counted across both spin
  channels of an unrestricted calculation;
- ``ildos:EMIN:EMAX`` (optionally ``:SIGMA``): the states with energies in [EMIN, EMAX] eV
  relative to the reference level (the HOMO of a molecule, the Fermi level of a metal), w =
  spin degeneracy x k-weight x window, the window a step or, with SIGMA > 0, a step smoothed by
  a Gaussian of width SIGMA eV: 1/2 [erf((EMAX - e) / (sqrt 2 SIGMA)) - erf((EMIN - e) / (sqrt 2 SIGMA))];
- ``ldos:E:SIGMA``: the local density of states at E eV relative to the reference, broadened by a
  normalised Gaussian of width SIGMA eV, w = spin degeneracy x k-weight x g(e - E) (states / eV).

The integral of rho_f is sum w (orbitals are normalised): the electrons, orbitals or states the
field holds, stored with every structure as ``field_integral``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from math import erf, pi, sqrt

import numpy as np

from .errors import RhoDataError
from .units import EV_PER_HARTREE

DEFAULT_FIELD = "density"
#: The dataset target name of the total density (schema 1.0), the same field as ``density``.
DENSITY_TARGET = "electron_density"
#: Orbitals closer than this (eV) form one level.
DEFAULT_DEGENERACY_EV = 1e-3
#: An orbital with more than this many electrons counts as occupied.
OCCUPIED = 1e-6

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_LEVEL = re.compile(r"^(homo|lumo)(?:([-+])(\d+))?$")
_ILDOS = re.compile(rf"^ildos:({_NUMBER}):({_NUMBER})(?::({_NUMBER}))?$")
_LDOS = re.compile(rf"^ldos:({_NUMBER}):({_NUMBER})$")


@dataclass(frozen=True)
class FieldSpec:
    """A parsed field name; ``str(spec)`` is its canonical spelling."""

    kind: str  # density | spin_density | level | ildos | ldos
    anchor: str = ""  # level: homo or lumo
    offset: int = 0  # level: K of homo-K / lumo+K
    low_ev: float = 0.0  # ildos: EMIN; ldos: E
    high_ev: float = 0.0  # ildos: EMAX
    sigma_ev: float = 0.0  # ildos (optional) and ldos: broadening

    def __str__(self) -> str:
        if self.kind == "level":
            sign = "-" if self.anchor == "homo" else "+"
            return self.anchor + (f"{sign}{self.offset}" if self.offset else "")
        if self.kind == "ildos":
            tail = f":{self.sigma_ev:g}" if self.sigma_ev else ""
            return f"ildos:{self.low_ev:g}:{self.high_ev:g}{tail}"
        if self.kind == "ldos":
            return f"ldos:{self.low_ev:g}:{self.sigma_ev:g}"
        return self.kind


def parse_field(text: str) -> FieldSpec:
    """The field a name means (see the module doc); a name that means nothing is an error."""
    name = str(text).strip().lower()
    if name == DENSITY_TARGET:
        return FieldSpec("density")
    if name.startswith("orbital:") and _LEVEL.match(name[len("orbital:") :]):  # orbital:homo-1 = homo-1
        name = name[len("orbital:") :]
    if name in ("density", "spin_density"):
        return FieldSpec(name)
    if match := _LEVEL.match(name):
        anchor, sign, count = match.groups()
        if sign is not None and (sign == "+") != (anchor == "lumo"):
            raise RhoDataError(f"field '{text}': levels are counted down from the HOMO (homo-K) and up from the LUMO (lumo+K)")
        return FieldSpec("level", anchor=anchor, offset=int(count or 0))
    if match := _ILDOS.match(name):
        low, high, sigma = (float(v) if v is not None else 0.0 for v in match.groups())
        if not low < high:
            raise RhoDataError(f"field '{text}': the window needs EMIN < EMAX (eV)")
        if sigma < 0:
            raise RhoDataError(f"field '{text}': the broadening SIGMA must be >= 0 eV")
        return FieldSpec("ildos", low_ev=low, high_ev=high, sigma_ev=sigma)
    if match := _LDOS.match(name):
        energy, sigma = (float(v) for v in match.groups())
        if not sigma > 0:
            raise RhoDataError(f"field '{text}': the broadening SIGMA must be > 0 eV")
        return FieldSpec("ldos", low_ev=energy, sigma_ev=sigma)
    raise RhoDataError(
        f"unknown field '{text}' (known: density, spin_density, homo, homo-K, lumo, lumo+K, "
        "ildos:EMIN:EMAX[:SIGMA], ldos:E:SIGMA; energies in eV)"
    )


def target_name(field: FieldSpec | str) -> str:
    """The name a dataset stores the field under: ``electron_density`` for the density, else the field name."""
    spec = parse_field(field) if isinstance(field, str) else field
    return DENSITY_TARGET if spec.kind == "density" else str(spec)


def nmae_normalisation(field: FieldSpec | str) -> str:
    """``integral``: %NMAE divides by the integral of rho_ref (the electrons: the density);
    ``absolute``: by the integral of |rho_ref| (every other field; the spin density changes sign)."""
    spec = parse_field(field) if isinstance(field, str) else field
    return "integral" if spec.kind == "density" else "absolute"


@dataclass(frozen=True)
class KohnShamStates:
    """Orbital energies (hartree) and occupations (electrons) as arrays (spin, k-point, orbital).

    A restricted calculation has one spin channel with occupations up to 2; an unrestricted one
    two channels with occupations up to 1. ``k_weights`` sum to 1 (one k-point for a molecule).
    """

    energies: np.ndarray
    occupations: np.ndarray
    k_weights: np.ndarray

    @classmethod
    def of(cls, energies, occupations, k_weights=None) -> KohnShamStates:
        """Arrays of shape (orbital,), (spin, orbital) or (spin, k, orbital), checked."""
        e, o = np.asarray(energies, dtype=float), np.asarray(occupations, dtype=float)
        while e.ndim < 3:
            e, o = e[None] if e.ndim == 1 else e[:, None], o[None] if o.ndim == 1 else o[:, None]
        kw = np.ones(e.shape[1]) / e.shape[1] if k_weights is None else np.asarray(k_weights, dtype=float)
        if e.shape != o.shape or e.shape[0] not in (1, 2) or kw.shape != (e.shape[1],):
            raise RhoDataError(f"orbital energies {e.shape}, occupations {o.shape} and k-weights {kw.shape} do not match")
        if not (np.isfinite(e).all() and np.isfinite(o).all() and np.isfinite(kw).all()):
            raise RhoDataError("orbital energies, occupations or k-weights hold NaN or infinity")
        return cls(e, o, kw)

    @property
    def restricted(self) -> bool:
        return self.energies.shape[0] == 1

    @property
    def spin_degeneracy(self) -> float:
        return 2.0 if self.restricted else 1.0

    def homo_energy(self) -> float:
        occupied = self.occupations > OCCUPIED
        if not occupied.any():
            raise RhoDataError("no occupied orbital")
        return float(self.energies[occupied].max())

    def k_weight_array(self) -> np.ndarray:
        return np.broadcast_to(self.k_weights[None, :, None], self.energies.shape)


def orbital_weights(
    spec: FieldSpec | str,
    states: KohnShamStates,
    *,
    reference_ev: float | None = None,
    degeneracy_ev: float = DEFAULT_DEGENERACY_EV,
) -> np.ndarray:
    """The weights w_{ski} of the field (shape of ``states.energies``); see the module doc.

    ``reference_ev`` is the zero of ildos/ldos energies (default: the HOMO; give the Fermi level
    of a metal). Raises RhoDataError for a field these states cannot give.
    """
    spec = parse_field(spec) if isinstance(spec, str) else spec
    occ, kw = states.occupations, states.k_weight_array()
    if spec.kind == "density":
        return occ * kw
    if spec.kind == "spin_density":
        return _spin_weights(spec, states)
    if spec.kind == "level":
        return _level_mask(spec, states, degeneracy_ev) * kw
    zero = states.homo_energy() * EV_PER_HARTREE if reference_ev is None else float(reference_ev)
    energies = states.energies * EV_PER_HARTREE - zero
    if spec.kind == "ildos":
        window = np.vectorize(lambda e: _window(e, spec.low_ev, spec.high_ev, spec.sigma_ev))(energies)
    else:
        window = np.exp(-0.5 * ((energies - spec.low_ev) / spec.sigma_ev) ** 2) / (spec.sigma_ev * sqrt(2 * pi))
    weights = states.spin_degeneracy * kw * window
    if spec.kind == "ildos" and weights.sum() < 1e-6:
        raise RhoDataError(
            f"field '{spec}': no Kohn-Sham state in the window (states from {energies.min():.3f} to "
            f"{energies.max():.3f} eV relative to the {'HOMO' if reference_ev is None else 'reference'})"
        )
    if spec.kind == "ldos" and float(np.min(np.abs(energies - spec.low_ev))) > 6 * spec.sigma_ev:
        raise RhoDataError(
            f"field '{spec}': no Kohn-Sham state within 6 SIGMA of {spec.low_ev:g} eV (states from "
            f"{energies.min():.3f} to {energies.max():.3f} eV)"
        )
    return weights


def _window(e: float, low: float, high: float, sigma: float) -> float:
    if sigma == 0:
        return 1.0 if low <= e <= high else 0.0
    s = sqrt(2.0) * sigma
    return 0.5 * (erf((high - e) / s) - erf((low - e) / s))


def _spin_weights(spec: FieldSpec, states: KohnShamStates) -> np.ndarray:
    if states.restricted:
        raise RhoDataError(
            f"field '{spec}': a restricted (closed-shell) SCF has zero spin density everywhere; "
            "run an unrestricted SCF with spin 2S > 0"
        )
    if np.allclose(states.occupations[0], states.occupations[1], atol=OCCUPIED):
        raise RhoDataError(f"field '{spec}': the SCF is a singlet (equal alpha and beta occupations): the spin density is zero")
    sign = np.array([1.0, -1.0])[:, None, None]
    return sign * states.occupations * states.k_weight_array()


def _level_mask(spec: FieldSpec, states: KohnShamStates, degeneracy_ev: float) -> np.ndarray:
    """1 for the orbitals of level K below the HOMO (or above the LUMO), 0 elsewhere."""
    occupied = states.occupations > OCCUPIED
    side = occupied if spec.anchor == "homo" else ~occupied
    energies = states.energies[side] * EV_PER_HARTREE
    levels = _levels(np.sort(energies)[::-1] if spec.anchor == "homo" else np.sort(energies), degeneracy_ev)
    if spec.offset >= len(levels):
        what = "occupied" if spec.anchor == "homo" else "unoccupied (virtual)"
        raise RhoDataError(f"field '{spec}': the basis gives only {len(levels)} {what} levels")
    low, high = levels[spec.offset]
    ev = states.energies * EV_PER_HARTREE
    return (side & (ev >= low - 1e-12) & (ev <= high + 1e-12)).astype(float)


def _levels(ordered: np.ndarray, tolerance: float) -> list[tuple[float, float]]:
    """Consecutive energies closer than ``tolerance`` grouped: [(lowest, highest) of each level]."""
    levels: list[list[float]] = []
    for e in ordered:
        if levels and abs(e - levels[-1][-1]) <= tolerance:
            levels[-1].append(float(e))
        else:
            levels.append([float(e)])
    return [(min(group), max(group)) for group in levels]
