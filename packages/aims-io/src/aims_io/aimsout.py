"""Parsing ``aims.out``, the main output of FHI-aims.

A run has finished when ``Leaving FHI-aims.`` is followed by ``Have a nice day.`` (FHI-aims
prints both only at a normal end). Energies are in eV in the file; :attr:`AimsOutput.energy_ha`
converts with 1 Ha = 27.211386245988 eV (CODATA 2018; FHI-aims itself prints the value it uses,
e.g. 27.2113845 in older versions, which differs by 6e-8 relative).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import AimsIOError

HARTREE_EV = 27.211386245988

_FLOAT = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[EeDd][-+]?\d+)?"


@dataclass
class AimsOutput:
    """What aims-io reads from aims.out (None where the file does not say)."""

    version: str | None = None
    commit: str | None = None
    n_atoms: int | None = None
    n_integration_points: int | None = None
    n_integration_points_nonzero: int | None = None
    n_auxiliary: int | None = None
    n_spin: int | None = None
    n_k_points_requested: int | None = None  # periodic: `| k-points reduced from: N to M` (N)
    n_k_points: int | None = None  # (M, after symmetry)
    scf_converged: bool = False
    scf_cycles: int | None = None
    scf_iterations_seen: int = 0
    total_energy_ev: float | None = None
    homo_ev: float | None = None
    lumo_ev: float | None = None
    fermi_ev: float | None = None
    hartree_ev_used: float | None = None
    timings: dict[str, tuple[float, float]] = field(default_factory=dict)
    finished: bool = False

    @property
    def energy_ha(self) -> float | None:
        return None if self.total_energy_ev is None else self.total_energy_ev / HARTREE_EV

    @property
    def wall_time_s(self) -> float | None:
        total = self.timings.get("Total time")
        return None if total is None else total[1]

    @property
    def version_number(self) -> int | None:
        """The leading 6 digits of the version (YYMMDD), e.g. 240925."""
        if self.version is None:
            return None
        m = re.match(r"(\d{6})", self.version)
        return int(m.group(1)) if m else None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["energy_ha"] = self.energy_ha
        return d


def _num(pattern: str, line: str) -> float | None:
    m = re.search(pattern + r"\s*(" + _FLOAT + ")", line)
    return float(m.group(1).replace("D", "E").replace("d", "e")) if m else None


def parse_aims_out_text(text: str) -> AimsOutput:
    out = AimsOutput()
    lines = text.splitlines()
    in_timing = False
    for k, line in enumerate(lines):
        s = line.strip()
        if s.startswith("FHI-aims version"):
            out.version = s.split(":", 1)[1].strip().split()[0] if ":" in s and s.split(":", 1)[1].strip() else None
        elif s.startswith("Commit number"):
            value = s.split(":", 1)[1].strip()
            out.commit = value.split()[0] if value else None
        elif s.startswith("| Number of atoms") and ":" in s:
            out.n_atoms = int(s.split(":")[1])
        elif s.startswith("| Number of spin channels"):
            out.n_spin = int(s.split(":")[1])
        elif s.startswith("| Net number of integration points"):
            out.n_integration_points = int(s.split(":")[1])
            if k + 1 < len(lines) and "non-zero" in lines[k + 1]:
                out.n_integration_points_nonzero = int(lines[k + 1].split(":")[1])
        elif s.startswith("| k-points reduced from:"):
            m = re.match(r"\| k-points reduced from:\s*(\d+)\s+to\s+(\d+)", s)
            if m:
                out.n_k_points_requested, out.n_k_points = int(m.group(1)), int(m.group(2))
        elif s.startswith("| Shrink_full_auxil_basis : there are totally"):
            out.n_auxiliary = int(s.split()[6])
        elif s == "Self-consistency cycle converged.":
            out.scf_converged = True
        elif s.startswith("Begin self-consistency iteration #"):
            out.scf_iterations_seen += 1
        elif s.startswith("| Number of self-consistency cycles"):
            out.scf_cycles = int(s.split(":")[1])
        elif s.startswith("| Total energy of the DFT / Hartree-Fock s.c.f. calculation"):
            out.total_energy_ev = _num(r":", s)
        elif s.startswith("Highest occupied state (VBM) at"):
            out.homo_ev = _num(r"at", s)
        elif s.startswith("Lowest unoccupied state (CBM) at"):
            out.lumo_ev = _num(r"at", s)
        elif s.startswith("| Chemical potential (Fermi level)"):
            out.fermi_ev = _num(r":", s)
        elif s.startswith("| For reference only, the value of 1 Hartree used in FHI-aims is"):
            out.hartree_ev_used = _num(r":", s)
        elif s.startswith("Detailed time accounting"):
            in_timing = True
            continue
        elif s == "Leaving FHI-aims.":
            out.finished = False
            leaving = k
            out.finished = any(x.strip() == "Have a nice day." for x in lines[leaving + 1 :])
        if in_timing:
            m = re.match(r"\|\s*(.+?)\s*:\s*(" + _FLOAT + r")\s*s\s+(" + _FLOAT + r")\s*s", s)
            if m:
                out.timings[m.group(1)] = (float(m.group(2)), float(m.group(3)))
            else:
                in_timing = False
    return out


def parse_aims_out(path: str | Path) -> AimsOutput:
    path = Path(path)
    if not path.is_file():
        raise AimsIOError("missing file", path=path)
    return parse_aims_out_text(path.read_text(errors="replace"))


def tail(path: str | Path, n: int = 5) -> str:
    """The last ``n`` non-empty lines of a file, joined with ' | ' (for failure reasons)."""
    path = Path(path)
    if not path.is_file():
        return "no aims.out"
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - 8192))
        data = f.read().decode(errors="replace")
    lines = [x.strip() for x in data.splitlines() if x.strip()]
    return " | ".join(lines[-n:]) if lines else "aims.out is empty"
