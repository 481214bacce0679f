"""SCF guesses of Gamma-point cells: the potential of a density on the cell's mesh equals PySCF's own
J + V_xc, and ``pyscf-io guess`` runs a cell dataset to the default guess's energy."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_guess import write_predictions
from test_hostile_input import invoke
from test_periodic import _cell_args, cell_context, si2

from pyscf_io.cell import make_cell
from pyscf_io.compute import compute_structure
from pyscf_io.guess_potential import cell_potential_matrix
from pyscf_io.task import append_to_part


@pytest.mark.parametrize(("xc", "kind"), [("LDA,VWN", "LDA"), ("PBE", "GGA")])
def test_cell_potential_equals_pyscf_veff(xc, kind):
    """J + V_xc of a density matrix's density on the mesh against PySCF's FFT-based RKS get_veff."""
    from pyscf.pbc import dft

    inp = si2(0.05)
    ctx = cell_context(inp)
    cell = make_cell(*_cell_args(inp, ctx))
    mf = dft.RKS(cell, xc=xc)
    dm = mf.get_init_guess(key="minao")
    ni = mf._numint
    coords = cell.get_uniform_grids(cell.mesh)
    ao = ni.eval_ao(cell, coords, deriv=1 if kind == "GGA" else 0)
    rho = np.atleast_2d(ni.eval_rho(cell, ao, dm, xctype=kind))
    ours = cell_potential_matrix(cell, rho.copy(), xc, kind)
    theirs = np.asarray(mf.get_veff(cell, dm))
    assert np.abs(ours - theirs).max() < 1e-7 * np.abs(theirs).max()


@pytest.mark.slow
def test_guess_of_a_gamma_cell_converges_to_the_default_energy(tmp_path):
    inp = si2(0.05)
    ctx = cell_context(inp)
    data = tmp_path / "si2.h5"
    append_to_part(data, ctx, compute_structure(inp, ctx))
    pred = write_predictions(tmp_path / "pred.h5", data)
    out = tmp_path / "report"
    result = invoke(["guess", str(pred), "--reference", str(data), "-o", str(out), "--guesses", "ml,minao"])
    assert result.exit_code == 0, result.output
    rows = {r["guess"]: r for r in json.loads((out / "guess.json").read_text())["rows"]}
    assert rows["ml"]["converged"] and rows["minao"]["converged"]
    assert abs(rows["ml"]["energy_ha"] - rows["minao"]["energy_ha"]) < 1e-6
    assert rows["ml"]["n_electrons_guess"] == pytest.approx(8.0, abs=0.05)
    refused = invoke(["guess", str(pred), "--reference", str(data), "-o", str(tmp_path / "r2"), "--guesses", "ml,huckel"])
    assert refused.exit_code == 1 and "PySCF's periodic SCF has no huckel guess" in refused.output
