#!/usr/bin/env python3
"""Stand-in for the FHI-aims executable, for testing aims-io's run orchestration.

NOT FHI-aims. It is started like ``aims.x`` in a run directory (stdout -> aims.out) and
writes *recorded* FHI-aims outputs of one real run (the fixture directory named by
``AIMS_STANDIN_DATA``, e.g. ../shared/fixtures/fhi-aims/qm7-0-CH4) plus a SYNTHETIC aims.out
(labelled as such, with the facts FHI-aims printed for that run, from its calc_info.json).

What it does per stage (read from control.in):
- SCF (``elsi_restart write``): writes a placeholder restart file D_spin_01_kpt_000001.csc;
  with ``ri_fit_write_orbital_info`` also ks_orbital_info.out, the recorded ``ks_states`` of
  calc_info.json in FHI-aims's 7 columns (spin 1, k-point 1, k-weight 1).
- RI fit (``ri_skip_scf``): refuses to run without that restart file in the run directory
  (so the SCF -> RI restart hand-over is tested); copies the recorded basis_info.out,
  ri_restart_coeffs.out, ri_projections.out, ri_ovlp.out; writes grid files on its own grid.
  With ``ri_fit_field_from_kso_weights`` it needs ks_orbital_weights.in with one weight per
  recorded KS orbital (else it crashes like a failed run) and writes SYNTHETIC field
  coefficients c = d * sum_i(i w_i) / sum(occ) (i the 1-based orbital index, d the recorded RI
  density coefficients), their
  projections S c and the grid files of that field, so that tests can tell fields apart.
- rebuild (``ri_density_restart read``, no ``sc_iter_limit``): reads ri_restart_coeffs.out and
  writes rho_rebuilt_ri.out and partition_tab.out on its own grid.
- guess SCF (``sc_iter_limit``): a SYNTHETIC SCF cycle count. With ``ri_density_restart read``
  it needs ri_restart_coeffs.out (missing or of the wrong size: it crashes like a failed run)
  and takes 4 + ceil(20 * sqrt(e)) cycles, e = (c - d)^T S (c - d) / d^T S d the relative error
  of the coefficients c against the recorded RI coefficients d (4 for d itself), at most the
  default count; without it, the default count AIMS_STANDIN_DEFAULT_CYCLES (12). More cycles
  than ``sc_iter_limit``: it stops there without "Self-consistency cycle converged.". The
  energy is the recorded one; the wall time is a made-up 0.5 s + 0.25 s per cycle.

Its grid is not FHI-aims's: N points (N = number of auxiliary functions) at seeded random
positions with seeded random weights w_k, and the field of coefficients c is
f_k = (L^T c)_k / sqrt(w_k) with S = L L^T the recorded overlap. Hence
sum_k w_k f_k g_k = c^T S c' exactly: grid integrals of squared differences equal the
overlap quadratic form, as on FHI-aims's grid up to its integration error. rho_scf.out is the
RI density on that grid (the stand-in has no SCF density).

Knobs (environment): AIMS_STANDIN_SLEEP (seconds before finishing), AIMS_STANDIN_VERSION
(version to print; < 240403 writes the legacy order and signs with idx_prodbas_details.out and
prodbas_condon_shotley_list.out, unless AIMS_STANDIN_LEGACY_FILES=0), AIMS_STANDIN_SHUFFLE=1
(grid rows of rho files in another order than partition_tab.out). A geometry whose atoms
differ from the recording makes it crash like FHI-aims would (truncated aims.out, exit 1).

Periodic recordings (``lattice_vector`` lines in the recording's geometry.in; the tests make one
from CH4 in a 20 Angstrom cubic box, where no auxiliary function overlaps an image: tight species
are confined within cut_pot 4.0 + 2.0 = 6 A, so functions 12 A apart do not overlap, and the
recorded molecular overlap IS the Gamma-point lattice-summed overlap of that cell): the run's
lattice vectors must be the recording's; control.in must hold ``k_grid n1 n2 n3`` or
``k_grid_density d`` (nk = n1 n2 n3, or the grid ceil(2 pi |b_i| d)), a molecule must hold
neither (else it crashes); the SCF writes one restart file D_spin_01_kpt_<k>.csc per k-point and
the RI fit needs all of them; aims.out says ``| k-points reduced from: nk to nk``; the outputs
are the recorded files in the same layout (one real value per auxiliary function, no k index);
grid points lie inside the cell.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

BOHR = 0.529177210903  # Angstrom


def read_floats(path: Path) -> np.ndarray:
    return np.array(path.read_bytes().replace(b"D", b"E").split(), dtype=np.float64)


def read_cell(path: Path) -> np.ndarray | None:
    rows = []
    for line in path.read_text().splitlines():
        w = line.split("#")[0].split()
        if w and w[0] == "lattice_vector":
            rows.append([float(x) for x in w[1:4]])
    return np.array(rows) if rows else None


def k_point_count(keywords: dict[str, str], cell: np.ndarray | None) -> int | None:
    """nk from control.in (None for a molecule without k-point keywords; -1: keywords that do not fit)."""
    if cell is None:
        return None if not ({"k_grid", "k_grid_density"} & set(keywords)) else -1
    if "k_grid" in keywords:
        return int(np.prod([int(w) for w in keywords["k_grid"].split()]))
    if "k_grid_density" in keywords:
        recip = np.linalg.inv(cell).T
        d = float(keywords["k_grid_density"])
        return int(np.prod([max(1, int(np.ceil(2 * np.pi * np.linalg.norm(b) * d - 1e-9))) for b in recip]))
    return -1


def restart_files(nk: int | None) -> list[str]:
    return [f"D_spin_01_kpt_{k:06d}.csc" for k in range(1, (nk or 1) + 1)]


def read_atoms(path: Path) -> list[tuple[str, np.ndarray]]:
    atoms = []
    for line in path.read_text().splitlines():
        w = line.split("#")[0].split()
        if w and w[0] in ("atom", "empty"):
            atoms.append((w[4], np.array([float(x) for x in w[1:4]])))
    return atoms


def basis_counts(path: Path) -> list[list[int]]:
    atoms: list[list[int]] = []
    for line in path.read_text().splitlines():
        w = line.split()
        if w[:1] == ["atom"]:
            atoms.append([])
        elif w[:3] == ["For", "L", "="]:
            atoms[-1].append(int(w[6]))
    return atoms


def legacy_layout(counts: list[list[int]]):
    """A made-up 'old FHI-aims' order: radial blocks shuffled per atom (seeded), CS sign dropped."""
    rng = np.random.default_rng(7)
    labels, start = [], 0
    file_of_canonical = []
    for a, nr in enumerate(counts):
        blocks = []
        offset = 0
        for l, n in enumerate(nr):
            for k in range(n):
                radial = sum(nr[:l]) + k + 1
                blocks.append([(start + offset + (m + l), a + 1, l, radial, m) for m in range(-l, l + 1)])
                offset += 2 * l + 1
        order = rng.permutation(len(blocks))
        for b in order:
            file_of_canonical.extend(row[0] for row in blocks[b])
            labels.extend(row[1:] for row in blocks[b])
        start += offset
    perm = np.array(file_of_canonical)  # file position f holds canonical function perm[f]
    labels = np.array(labels)
    sign = np.where((labels[:, 3] > 0) & (labels[:, 3] % 2 == 1), -1.0, 1.0)  # per file position
    return perm, sign, labels


class Recording:
    def __init__(self, data: Path):
        self.data = data
        self.info = json.loads((data / "calc_info.json").read_text())
        self.atoms = read_atoms(data / "geometry.in")
        self.cell = read_cell(data / "geometry.in")
        self.nk: int | None = None  # set per run: the k-points of a periodic run
        self.counts = basis_counts(data / "basis_info.out")
        self.n = sum(sum(c * (2 * l + 1) for l, c in enumerate(nr)) for nr in self.counts)

    def overlap(self) -> np.ndarray:
        tri = read_floats(self.data / "ri_ovlp.out")
        s = np.zeros((self.n, self.n))
        s[np.triu_indices(self.n)] = tri
        return s + np.triu(s, 1).T

    def grid(self):
        rng = np.random.default_rng(12345)
        centre = np.mean([p for _, p in self.atoms], axis=0) / BOHR
        points = centre + rng.normal(scale=2.0, size=(self.n, 3))
        if self.cell is not None:  # inside the cell
            points = rng.uniform(size=(self.n, 3)) @ self.cell / BOHR
        weights = rng.uniform(0.5, 1.5, size=self.n)
        chol = np.linalg.cholesky(self.overlap())
        return points, weights, chol

    def field(self, coefficients: np.ndarray):
        points, weights, chol = self.grid()
        return points, weights, (chol.T @ coefficients) / np.sqrt(weights)


def write_grid(path: Path, points: np.ndarray, values: np.ndarray, order: np.ndarray | None = None) -> None:
    rows = np.column_stack([points, values])
    if order is not None:
        rows = rows[order]
    np.savetxt(path, rows, fmt="%.15E")


def aims_out(
    rec: Recording,
    version: str,
    stage: str,
    finished: bool,
    n_aux: int | None,
    cycles: int | None = None,
    converged: bool = True,
    wall: float | None = None,
) -> str:
    """The synthetic aims.out; ``cycles``, ``converged`` and ``wall`` replace the recorded SCF facts when given."""
    i = rec.info
    cycles = i["scf"]["num_cycles"] if cycles is None else cycles  # the recorded RI run: 0
    cpu, wall = (i["time"]["max(cpu_time)"], i["time"]["wall_clock(cpu1)"]) if wall is None else (wall, wall)
    lines = [
        "SYNTHETIC aims.out written by the aims-io test stand-in (tests/standin/aims_standin.py).",
        "It is NOT FHI-aims output; the numbers are those FHI-aims printed for the recorded run",
        f"(from {rec.data.name}/calc_info.json). Stage: {stage}.",
        *(
            ["The SCF cycle count and the wall time are made up by the stand-in's model, not recorded."]
            if stage == "guess"
            else []
        ),
        "",
        f"  FHI-aims version      : {version}",
        f"  Commit number         : {i['aims']['commit']}",
        f"  | Number of atoms                   :        {i['num_atoms']}",
        f"  | Number of spin channels           :        {i['num_spin_states']}",
        *(
            ["  Periodic: the recorded outputs stand for the Gamma-point lattice-summed ones of this cell (stand-in)."]
            if rec.cell is not None
            else []
        ),
        *([f"  | k-points reduced from:   {rec.nk} to   {rec.nk}"] if rec.nk else []),
        f"  | Net number of integration points:    {i['num_int_points']['net']}",
        f"  | of which are non-zero points    :    {i['num_int_points']['non-zero']}",
    ]
    if not finished:
        return "\n".join(lines + ["  *** stand-in: the geometry is not the recorded one; stopping like a crashed run", ""])
    if n_aux is not None:
        lines.append(f"  | Shrink_full_auxil_basis : there are totally {n_aux} partial auxiliary wave functions.")
    lines += [
        f"  | Chemical potential (Fermi level):    {i['fermi_eV']:.8f} eV",
        f"  Highest occupied state (VBM) at    {i['homo_eV']:.8f} eV",
        f"  Lowest unoccupied state (CBM) at    {i['lumo_eV']:.8f} eV",
        "",
        *(["  Self-consistency cycle converged."] if converged else ["  *** stand-in: sc_iter_limit reached, not converged"]),
        "",
        f"  | Total energy of the DFT / Hartree-Fock s.c.f. calculation      :          {i['tot_energy_eV']:.9f} eV",
        "",
        "------------------------------------------------------------",
        "          Leaving FHI-aims.",
        "",
        "          Computational steps:",
        f"          | Number of self-consistency cycles          :           {cycles}",
        "",
        "          Detailed time accounting                     :  max(cpu_time)    wall_clock(cpu1)",
        f"          | Total time                                 :        {cpu:.3f} s           {wall:.3f} s",
        "",
        "          Have a nice day.",
        "------------------------------------------------------------",
        "",
    ]
    return "\n".join(lines)


def control_keywords(control: str) -> dict[str, str]:
    """First value of each keyword before the species sections."""
    out: dict[str, str] = {}
    for line in control.splitlines():
        words = line.split("#", 1)[0].split(None, 1)
        if not words:
            continue
        if words[0] == "species":
            break
        out.setdefault(words[0], words[1].strip() if len(words) > 1 else "")
    return out


def guess_scf(rec: Recording, version: str, here: Path, limit: int, restart_read: bool) -> int:
    """A SYNTHETIC SCF: the cycle count depends on the initial guess (see the module docstring)."""
    default = int(os.environ.get("AIMS_STANDIN_DEFAULT_CYCLES", "12"))
    cycles = default
    if restart_read:
        path = here / "ri_restart_coeffs.out"
        if not path.is_file():
            sys.stdout.write(aims_out(rec, version, "guess", False, None) + "  *** ri_restart_coeffs.out not found\n")
            return 1
        c = read_floats(path)
        if c.shape != (rec.n,):
            sys.stdout.write(aims_out(rec, version, "guess", False, None) + f"  *** ri_restart_coeffs.out: {c.size} values\n")
            return 1
        d = read_floats(rec.data / "ri_restart_coeffs.out")
        s = rec.overlap()
        error = float((c - d) @ s @ (c - d)) / float(d @ s @ d)
        cycles = min(default, 4 + int(np.ceil(20 * np.sqrt(max(error, 0.0)) - 1e-12)))
    converged = cycles <= limit
    cycles = min(cycles, limit)
    sys.stdout.write(aims_out(rec, version, "guess", True, rec.n, cycles=cycles, converged=converged, wall=0.5 + 0.25 * cycles))
    return 0


def ks_states(rec: Recording) -> list[dict]:
    states = rec.info["ks_states"]
    return [states[k] for k in sorted(states, key=int)]


def write_orbital_info(rec: Recording, path: Path) -> None:
    """ks_orbital_info.out of the recorded KS states: index, state, spin, k-point, k-weight, occupation, eV."""
    rows = [f"{i:6d} {i:6d} 1 1 1.0 {s['occ']:.8f} {s['eig_eV']:.8f}" for i, s in enumerate(ks_states(rec), start=1)]
    path.write_text("\n".join(rows) + "\n")


def kso_field_fit(rec: Recording, version: str, here: Path, d: np.ndarray) -> int:
    """A SYNTHETIC RI fit of the field of ks_orbital_weights.in (see the module docstring)."""
    path = here / "ks_orbital_weights.in"
    states = ks_states(rec)
    weights = read_floats(path) if path.is_file() else None
    if weights is None or weights.shape != (len(states),):
        found = "not found" if weights is None else f"{weights.size} weights, not {len(states)}"
        sys.stdout.write(aims_out(rec, version, "ri", False, None) + f"  *** ks_orbital_weights.in: {found}\n")
        return 1
    c = d * float(np.arange(1, len(states) + 1) @ weights) / sum(s["occ"] for s in states)
    np.savetxt(here / "ri_restart_coeffs.out", c, fmt="%.17E")
    np.savetxt(here / "ri_projections.out", rec.overlap() @ c, fmt="%.17E")
    shutil.copyfile(rec.data / "ri_ovlp.out", here / "ri_ovlp.out")
    points, weights_grid, field = rec.field(c)
    write_grid(here / "partition_tab.out", points, weights_grid)
    write_grid(here / "rho_rebuilt_ri.out", points, field)
    write_grid(here / "rho_scf.out", points, field)
    sys.stdout.write(aims_out(rec, version, "ri", True, rec.n))
    return 0


def main() -> int:
    data = Path(os.environ["AIMS_STANDIN_DATA"])
    rec = Recording(data)
    here = Path.cwd()
    control = (here / "control.in").read_text()
    version = os.environ.get("AIMS_STANDIN_VERSION", rec.info["aims"]["version"])
    legacy = int(version[:6]) < 240403
    keywords = control_keywords(control)
    restart_read = keywords.get("ri_density_restart", "").startswith("read")
    stage = (
        "ri" if "ri_skip_scf" in keywords else "guess" if "sc_iter_limit" in keywords else "rebuild" if restart_read else "scf"
    )
    time.sleep(float(os.environ.get("AIMS_STANDIN_SLEEP", "0")))
    atoms = read_atoms(here / "geometry.in")
    same = len(atoms) == len(rec.atoms) and all(
        s == r and np.allclose(p, q, atol=1e-6) for (s, p), (r, q) in zip(atoms, rec.atoms)
    )
    cell = read_cell(here / "geometry.in")
    same = same and (cell is None) == (rec.cell is None) and (cell is None or np.allclose(cell, rec.cell, atol=1e-6))
    if not same:
        sys.stdout.write(aims_out(rec, version, stage, False, None))
        return 1
    rec.nk = k_point_count(keywords, cell)
    if rec.nk == -1:
        what = "periodic structure without k_grid" if cell is not None else "k_grid for a molecule"
        sys.stdout.write(aims_out(rec, version, stage, False, None) + f"  *** stand-in: {what}\n")
        return 1
    if stage == "guess":
        return guess_scf(rec, version, here, int(keywords["sc_iter_limit"]), restart_read)
    shuffle = np.random.default_rng(3).permutation(rec.n) if os.environ.get("AIMS_STANDIN_SHUFFLE") == "1" else None
    if stage == "scf":
        if "elsi_restart" not in control:
            sys.stderr.write("stand-in: SCF without elsi_restart write\n")
            return 1
        for name in restart_files(rec.nk):
            (here / name).write_text("aims-io stand-in: placeholder for an ELSI restart file\n")
        if "ri_fit_write_orbital_info" in keywords:
            write_orbital_info(rec, here / "ks_orbital_info.out")
        sys.stdout.write(aims_out(rec, version, stage, True, None))
        return 0
    if stage == "ri":
        missing = [name for name in restart_files(rec.nk) if not (here / name).exists()]
        if missing:
            sys.stdout.write(aims_out(rec, version, stage, False, None) + f"  *** restart file {missing[0]} not found\n")
            return 1
        shutil.copyfile(data / "basis_info.out", here / "basis_info.out")
        d = read_floats(data / "ri_restart_coeffs.out")
        w = read_floats(data / "ri_projections.out")
        if "ri_fit_field_from_kso_weights" in keywords:
            return kso_field_fit(rec, version, here, d)
        if legacy:
            perm, sign, labels = legacy_layout(rec.counts)
            s = rec.overlap()
            np.savetxt(here / "ri_restart_coeffs.out", sign * d[perm], fmt="%.17E")
            np.savetxt(here / "ri_projections.out", sign * w[perm], fmt="%.17E")
            s_file = (sign[:, None] * sign[None, :]) * s[np.ix_(perm, perm)]
            np.savetxt(here / "ri_ovlp.out", s_file[np.triu_indices(rec.n)], fmt="%.17E")
            if os.environ.get("AIMS_STANDIN_LEGACY_FILES", "1") == "1":
                rows = np.column_stack([np.arange(1, rec.n + 1), labels])
                np.savetxt(here / "idx_prodbas_details.out", rows, fmt="%d")
                np.savetxt(here / "prodbas_condon_shotley_list.out", np.flatnonzero(sign < 0) + 1, fmt="%d")
        else:
            for name in ("ri_restart_coeffs.out", "ri_projections.out", "ri_ovlp.out"):
                shutil.copyfile(data / name, here / name)
        points, weights, rho = rec.field(d)
        write_grid(here / "partition_tab.out", points, weights)
        write_grid(here / "rho_rebuilt_ri.out", points, rho, shuffle)
        write_grid(here / "rho_scf.out", points, rho, shuffle)
        sys.stdout.write(aims_out(rec, version, stage, True, rec.n))
        return 0
    coefficients = read_floats(here / "ri_restart_coeffs.out")
    if legacy:
        perm, sign, _ = legacy_layout(rec.counts)
        canonical = np.empty(rec.n)
        canonical[perm] = sign * coefficients
        coefficients = canonical
    points, weights, rho = rec.field(coefficients)
    write_grid(here / "partition_tab.out", points, weights)
    write_grid(here / "rho_rebuilt_ri.out", points, rho, shuffle)
    sys.stdout.write(aims_out(rec, version, stage, True, rec.n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
