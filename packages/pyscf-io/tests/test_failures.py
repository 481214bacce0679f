"""A structure whose SCF does not converge is recorded as failed with the reason, the others
finish, and ``pyscf-io status`` shows it."""

import json

from conftest import MOLECULES, write_xyz
from typer.testing import CliRunner

from pyscf_io.cli import app
from rho_data import open_dataset

runner = CliRunner()
FAST_ARGS = ["--basis", "sto-3g", "--aux-basis", "def2-universal-jkfit", "--grid-level", "1", "-q"]
H2 = [("H", 0.0, 0.0, 0.0), ("H", 0.0, 0.0, 0.74)]


def test_scf_not_converged_is_a_recorded_failure(tmp_path):
    # 2 cycles: minimal-basis H2 converges (its orbitals are fixed by symmetry), water does not
    xyz = write_xyz(tmp_path / "mols.xyz", [("h2-a", H2), ("water", MOLECULES["water"]), ("h2-b", H2)])
    out = tmp_path / "d.h5"
    result = runner.invoke(app, ["run", str(xyz), "-o", str(out), *FAST_ARGS, "--max-cycle", "2"])
    text = " ".join(result.output.split())
    assert result.exit_code == 1
    assert "mols.xyz: structure 1 (water): SCF did not converge in 2 cycles (conv_tol 1e-09)" in text
    assert "Traceback" not in result.output
    with open_dataset(out) as ds:
        assert ds.labels() == ["h2-a", "h2-b"]
        assert list(ds.metadata_column("input_index")) == [0, 2]
        assert (ds.metadata_column("scf_converged") == 1).all()
        assert (ds.metadata_column("scf_cycles") <= 2).all()
    work = tmp_path / "d.h5.work"
    state = json.loads((work / "state" / "0000001.json").read_text())
    assert state["status"] == "failed" and state["reason"].startswith("SCF did not converge in 2 cycles")

    status = runner.invoke(app, ["status", str(work)])
    lines = [" ".join(line.replace("│", " ").split()) for line in status.output.splitlines()]
    assert status.exit_code == 0
    assert "done 2" in lines and "failed 1" in lines and "pending 0" in lines
    assert "mols.xyz: structure 1 (water): SCF did not converge in 2 cycles (conv_tol 1e-09)" in " ".join(status.output.split())
