"""Properties from the coefficients (electrons, dipole, energies, SALTED %RMSE) and the grid-vs-overlap check."""

import math

import numpy as np
import pytest
from gaussian_builder import BOHR, GaussianFieldBuilder, NoPropertiesBuilder, basis_matrix, cubic_grid
from rho_data import BlockSparseOverlap, open_dataset
from test_evaluate import read_csv, run

from rho_eval.metrics import coefficient_error_scale, consistency_difference, relative_difference
from rho_eval.properties import DEBYE_PER_AU, KCAL_MOL_PER_HARTREE


def _scaled(i, d):
    return 1.01 * d


def test_electron_count_and_dipole_agree_with_the_grid(dataset_path, make_predictions, tmp_path):
    """Analytic integrals of the coefficients equal the grid integrals of the rebuilt density."""
    run(make_predictions(_scaled), dataset_path, tmp_path / "r")
    rows = read_csv(tmp_path / "r" / "metrics.csv")
    with open_dataset(dataset_path) as ds:
        for r in rows:
            s = ds[int(r["dataset_index"])]
            assert float(r["n_electrons_coef_pred"]) == pytest.approx(float(r["n_electrons_pred"]), rel=1e-7)
            n_ri = float(r["n_electrons_coef_pred"]) / 1.01
            assert float(r["n_electrons_error_ri"]) == pytest.approx(0.01 * n_ri, rel=1e-9)
            pos = s.positions / BOHR
            points, weights = cubic_grid(pos, 0.3, 7.0)
            rho = basis_matrix(ds.basis, s.numbers, pos, points) @ (1.01 * s.coefficients)
            mu = s.numbers @ pos - weights @ (points * rho[:, None])
            assert float(r["dipole_pred_debye"]) == pytest.approx(DEBYE_PER_AU * np.linalg.norm(mu), rel=1e-6)
            mu_ri = s.numbers @ pos - weights @ (points * (rho / 1.01)[:, None])
            assert float(r["dipole_error_ri_debye"]) == pytest.approx(DEBYE_PER_AU * np.linalg.norm(mu - mu_ri), rel=1e-6)


def test_energies_and_rmse_of_a_known_change(dataset_path, make_predictions, tmp_path):
    """1.01 d: E_H grows by 0.0201 E_H(RI), E_en by 0.01 E_en(RI); %RMSE = 100 sqrt(sum 1e-4 d^T S d / sum (d - cbar)^T S (d - cbar))."""
    summary = run(make_predictions(_scaled), dataset_path, tmp_path / "r")
    run(None, dataset_path, tmp_path / "fit", fit_only=True)
    rows = read_csv(tmp_path / "r" / "metrics.csv")
    fit_rows = read_csv(tmp_path / "fit" / "metrics.csv")
    builder = GaussianFieldBuilder()
    num = den = 0.0
    with open_dataset(dataset_path) as ds:
        cbar = {}
        for z in (1, 8):
            blocks = [
                ds[i].coefficients[o : o + ds.basis[z].n_functions]
                for i in range(4)
                for o, n in zip(np.cumsum([0, *ds.basis.atom_sizes(ds[i].numbers)[:-1]]), ds[i].numbers)
                if n == z
            ]
            mean = np.mean(blocks, axis=0)
            for l, sl in ds.basis[z].l_slices():
                if l:
                    mean[sl] = 0.0
            cbar[z] = mean
        for r, f in zip(rows, fit_rows):
            i = int(r["dataset_index"])
            d = ds[i].coefficients
            e_h = 0.5 * d @ builder.coulomb_matrix(ds, i) @ d
            e_en = -builder.nuclear_potential(ds, i) @ d
            assert float(r["hartree_error_ri_kcal_mol"]) == pytest.approx(KCAL_MOL_PER_HARTREE * 0.0201 * e_h, rel=1e-8)
            assert float(r["electrostatic_error_ri_kcal_mol"]) == pytest.approx(KCAL_MOL_PER_HARTREE * (0.0201 * e_h + 0.01 * e_en), rel=1e-8)
            # against SCF: the prediction's error is the fit's error plus its error against RI
            expected = float(f["electrostatic_error_scf_kcal_mol"]) + float(r["electrostatic_error_ri_kcal_mol"])
            assert float(r["electrostatic_error_scf_kcal_mol"]) == pytest.approx(expected, rel=1e-8)
            S = ds[i].overlap
            c = d - np.concatenate([cbar[int(z)] for z in ds[i].numbers])
            num, den = num + S.quadratic(0.01 * d), den + S.quadratic(c)
    assert summary["pooled"]["rmse_coef_ri_percent"] == pytest.approx(100 * math.sqrt(num / den), rel=1e-8)
    assert summary["property_errors"]["electrostatic_error_ri_kcal_mol"]["count"] == 4


def test_scf_properties_of_the_fake_backend_are_consistent(dataset_path):
    """The test builder's SCF values: electrons from the Gaussians, E_H and E_en against a grid potential."""
    builder = GaussianFieldBuilder()
    with open_dataset(dataset_path) as ds:
        s = ds[2]
        props = builder.scf_properties(ds, 2)
        assert props["n_electrons"] == pytest.approx(s.metadata["n_electrons"])
        # J of the auxiliary basis is positive definite and symmetric; v is positive
        J = builder.coulomb_matrix(ds, 2)
        assert np.allclose(J, J.T) and np.linalg.eigvalsh(J).min() > 0
        assert builder.nuclear_potential(ds, 2)[0] > 0


def test_backend_without_property_protocol_skips_with_a_note(dataset_path, make_predictions, tmp_path):
    summary = run(make_predictions(_scaled), dataset_path, tmp_path / "r", factory=NoPropertiesBuilder)
    assert any("has no coulomb_matrix, nuclear_potential, scf_properties" in n for n in summary["notes"])
    rows = read_csv(tmp_path / "r" / "metrics.csv")
    assert all(r["electrostatic_error_ri_kcal_mol"] == "nan" and r["dipole_scf_debye"] == "nan" for r in rows)
    assert all(float(r["dipole_error_ri_debye"]) > 0 for r in rows)  # the analytic dipole needs no backend


class _NaNEnergies(GaussianFieldBuilder):
    def nuclear_potential(self, dataset, index):
        v = super().nuclear_potential(dataset, index)
        v[0] = np.nan
        return v


def test_non_finite_backend_property_is_an_error(dataset_path, make_predictions, tmp_path):
    from rho_eval import RhoEvalError

    with pytest.raises(RhoEvalError, match=r"structure 0.*non-finite properties"):
        run(make_predictions(_scaled), dataset_path, tmp_path / "r", factory=_NaNEnergies)


def test_consistency_scale_ignores_cancellation_but_not_a_wrong_overlap():
    """Two nearly dependent functions: dc^T S dc = 0.002 from terms of size ~4. A grid with 1e-6
    relative error per term was a false alarm of the old relative check (2e-3 > 1e-4)."""
    S = np.array([[1.0, 0.999], [0.999, 1.0]])
    overlap = BlockSparseOverlap.from_dense(S, np.array([2]))
    dc = np.array([1.0, -1.0])
    exact = float(dc @ S @ dc)
    grid = float(dc @ (S * (1 + 1e-6 * np.array([[1, -1], [-1, 1]]))) @ dc)
    scale = coefficient_error_scale(overlap, dc, np.zeros(2))
    assert scale == pytest.approx(3.998)
    assert relative_difference(grid, exact) > 1e-4  # the old check's false alarm
    assert consistency_difference(grid, exact, scale) < 1e-5
    wrong = BlockSparseOverlap.from_dense(np.array([[1.0, 0.99], [0.99, 1.0]]), np.array([2]))  # the overlap of another geometry
    assert consistency_difference(grid, wrong.quadratic(dc), scale) > 1e-4
