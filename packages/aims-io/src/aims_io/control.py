"""``control.in`` for the three kinds of run: SCF, RI fit and rebuild from coefficients.

Every stage writes the same physical settings (xc, relativistic, charge, spin), for a periodic
structure its k-points (``k_grid`` or ``k_grid_density``, :mod:`aims_io.periodic`; never for a
molecule), the stage's keywords, optional cube output, then the species defaults file of each
element present, read from the configured species directory (``01_H_default``, ...).

- SCF: ``elsi_restart write <n>`` (the density matrix restart files the RI fit reads), and
  ``ri_fit_write_orbital_info .true.`` (``ks_orbital_info.out``) when a field of ``dft.fields``
  is not the density.
- RI fit: ``elsi_restart read``, ``ri_skip_scf``, ``ri_density_restart write``,
  ``ri_full_output``, ``ri_ovlp_write_triu``, ``default_prodbas_acc`` and optional
  ``default_max_l_prodbas``.
- rebuild: ``ri_density_restart read 0`` (FHI-aims reads the coefficients from
  ``ri_restart_coeffs.out``), ``ri_full_output`` and the same product-basis settings.
- guess: an SCF run to convergence started from coefficients: the product-basis settings,
  ``sc_iter_limit`` and ``ri_density_restart <dft.guess_ri_density_restart>`` (default ``read``;
  coefficients in ``ri_restart_coeffs.out``).
- guess-default: the same SCF from FHI-aims's default initial guess (no ``ri_density_restart``).

The guess stages may take the species sections verbatim from the reference RI-fit run's
control.in (``species_text``), so that they use exactly the basis of the reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase.data import chemical_symbols

from rho_data.orbital_fields import parse_field

from . import __version__
from .errors import AimsIOError
from .geometry import Geometry
from .layout import read_text, write_text
from .periodic import is_periodic, k_point_lines
from .settings import check_keyword, check_value

STAGES = ("scf", "ri", "rebuild", "guess", "guess-default")


def species_file(directory: str | Path | None, number: int) -> Path:
    if directory is None:
        raise AimsIOError("setting 'dft.species_defaults' is not set: it must name the FHI-aims species directory")
    directory = Path(directory)
    if not directory.is_dir():
        raise AimsIOError("species defaults directory not found", path=directory)
    name = f"{number:02d}_{chemical_symbols[number]}_default"
    path = directory / name
    if not path.is_file():
        raise AimsIOError(f"no species file {name} for {chemical_symbols[number]}", path=directory)
    return path


def needs_orbital_info(dft: dict) -> bool:
    """Whether a field of ``dft.fields`` is not the density (the SCF must write its orbitals)."""
    return any(parse_field(f).kind != "density" for f in dft.get("fields") or ["density"])


def stage_keywords(stage: str, dft: dict, *, kso_weights: bool = False) -> list[tuple[str, object]]:
    """The keyword lines of one stage (physical settings first); ``kso_weights``: an RI fit of the
    field of ``ks_orbital_weights.in`` instead of the density."""
    if stage not in STAGES:
        raise AimsIOError(f"unknown stage '{stage}', expected one of {STAGES}")
    lines: list[tuple[str, object]] = [
        ("xc", dft["xc"]),
        ("relativistic", dft["relativistic"]),
        ("charge", float(dft["charge"])),
        ("spin", dft["spin"]),
    ]
    if dft["spin"] == "collinear":
        lines.append(("default_initial_moment", dft["default_initial_moment"]))
    prodbas = [("default_prodbas_acc", dft["default_prodbas_acc"])]
    if dft["default_max_l_prodbas"] is not None:
        prodbas.append(("default_max_l_prodbas", int(dft["default_max_l_prodbas"])))
    if stage == "scf":
        lines.append(("elsi_restart", f"write {int(dft['elsi_restart_write'])}"))
        if needs_orbital_info(dft):
            lines.append(("ri_fit_write_orbital_info", True))
    elif stage == "ri":
        lines += [
            ("elsi_restart", "read"),
            ("ri_skip_scf", True),
            ("ri_density_restart", "write"),
            ("ri_full_output", True),
            ("ri_ovlp_write_triu", True),
            *prodbas,
        ]
        if kso_weights:
            lines.append(("ri_fit_field_from_kso_weights", True))
    elif stage == "rebuild":
        lines += [("ri_density_restart", "read 0"), ("ri_full_output", True), *prodbas]
    else:
        lines += [*prodbas, ("sc_iter_limit", int(dft["sc_iter_limit"]))]
        if stage == "guess":
            lines.append(("ri_density_restart", dft["guess_ri_density_restart"]))
    lines += list((dft.get("extra_keywords") or {}).items())
    return lines


def cube_lines(geometry: Geometry, dft: dict) -> list[str]:
    """``output cube total_density`` with a cube around the atoms (Angstrom)."""
    n = [int(v) for v in dft["cube_points"]]
    if len(n) != 3 or min(n) < 2:
        raise AimsIOError(f"setting 'dft.cube_points' must be 3 integers >= 2, got {dft['cube_points']}")
    lo, hi = geometry.positions.min(axis=0), geometry.positions.max(axis=0)
    centre = (lo + hi) / 2
    lengths = hi - lo + float(dft["cube_padding"])
    out = ["output cube total_density", f"cube origin {centre[0]:.6f} {centre[1]:.6f} {centre[2]:.6f}"]
    for axis in range(3):
        step = np.zeros(3)
        step[axis] = lengths[axis] / (n[axis] - 1)
        out.append(f"cube edge {n[axis]} {step[0]:.6f} {step[1]:.6f} {step[2]:.6f}")
    return out


def control_text(
    stage: str,
    dft: dict,
    geometry: Geometry,
    species_text: str | None = None,
    *,
    kso_weights: bool = False,
    where: str | Path = "control.in",
) -> str:
    """The control.in of ``stage``; species sections from ``species_text`` when given, else from the species files."""
    lines = [f"# control.in written by aims-io {__version__} (stage: {stage})"]
    keywords = stage_keywords(stage, dft, kso_weights=kso_weights)
    k_lines = k_point_lines(dft, is_periodic(geometry.pbc), where=where)
    n_physical = 5 if dft["spin"] == "collinear" else 4
    for keyword, value in keywords[:n_physical] + k_lines + keywords[n_physical:]:
        lines.append(f"{check_keyword(keyword):<24} {check_value(keyword, value)}")
    if dft["cube"]:
        lines += cube_lines(geometry, dft)
    text = "\n".join(lines) + "\n"
    if species_text is not None:
        return text + "\n" + species_text.rstrip("\n") + "\n"
    for z in sorted({int(z) for z in geometry.numbers}):
        text += "\n" + read_text(species_file(dft["species_defaults"], z)).rstrip("\n") + "\n"
    return text


def write_control(
    path: str | Path, stage: str, dft: dict, geometry: Geometry, species_text: str | None = None, *, kso_weights: bool = False
) -> None:
    text = control_text(stage, dft, geometry, species_text, kso_weights=kso_weights, where=path)
    write_text(path, text, what="control.in")


def species_sections(path: str | Path) -> str:
    """The species part of a control.in: from the first ``species`` line to the end."""
    lines = read_text(path).splitlines()
    for k, raw in enumerate(lines):
        if raw.split("#", 1)[0].split()[:1] == ["species"]:
            return "\n".join(lines[k:]) + "\n"
    raise AimsIOError("holds no species section", path=path)


def read_keywords(path: str | Path) -> dict[str, str]:
    """The first value of each keyword of a control.in before the species sections."""
    out: dict[str, str] = {}
    for raw in read_text(path).splitlines():
        words = raw.split("#", 1)[0].split(None, 1)
        if not words:
            continue
        if words[0] == "species":
            break
        out.setdefault(words[0], words[1].strip() if len(words) > 1 else "")
    return out
