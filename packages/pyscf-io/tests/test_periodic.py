"""Periodic structures: the cell run (Gamma and k-mesh), the lattice-summed fit, 2D cells, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from pyscf_io.basis import canonical_permutation
from pyscf_io.cell import make_auxcell, make_cell
from pyscf_io.cli import app
from pyscf_io.compute import compute_structure
from pyscf_io.config import load_settings
from pyscf_io.context import RunContext
from pyscf_io.errors import PyscfIoError
from pyscf_io.fields import PyscfFieldBuilder
from pyscf_io.fit import density_integrals
from pyscf_io.geometry import InputStructure
from pyscf_io.grid import cell_ao_density, cell_aux_projections, uniform_grid
from pyscf_io.guess import scf_settings
from pyscf_io.run_kind import resolve_run_kind
from rho_data import open_dataset
from rho_data.field_builders import FieldRequest
from rho_data.moments import electron_count

runner = CliRunner()
A_SI = 5.43
FCC = np.array([[0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]]) * A_SI
#: Si2 at the Gamma point has no gap: Fermi smearing makes its SCF converge on any BLAS build
FAST = ["--set", "cell_basis=gth-szv", "--set", "cell_smearing_ev=0.1", "-q"]


def si2(shift: float = 0.0) -> InputStructure:
    positions = ((0.0, 0.0, 0.0), (A_SI / 4 + shift, A_SI / 4, A_SI / 4 - shift))
    return InputStructure("si2.xyz", 0, "si2", (14, 14), positions, cell=tuple(map(tuple, FCC)), pbc=(True, True, True))


def cell_context(structure: InputStructure, **overrides) -> RunContext:
    settings = load_settings(
        [], {}, [f"{k}={v}" for k, v in {"cell_basis": "gth-szv", "cell_smearing_ev": 0.1, **overrides}.items()]
    )
    assert resolve_run_kind(settings, [structure])
    return RunContext.build(settings, set(structure.numbers), periodic=True)


@pytest.fixture(scope="module")
def si2_gamma():
    inp = si2(0.05)
    ctx = cell_context(inp)
    return inp, ctx, compute_structure(inp, ctx)


def test_gamma_cell_record(si2_gamma):
    inp, ctx, s = si2_gamma
    m = s.metadata
    assert ctx.settings["fit_metric"] == "overlap" and ctx.settings["cell_scf"] == "gdf"
    assert m["scf_converged"] == 1.0 and m["n_electrons"] == 8.0  # valence electrons of the GTH pseudopotential
    assert abs(m["n_electrons_fit"] - 8.0) < 2e-3
    # the coefficients belong to the dataset's GaussianRadial basis (not to PySCF's unit-charge auxcell functions)
    assert electron_count(ctx.basis(), np.array(inp.numbers), s.coefficients) == pytest.approx(m["n_electrons_fit"], rel=1e-10)
    assert 0 < m["fit_nmae_percent"] < 20.0  # gth-szv's etb set is small; the default gth-dzvp is below 0.5 (README)
    assert [m[f"grid_mesh_{a}"] for a in "abc"] == [float(n) for n in make_cell(*_cell_args(inp, ctx)).mesh]
    np.testing.assert_allclose(s.cell, FCC)
    assert s.pbc.tolist() == [True, True, True]
    assert "density_matrix" in s.extras


def _cell_args(inp: InputStructure, ctx: RunContext):
    return inp.numbers, inp.positions_array, inp.cell_array, inp.pbc, ctx.ao, ctx.settings["pseudo"]


def test_overlap_is_lattice_summed_and_projections_consistent(si2_gamma):
    """The stored S is sum_T <phi_i|phi_j(.-T)> (not the single-image overlap), w = S d, and the grid
    projections <P|rho> equal the analytic three-centre overlaps."""
    inp, ctx, s = si2_gamma
    cell = make_cell(*_cell_args(inp, ctx))
    auxcell = make_auxcell(cell, ctx.aux)
    dense = s.overlap.to_dense()
    d = s.coefficients
    np.testing.assert_allclose(dense @ d, s.projections, atol=1e-10)
    summed = np.asarray(auxcell.pbc_intor("int1e_ovlp", hermi=1))
    single = auxcell.intor("int1e_ovlp")
    assert np.abs(summed - single).max() > 1e-3  # the images matter in a 2-atom cell
    perm = canonical_permutation(auxcell)
    np.testing.assert_allclose(dense, summed[np.ix_(perm, perm)], atol=1e-14)
    dm = s.extras["density_matrix"].reshape(cell.nao, cell.nao)
    points, weights = uniform_grid(cell, cell.mesh)
    grid = cell_aux_projections(auxcell, points, weights, cell_ao_density(cell, dm, points))
    analytic = density_integrals(cell, auxcell, dm, "overlap")
    assert np.abs(grid - analytic).max() < 1e-6 * np.abs(analytic).max()


def test_smearing_reaches_the_scf():
    from pyscf_io.cell import make_cell_scf

    inp = si2()
    ctx = cell_context(inp, cell_smearing_ev=0.1, cell_scf="multigrid")
    mf = make_cell_scf(make_cell(*_cell_args(inp, ctx)), ctx.settings, None)
    assert mf.sigma == pytest.approx(0.1 / 27.211386245988) and mf.smearing_method == "fermi"
    assert ctx.provenance().extra["cell_smearing_ev"] == 0.1


def test_analytic_fit_agrees_with_grid_fit(si2_gamma):
    inp, _, grid = si2_gamma
    analytic = compute_structure(inp, cell_context(inp, cell_fit_integrals="analytic"))
    assert abs(analytic.metadata["n_electrons_fit"] - 8.0) < 2e-3
    assert abs(analytic.metadata["fit_nmae_percent"] - grid.metadata["fit_nmae_percent"]) < 0.5


def test_k_mesh_cell_and_its_rebuild(tmp_path):
    """A 2x1x1 k-mesh: the SCF differs from Gamma, the k density matrices are stored and the field
    builder rebuilds the fit error the run measured."""
    from ase.io import write

    atoms = _ase(si2(0.05))
    write(tmp_path / "si2.xyz", [atoms], format="extxyz")
    out = tmp_path / "k.h5"
    result = runner.invoke(app, ["run", str(tmp_path / "si2.xyz"), "-o", str(out), "--set", "kmesh=[2, 1, 1]", *FAST])
    assert result.exit_code == 0, result.output
    with open_dataset(out) as ds:
        s = ds[0]
        assert ds.provenance.extra["kmesh"] == [2, 1, 1] and ds.provenance.extra["pseudo"] == "gth-pbe"
        assert ds.provenance.extra["periodic"] is True and ds.provenance.fit_metric == "overlap"
        assert "density_matrix_k" in s.extras and "density_matrix" not in s.extras
        assert abs(s.metadata["n_electrons_fit"] - 8.0) < 2e-3
        request = FieldRequest(0, {"ri": s.coefficients})
        ((_, grid),) = PyscfFieldBuilder().build(ds, [request])
        assert np.sum(grid.weights * grid.values["scf"]) == pytest.approx(8.0, abs=1e-6)
        nmae = 100 * np.sum(grid.weights * np.abs(grid.values["ri"] - grid.values["scf"])) / 8.0
        assert nmae == pytest.approx(s.metadata["fit_nmae_percent"], rel=1e-6)
        with pytest.raises(PyscfIoError, match="2x1x1 k-mesh: SCF guesses are built for molecules and Gamma-point cells"):
            scf_settings(ds)


def _ase(inp: InputStructure):
    from ase import Atoms

    return Atoms(numbers=inp.numbers, positions=inp.positions_array, cell=inp.cell_array, pbc=inp.pbc, info={"label": inp.label})


@pytest.mark.slow
def test_two_dimensional_cell():
    """Silicane (Si2H2, pbc T T F, vacuum along a3): dimension 2, gdf SCF, electrons per cell."""
    a, z, vac = 3.89, 6.0, 12.0
    positions = ((0, 0, z), (0, a / np.sqrt(3), z + 0.72), (0, 0, z - 1.5), (0, a / np.sqrt(3), z + 2.22))
    lattice = ((a, 0, 0), (-a / 2, a * np.sqrt(3) / 2, 0), (0, 0, vac + 0.72))
    inp = InputStructure("silicane.xyz", 0, "silicane", (14, 14, 1, 1), positions, cell=lattice, pbc=(True, True, False))
    ctx = cell_context(inp)
    assert ctx.settings["cell_scf"] == "gdf"
    s = compute_structure(inp, ctx)
    assert s.pbc.tolist() == [True, True, False]
    assert make_cell(*_cell_args(inp, ctx)).dimension == 2
    # gth-szv gives H a single s function and so a tiny etb set: the fit keeps 99 % of the electrons
    assert s.metadata["n_electrons"] == 10.0 and abs(s.metadata["n_electrons_fit"] - 10.0) < 0.1


def _cli_error(tmp_path, frames, *extra) -> str:
    from ase.io import write

    path = tmp_path / "cells.xyz"
    write(path, frames, format="extxyz")
    result = runner.invoke(app, ["run", str(path), "-o", str(tmp_path / "out.h5"), *FAST, *extra])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert "Traceback" not in result.output
    return " ".join(lines)


def test_bad_cells_are_one_line_errors(tmp_path):
    good = _ase(si2())
    flat = good.copy()
    flat.cell[2] = flat.cell[0]  # two equal lattice vectors: zero volume
    assert "zero volume" in _cli_error(tmp_path, [flat])
    no_pbc = good.copy()
    no_pbc.pbc = False
    assert "has lattice vectors but pbc F F F" in _cli_error(tmp_path, [no_pbc])
    wire = good.copy()
    wire.pbc = (True, False, False)
    assert "pbc T F F is not computed" in _cli_error(tmp_path, [wire])
    boundary = good.copy()
    boundary.positions[1] = boundary.positions[0] + 0.999 * np.asarray(boundary.cell[0]) + [0.0, 0.1, 0.0]
    message = _cli_error(tmp_path, [boundary])
    assert "through the cell boundary" in message and "min_distance" in message and "si2" in message


def test_settings_that_do_not_apply_are_refused(tmp_path):
    from ase import Atoms

    cell = _ase(si2())
    molecule = Atoms("H2", positions=[(0, 0, 0), (0, 0, 0.74)], info={"label": "h2"})
    assert "G = 0" in _cli_error(tmp_path, [cell], "--set", "fit_metric=coulomb")
    assert "one run computes one kind" in _cli_error(tmp_path, [cell, molecule])
    assert "is a molecule (no cell, no k-points)" in _cli_error(tmp_path, [molecule], "--set", "kmesh=[2, 2, 2]")
    assert "Gamma-point only" in _cli_error(tmp_path, [cell], "--set", "kmesh=[2, 1, 1]", "--set", "cell_fit_integrals=analytic")
    assert "three integers" in _cli_error(tmp_path, [cell], "--set", "kmesh=[2, 0, 1]")
    assert "must be >= 0" in _cli_error(tmp_path, [cell], "--set", "cell_smearing_ev=-1")
    assert "total density only" in _cli_error(tmp_path, [cell], "--set", "fields=[density, homo]")
    hf = _cli_error(tmp_path, [cell], "--set", "cell_scf=multigrid", "--set", "xc=HF")
    assert "multigrid needs a density functional" in hf
