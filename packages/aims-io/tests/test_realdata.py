"""Real FHI-aims data (qm7-0-CH4, FHI-aims 240925): parse, import, check the maths."""

import numpy as np
import pytest
from conftest import SQUARED_ERROR_FHI_AIMS

from aims_io.basis_info import read_basis_info
from aims_io.floats import read_floats
from aims_io.overlap import read_overlap
from aims_io.rifiles import read_ri_run
from rho_data import open_dataset


def dense_from_triangle(path, n):
    s = np.zeros((n, n))
    s[np.triu_indices(n)] = read_floats(path)
    return s + np.triu(s, 1).T


def test_basis_info_real(ch4):
    counts = read_basis_info(ch4 / "basis_info.out")
    assert counts[0] == (11, 11, 10, 9, 8, 6, 4, 2, 1)
    assert counts[1:] == [(9, 9, 7, 3, 1)] * 4
    assert sum(sum(c * (2 * l + 1) for l, c in enumerate(a)) for a in counts) == 798


def test_read_ri_run(ch4_ri_tree, ch4):
    run = read_ri_run(ch4_ri_tree / "000000")
    assert run.n_functions == 798 and run.aims.n_auxiliary == 798 and run.aims.version == "240925"
    assert run.aims.n_integration_points == 75878
    assert not run.order.legacy
    np.testing.assert_array_equal(run.coefficients, read_floats(ch4 / "ri_restart_coeffs.out"))
    # block-sparse overlap built from the triangle equals the dense reference
    dense = dense_from_triangle(ch4 / "ri_ovlp.out", 798)
    np.testing.assert_array_equal(run.overlap.to_dense(), dense)


def test_full_square_overlap_reads_the_same(ch4, tmp_path):
    dense = dense_from_triangle(ch4 / "ri_ovlp.out", 798)
    np.savetxt(tmp_path / "ri_ovlp.out", dense.reshape(-1), fmt="%.17E")
    sizes = np.array([394, 101, 101, 101, 101])
    np.testing.assert_array_equal(read_overlap(tmp_path / "ri_ovlp.out", sizes).to_dense(), dense)


def test_imported_dataset_maths(ch4_dataset, ch4):
    with open_dataset(ch4_dataset) as ds:
        assert len(ds) == 1
        assert ds.provenance.producer == "aims-io" and ds.provenance.producer_version == "240925"
        assert ds.provenance.functional == "pbe0" and ds.provenance.fit_metric == "overlap"
        assert ds.provenance.extra["aims_commit"] == "8afb4ed6e"
        assert ds.basis["C"].n_radial == (11, 11, 10, 9, 8, 6, 4, 2, 1) and ds.basis["H"].n_radial == (9, 9, 7, 3, 1)
        assert ds.basis["C"].gaussians is None
        s = ds[0]
        assert s.label == "000000"
        d, w = s.coefficients, s.projections
        # S d = w (FHI-aims solved this system)
        assert np.abs(s.overlap.matvec(d) - w).max() <= 1e-12 * np.abs(w).max()
        # (d_ml - d_ri)^T S (d_ml - d_ri) = FHI-aims's own grid-integrated squared error
        d_ml = read_floats(ch4 / "ml_coeffs.out", expected=798)
        assert s.overlap.quadratic(d_ml - d) == pytest.approx(SQUARED_ERROR_FHI_AIMS, rel=1e-6)
        # metadata: energy in hartree, from eV with 1 Ha = 27.211386245988 eV
        assert s.metadata["energy"] == pytest.approx(-1102.151963776 / 27.211386245988, rel=1e-14)
        assert s.metadata["scf_converged"] == 1.0 and s.metadata["n_electrons"] == 10.0
        assert s.metadata["time_fit_s"] == 6.681
        # the stand-in's grid: n_electrons_fit = integral of the RI density = sum_a d_a integral phi_a;
        # its rho_scf is the RI density itself, so the fit error there is 0 (documented)
        assert s.metadata["fit_squared_error"] == pytest.approx(0.0, abs=1e-20)
        # all 5 atoms overlap: 15 pair blocks
        assert len(s.overlap.pairs) == 15


def test_tensormaps_equal_rholearn(ch4_dataset, ch4):
    metatensor = pytest.importorskip("metatensor")
    from rho_data.mts import coefficients_to_tensormap, overlap_to_tensormap

    processed = ch4 / "rholearn-processed"
    with open_dataset(ch4_dataset) as ds:
        s = ds[0]
        for name, vector in (("ri_coeffs.npz", s.coefficients), ("ri_projs.npz", s.projections)):
            ours = coefficients_to_tensormap([s.numbers], [vector], ds.basis)
            theirs = metatensor.load(str(processed / name))
            assert metatensor.equal_metadata(ours, theirs)
            assert metatensor.allclose(ours, theirs, rtol=0, atol=0)
        ours = overlap_to_tensormap([s.numbers], [s.overlap])
        theirs = metatensor.load(str(processed / "ri_ovlp.npz"))
        # rholearn stores off-diagonal atom pairs multiplied by 2
        blocks = []
        for _, block in theirs.items():  # noqa: PERF102 (TensorMap has no .values())
            factor = np.where(block.samples.values[:, 1] == block.samples.values[:, 2], 1.0, 0.5)
            blocks.append(
                metatensor.TensorBlock(block.values * factor[:, None, None], block.samples, block.components, block.properties)
            )
        theirs = metatensor.TensorMap(theirs.keys, blocks)
        assert metatensor.equal_metadata(ours, theirs)
        assert metatensor.allclose(ours, theirs, rtol=1e-15, atol=0)
