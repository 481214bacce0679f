"""Basis sets: resolving names per element, building PySCF molecules, the canonical order.

PySCF orders the functions of an atom shell by shell as listed in the basis, each shell
contraction by contraction, each contraction m by m. Its real spherical harmonics run
m = -l..l for l >= 2 but p functions come as (x, y, z) = m (1, -1, 0). The rho-data canonical
order is l -> n -> m with m = -l..l; :func:`canonical_permutation` gives the index array
``perm`` with ``canonical = pyscf[perm]``.
"""

from __future__ import annotations

import numpy as np

from rho_data import AuxiliaryBasis, ElementBasis, GaussianRadial
from rho_data.elements import atomic_number

from .errors import PyscfIoError

BasisSpec = dict  # {symbol: PySCF internal basis list [[l, [exp, c1, c2, ...], ...], ...]}

#: PySCF's p order (x, y, z) is m = (1, -1, 0); canonical m = (-1, 0, 1) takes PySCF's (1, 2, 0).
_P_TO_CANONICAL = np.array([1, 2, 0])


def load_ao_basis(name: str, symbols: list[str]) -> tuple[BasisSpec, dict[str, str]]:
    """``({symbol: basis}, {symbol: reason})`` for the named AO basis."""
    from pyscf import gto

    found, missing = {}, {}
    for sym in symbols:
        try:
            found[sym] = gto.basis.load(name, sym)
        except Exception as err:  # noqa: BLE001 - BasisNotFoundError, KeyError or RuntimeError by file
            missing[sym] = f"the basis '{name}' has no functions for element {sym} ({type(err).__name__})"
    return found, missing


def aux_basis_name(settings: dict) -> str:
    if settings["aux_basis"].lower() == "etb":
        return f"etb(beta={settings['etb_beta']:g})"
    return settings["aux_basis"]


def load_aux_basis(settings: dict, ao_basis: BasisSpec, symbols: list[str]) -> tuple[BasisSpec, dict[str, str]]:
    """The auxiliary basis per element: PySCF's even-tempered set built from the AO basis
    (``aux_basis: etb``) or a named basis."""
    from pyscf import df, gto

    found, missing = {}, {}
    for sym in symbols:
        if sym not in ao_basis:
            continue
        if settings["aux_basis"].lower() == "etb":
            z = atomic_number(sym)
            atom = gto.M(atom=f"{sym} 0 0 0", basis={sym: ao_basis[sym]}, spin=z % 2, verbose=0)
            found[sym] = df.aug_etb(atom, beta=settings["etb_beta"])[sym]
        else:
            try:
                found[sym] = gto.basis.load(settings["aux_basis"], sym)
            except Exception as err:  # noqa: BLE001 - as above
                missing[sym] = (
                    f"the auxiliary basis '{settings['aux_basis']}' has no functions for element {sym} ({type(err).__name__})"
                )
    return found, missing


def make_mole(numbers, positions_angstrom, basis: BasisSpec, charge: int = 0, spin: int = 0):
    """A built PySCF ``Mole`` (Angstrom input, spherical functions, quiet)."""
    from pyscf import gto

    return build_system(gto.Mole(), numbers, positions_angstrom, basis, charge, spin)


def build_system(system, numbers, positions_angstrom, basis: BasisSpec, charge: int = 0, spin: int = 0, **attributes):
    """``system`` (a PySCF ``Mole`` or ``Cell``) with the atoms (Angstrom), the basis of their elements,
    charge, spin and ``attributes`` (e.g. a cell's ``a``), spherical functions, quiet, built."""
    from rho_data.elements import symbol

    atoms = [(symbol(int(z)), tuple(float(x) for x in p)) for z, p in zip(numbers, np.asarray(positions_angstrom))]
    system.atom = atoms
    system.unit = "Angstrom"
    system.basis = {s: basis[s] for s in {a[0] for a in atoms}}
    system.charge = int(charge)
    system.spin = int(spin)
    system.cart = False
    system.verbose = 0
    for name, value in attributes.items():
        setattr(system, name, value)
    system.build(parse_arg=False, dump_input=False)
    return system


def _atom_layout(mol, atom: int) -> list[tuple[int, int, int, int]]:
    """(l, n, m_index, pyscf position) for the functions of one atom (m_index = m + l)."""
    ao_loc = mol.ao_loc_nr()
    rows, count_l = [], {}
    for ib in range(mol.nbas):
        if mol.bas_atom(ib) != atom:
            continue
        l, nctr = mol.bas_angular(ib), mol.bas_nctr(ib)
        start = ao_loc[ib]
        for c in range(nctr):
            n = count_l.get(l, 0)
            count_l[l] = n + 1
            order = _P_TO_CANONICAL if l == 1 else np.arange(2 * l + 1)
            for m_index in range(2 * l + 1):
                rows.append((l, n, m_index, int(start + c * (2 * l + 1) + order[m_index])))
    return rows


def canonical_permutation(mol) -> np.ndarray:
    """``perm`` with ``canonical = pyscf[perm]`` for every function of ``mol`` (atom -> l -> n -> m)."""
    perm = []
    for atom in range(mol.natm):
        perm += [row[3] for row in sorted(_atom_layout(mol, atom))]
    return np.array(perm, dtype=np.int64)


def to_pyscf_order(canonical: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """Undo :func:`canonical_permutation` (vectors or the first axis of arrays)."""
    out = np.empty_like(np.asarray(canonical))
    out[perm] = canonical
    return out


def element_basis(sym: str, aux: list) -> ElementBasis:
    """The rho-data description of one element's auxiliary basis (normalised Gaussian radials).

    PySCF's ``bas_ctr_coeff`` multiply radially normalised primitives; times ``gto_norm(l, a)``
    (the radial normalisation 1 / sqrt(int r^(2l+2) exp(-2 a r^2) dr)) they are the
    coefficients of r^l exp(-a r^2) in R(r) Y_lm with orthonormal real Y_lm, which is
    rho-data's GaussianRadial convention (tests compare the analytic overlap with int1e_ovlp).
    """
    from pyscf import gto

    z = atomic_number(sym)
    mol = gto.M(atom=f"{sym} 0 0 0", basis={sym: aux}, spin=z % 2, verbose=0)
    radials: list[GaussianRadial] = []
    for ib in range(mol.nbas):
        l = mol.bas_angular(ib)
        exps = mol.bas_exp(ib)
        coeffs = mol.bas_ctr_coeff(ib) * gto.gto_norm(l, exps)[:, None]
        for c in range(mol.bas_nctr(ib)):
            radials.append(GaussianRadial(int(l), tuple(float(e) for e in exps), tuple(float(x) for x in coeffs[:, c])))
    radials.sort(key=lambda g: g.l)  # stable: n follows PySCF's order within each l
    lmax = max(g.l for g in radials)
    counts = tuple(sum(1 for g in radials if g.l == l) for l in range(lmax + 1))
    return ElementBasis(sym, counts, tuple(radials))


def auxiliary_basis(aux: BasisSpec) -> AuxiliaryBasis:
    """The rho-data auxiliary basis of all elements in ``aux``."""
    if not aux:
        raise PyscfIoError("no element of the input has an auxiliary basis")
    return AuxiliaryBasis({sym: element_basis(sym, spec) for sym, spec in aux.items()})
