"""Old FHI-aims order conversion, and runs that must be refused (the others still imported)."""

import re
import shutil

import numpy as np
import pytest
from conftest import copy_run, make_ri_run
from typer.testing import CliRunner

from aims_io.cli import app
from aims_io.errors import AimsIOError
from aims_io.importer import import_tree
from aims_io.rifiles import read_ri_run
from rho_data import open_dataset


@pytest.fixture(scope="module")
def legacy_run(tmp_path_factory):
    from conftest import CH4, need

    return make_ri_run(tmp_path_factory.mktemp("legacy") / "run", need(CH4), {"AIMS_STANDIN_VERSION": "221103"})


def test_legacy_order_is_converted(legacy_run, ch4_ri_tree):
    modern = read_ri_run(ch4_ri_tree / "000000")
    old = read_ri_run(legacy_run)
    assert old.order.legacy and old.aims.version == "221103"
    # the file really is in another order with other signs ...
    raw = np.loadtxt(legacy_run / "ri_restart_coeffs.out")
    assert not np.allclose(raw, modern.coefficients)
    # ... and converts to exactly the canonical data
    np.testing.assert_array_equal(old.coefficients, modern.coefficients)
    np.testing.assert_array_equal(old.projections, modern.projections)
    np.testing.assert_array_equal(old.overlap.to_dense(), modern.overlap.to_dense())
    # and back (what export writes for a rebuild with the old version)
    np.testing.assert_array_equal(old.order.from_canonical(old.coefficients), raw)


def test_legacy_without_index_files_is_refused(legacy_run, tmp_path):
    run = copy_run(legacy_run, tmp_path / "run")
    (run / "prodbas_condon_shotley_list.out").unlink()
    with pytest.raises(
        AimsIOError, match=r"FHI-aims 221103 \(< 240403\) writes another m order.*prodbas_condon_shotley_list.out.*refusing"
    ) as err:
        read_ri_run(run)
    assert str(run / "aims.out") in str(err.value)


def test_legacy_with_unexpected_sign_list_is_refused(legacy_run, tmp_path):
    run = copy_run(legacy_run, tmp_path / "run")
    cs = np.loadtxt(run / "prodbas_condon_shotley_list.out", dtype=int)
    np.savetxt(run / "prodbas_condon_shotley_list.out", cs[1:], fmt="%d")
    with pytest.raises(AimsIOError, match="not exactly those with odd m > 0"):
        read_ri_run(run)


def _break(run, kind):
    if kind == "unfinished":
        text = (run / "aims.out").read_text()
        (run / "aims.out").write_text(text[: text.index("Leaving FHI-aims.")])
        return "aims.out", "did not finish"
    if kind == "truncated":
        (run / "aims.out").write_text((run / "aims.out").read_text()[:300])
        return "aims.out", "did not finish"
    if kind == "missing":
        (run / "ri_projections.out").unlink()
        return "ri_projections.out", "missing file"
    if kind == "sizes":
        lines = (run / "ri_restart_coeffs.out").read_text().splitlines()
        (run / "ri_restart_coeffs.out").write_text("\n".join(lines[:-3]) + "\n")
        return "ri_restart_coeffs.out", "has 795 values, basis_info.out gives 798"
    if kind == "nan":
        lines = (run / "ri_ovlp.out").read_text().splitlines()
        lines[10] = "NaN"
        (run / "ri_ovlp.out").write_text("\n".join(lines) + "\n")
        return "ri_ovlp.out", "value 11 is nan"
    if kind == "version":
        text = (run / "aims.out").read_text().replace("FHI-aims version      : 240925", "FHI-aims version      : 230214")
        (run / "aims.out").write_text(text)
        return "aims.out", "FHI-aims 230214"
    if kind == "basis":
        text = (run / "basis_info.out").read_text()
        (run / "basis_info.out").write_text(text.replace("For atom      5 max L =   4", ""))
        return "basis_info.out", "truncated"
    if kind == "element":
        text = (run / "basis_info.out").read_text()
        (run / "basis_info.out").write_text(text.replace("For L =   2 there are    7", "For L =   2 there are    6", 1))
        return "basis_info.out", "another H atom has"
    raise ValueError(kind)


KINDS = ["unfinished", "truncated", "missing", "sizes", "nan", "version", "basis", "element"]


def test_bad_runs_are_reported_and_the_others_imported(ch4_ri_tree, tmp_path):
    root = tmp_path / "ri"
    copy_run(ch4_ri_tree / "000000", root / "a-good")
    expected = {}
    for kind in KINDS:
        run = copy_run(ch4_ri_tree / "000000", root / f"b-{kind}")
        expected[str(run)] = _break(run, kind)
    copy_run(ch4_ri_tree / "000000", root / "z-good")
    report = import_tree(root, tmp_path / "out.h5")
    assert report.imported == ["a-good", "z-good"]
    failed = dict(report.failed)
    assert set(failed) == set(expected)
    for run_dir, (file, message) in expected.items():
        assert failed[run_dir].startswith(f"{run_dir}/{file}: "), failed[run_dir]
        assert message in failed[run_dir], failed[run_dir]
    with open_dataset(tmp_path / "out.h5") as ds:
        assert ds.labels() == ["a-good", "z-good"]
    # resume: fix one run and import again; only it is added
    shutil.rmtree(root / "b-missing")
    copy_run(ch4_ri_tree / "000000", root / "b-missing")
    report = import_tree(root, tmp_path / "out.h5", append=True)
    assert report.imported == ["b-missing"] and sorted(report.skipped) == ["a-good", "z-good"]


def test_cli_import_reports_failures_without_traceback(ch4_ri_tree, tmp_path):
    root = tmp_path / "ri"
    copy_run(ch4_ri_tree / "000000", root / "good")
    bad = copy_run(ch4_ri_tree / "000000", root / "bad")
    _break(bad, "missing")
    result = CliRunner().invoke(app, ["import", str(root), str(tmp_path / "out.h5")])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert re.search(r"imported 1, already present 0, failed 1", result.output)
    assert f"{bad}/ri_projections.out: missing file" in result.output.replace("\n", "")


def test_cli_error_is_one_red_line(tmp_path):
    result = CliRunner().invoke(app, ["parse", str(tmp_path / "nope" / "aims.out")])
    assert result.exit_code == 1 and "error:" in result.output and "missing file" in result.output
    assert "Traceback" not in result.output
