"""Hostile and careless input to ``pyscf-io``: a non-zero exit, one line on stderr, no traceback, nothing lost.

Covers: shell injection into SLURM job scripts (work directory names and every ``slurm``
setting), YAML bombs and mistyped or out-of-range settings, bad ``--index`` values, outputs
in missing or read-only directories, unreadable config files, two runs publishing the same
output, and work directories whose part files were deleted or truncated.
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import write_xyz
from typer.testing import CliRunner

import pyscf_io.merge
from pyscf_io.cli import app
from pyscf_io.config import load_settings
from pyscf_io.geometry import read_structures
from pyscf_io.slurm import write_scripts
from pyscf_io.workdir import WorkDir
from rho_data import open_dataset

runner = CliRunner()
FAST_ARGS = ["--basis", "sto-3g", "--aux-basis", "def2-universal-jkfit", "--grid-level", "1", "-q"]
FAST = {"basis": "sto-3g", "aux_basis": "def2-universal-jkfit", "grid_level": 1}
H2 = [("H", 0.0, 0.0, 0.0), ("H", 0.0, 0.0, 0.74)]


def invoke(args: list):
    return runner.invoke(app, [str(a) for a in args])


def fails(args: list, *, lines: int | None = 1) -> str:
    """Run the CLI: non-zero exit, ``lines`` lines on stderr, no traceback. Returns stderr."""
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code not in (0, None), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    err = result.stderr.strip()
    if lines is not None:
        assert len(err.splitlines()) == lines, err
    return err


@pytest.fixture
def h2_xyz(tmp_path: Path) -> Path:
    return write_xyz(tmp_path / "h2.xyz", [("h2", H2)])


@pytest.fixture
def fast_cfg(tmp_path: Path) -> Path:
    path = tmp_path / "fast.yaml"
    path.write_text(yaml.safe_dump(FAST))
    return path


# ---- SLURM job scripts -----------------------------------------------------------------------

HOSTILE = ["a$(touch PWNED)b", "a`touch PWNED`b", 'it\'s "quoted"', "x; touch PWNED", "with space"]


def _command_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_workdir_and_settings_are_quoted(tmp_path, h2_xyz, name):
    settings = load_settings(
        overrides={
            **FAST,
            "slurm.partition": name,
            "slurm.account": name,
            "slurm.time": name,
            "slurm.mem": name,
            "slurm.extra_sbatch": [f"--comment={name}"],
        }
    )
    structures, _ = read_structures(h2_xyz)
    wd = WorkDir.prepare(tmp_path / f"work {name}", settings, structures, [], tmp_path / "o.h5")
    array, merge = write_scripts(wd, settings, [[0]], 1)
    for script in (array, merge):
        text = script.read_text()
        assert subprocess.run(["bash", "-n", str(script)], capture_output=True, check=False).returncode == 0, text
        commands = _command_lines(text)
        assert commands[0] == "set -euo pipefail"
        assert all(line.startswith("#SBATCH ") or line == "#!/bin/bash" for line in text.splitlines() if line.startswith("#"))
        last = shlex.split(commands[-1].replace('"$SLURM_ARRAY_TASK_ID"', "7"))
        assert last[:3] == [sys.executable, "-m", "pyscf_io"] and str(wd.path) in last
    assert len(_command_lines(array.read_text())) == 3  # set, export, run-task: nothing else runs
    assert len(_command_lines(merge.read_text())) == 2
    assert not (tmp_path / "PWNED").exists()  # bash -n parsed the scripts without running anything


@pytest.mark.parametrize(
    "option, value, setting",
    [
        ("--partition", "short\ntouch PWNED", "slurm.partition"),
        ("--account", "chem\r\n#SBATCH --x", "slurm.account"),
        ("--time", "01:00:00\nrm -rf ~", "slurm.time"),
    ],
)
def test_newline_in_a_setting_is_refused_at_submit(tmp_path, h2_xyz, fast_cfg, option, value, setting):
    err = fails(["submit", h2_xyz, "-o", tmp_path / "o.h5", option, value, "-c", fast_cfg])
    assert setting in err and "control character" in err
    assert not (tmp_path / "o.h5.work").exists()  # refused before anything was created


@pytest.mark.parametrize("key", ["mem", "extra_sbatch", "setup"])
def test_newline_in_a_yaml_setting_is_refused_at_submit(tmp_path, h2_xyz, key):
    value = "4G\ntouch PWNED" if key == "mem" else ["ok", "--qos=x\ntouch PWNED"]
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({**FAST, "slurm": {key: value}}))
    err = fails(["submit", h2_xyz, "-o", tmp_path / "o.h5", "-c", cfg])
    assert f"slurm.{key}" in err and "control character" in err


def test_newline_in_the_workdir_name_is_refused_at_submit(tmp_path, h2_xyz, fast_cfg):
    err = fails(["submit", h2_xyz, "-o", tmp_path / "o.h5", "--workdir", tmp_path / "w\ntouch PWNED", "-c", fast_cfg])
    assert "work directory" in err and "control character" in err
    assert not any(p.name.startswith("w") for p in tmp_path.iterdir())


# ---- settings --------------------------------------------------------------------------------


def test_billion_laughs_is_refused(tmp_path, h2_xyz):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for k in range(1, 9):
        lines.append(f"{'abcdefghij'[k]}: &{'abcdefghij'[k]} [" + ",".join([f"*{'abcdefghij'[k - 1]}"] * 9) + "]")
    lines.append("xc: *i")
    cfg = tmp_path / "bomb.yaml"
    cfg.write_text("\n".join(lines) + "\n")
    err = fails(["run", h2_xyz, "-o", tmp_path / "o.h5", "-c", cfg])
    assert str(cfg) in err and "alias" in err and len(err) < 300


@pytest.mark.parametrize(
    "text, key",
    [
        ("grid_level: 12\n", "grid_level"),
        ("grid_level: -1\n", "grid_level"),
        ("scf_conv_tol: 0\n", "scf_conv_tol"),
        ("scf_conv_tol: .nan\n", "scf_conv_tol"),
        ("scf_max_cycle: 0\n", "scf_max_cycle"),
        ("min_distance: -0.1\n", "min_distance"),
        ("min_distance: .inf\n", "min_distance"),
        ("etb_beta: 1.0\n", "etb_beta"),
        ("etb_beta: 1e400\n", "etb_beta"),
        ("fit_rcond: 1.5\n", "fit_rcond"),
        ("overlap_threshold: -1\n", "overlap_threshold"),
        ("overlap_threshold: .nan\n", "overlap_threshold"),
        ("charge: 100000\n", "charge"),
        ("charge: 1.5\n", "charge"),
        ("spin: true\n", "spin"),
        ("workers: 0\n", "workers"),
        ("threads: many\n", "threads"),
        ("xc: ''\n", "xc"),
        ("basis: [a, b]\n", "basis"),
        ("aux_basis: 3\n", "aux_basis"),
        ("fit_metric: l2\n", "fit_metric"),
        ("slurm: 5\n", "slurm"),
        ("slurm:\n  cpus_per_task: 0\n", "slurm.cpus_per_task"),
        ("slurm:\n  structures_per_task: -3\n", "slurm.structures_per_task"),
        ("slurm:\n  max_concurrent: 0\n", "slurm.max_concurrent"),
        ("slurm:\n  time: ''\n", "slurm.time"),
        ("slurm:\n  mem: 4\n", "slurm.mem"),
        ("slurm:\n  setup: [1]\n", "slurm.setup[0]"),
        ("slurm:\n  extra_sbatch: --qos=x\n", "slurm.extra_sbatch"),
        (f"xc: {'x' * 5000}\nbasis: [{','.join(['1'] * 5000)}]\n", "basis"),
    ],
)
def test_wrong_type_or_range_is_one_line_naming_the_key(tmp_path, h2_xyz, text, key):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    err = fails(["run", h2_xyz, "-o", tmp_path / "o.h5", "-c", cfg])
    assert f"'{key}'" in err and str(cfg) in err and len(err) < 400


def test_workdir_settings_file_is_checked(tmp_path, h2_xyz):
    out = tmp_path / "o.h5"
    result = invoke(["run", h2_xyz, "-o", out, *FAST_ARGS])
    assert result.exit_code == 0, result.output
    settings = tmp_path / "o.h5.work" / "settings.yaml"
    good = yaml.safe_load(settings.read_text())
    settings.write_text("a: &a [1]\nb: *a\n")
    err = fails(["merge", tmp_path / "o.h5.work", "--overwrite"])
    assert str(settings) in err and "alias" in err
    settings.write_text(yaml.safe_dump({**good, "grid_level": "high"}))
    err = fails(["merge", tmp_path / "o.h5.work", "--overwrite"])
    assert str(settings) in err and "'grid_level'" in err


@pytest.mark.parametrize("content", [b"\xff\xfe basis: x\n", None])
def test_unreadable_config_file(tmp_path, h2_xyz, content):
    cfg = tmp_path / "cfg.yaml"
    if content is None:
        cfg.mkdir()
    else:
        cfg.write_bytes(content)
    err = fails(["run", h2_xyz, "-o", tmp_path / "o.h5", "-c", cfg])
    assert str(cfg) in err and ("UTF-8" in err or "directory" in err)


def test_missing_config_file(tmp_path, h2_xyz):
    assert "no such file" in fails(["run", h2_xyz, "-o", tmp_path / "o.h5", "-c", tmp_path / "nope.yaml"])


# ---- command line ----------------------------------------------------------------------------


@pytest.mark.parametrize("index", ["abc", "1:2:0", "1.5", "::x"])
def test_bad_index_value(tmp_path, h2_xyz, index):
    err = fails(["run", h2_xyz, "-o", tmp_path / "o.h5", "--index", index, *FAST_ARGS])
    assert "--index" in err
    assert not (tmp_path / "o.h5.work").exists()


@pytest.mark.parametrize("args", [["--workers", "abc"], ["--grid-level", "1.5"], ["--etb-beta", "x"]])
def test_option_of_the_wrong_type(tmp_path, h2_xyz, args):
    err = fails(["run", h2_xyz, "-o", tmp_path / "o.h5", *args], lines=None)  # click's usage error: a few lines
    assert args[0] in err and "Invalid value" in err


def test_output_in_a_missing_directory(tmp_path, h2_xyz):
    out = tmp_path / "missing" / "o.h5"
    err = fails(["run", h2_xyz, "-o", out, *FAST_ARGS])
    assert "does not exist" in err
    assert not (tmp_path / "missing").exists()  # the default work directory was not created there


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_output_in_a_read_only_directory_as_user(tmp_path, h2_xyz):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        assert "not writable" in fails(["run", h2_xyz, "-o", folder / "o.h5", *FAST_ARGS])
    finally:
        folder.chmod(stat.S_IRWXU)


def test_output_in_a_read_only_directory(tmp_path, h2_xyz, monkeypatch):
    """As root (the tests' usual user) permissions do not stop writes: a read-only mount does."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() == 0:
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M,ro", "tmpfs", str(folder)], check=False).returncode:
            pytest.skip("mount is not permitted here")
    else:
        folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        err = fails(["run", h2_xyz, "-o", folder / "o.h5", "--workdir", tmp_path / "w", *FAST_ARGS])
        assert "not writable" in err or "read-only" in err
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(folder)], check=False)
        else:
            folder.chmod(stat.S_IRWXU)


def test_output_is_a_directory(tmp_path, h2_xyz):
    (tmp_path / "o.h5").mkdir()
    assert "directory" in fails(["run", h2_xyz, "-o", tmp_path / "o.h5", *FAST_ARGS])


def test_status_and_merge_of_a_missing_workdir(tmp_path):
    assert "not a pyscf-io work directory" in fails(["status", tmp_path / "nope"])
    assert "not a pyscf-io work directory" in fails(["merge", tmp_path / "nope"])


def test_run_task_with_a_bad_chunk_file(tmp_path, h2_xyz):
    out = tmp_path / "o.h5"
    assert invoke(["run", h2_xyz, "-o", out, *FAST_ARGS]).exit_code == 0
    chunks = tmp_path / "chunks.json"
    for text in ("not json", "[[0]]", '[["x"]]'):
        chunks.write_text(text)
        err = fails(["run-task", tmp_path / "o.h5.work", "--chunks", chunks, "--task-id", "3" if text == "[[0]]" else "0"])
        assert str(chunks) in err


# ---- two runs, one output --------------------------------------------------------------------


def test_two_runs_with_one_output_never_replace_each_other(tmp_path, monkeypatch):
    """Run B passes the output check, then run A publishes the same output before B does: B must not replace it."""
    a_xyz = write_xyz(tmp_path / "a.xyz", [("h2-a", H2)])
    b_xyz = write_xyz(tmp_path / "b.xyz", [("h2-b", [("H", 0.0, 0.0, 0.0), ("H", 0.0, 0.0, 0.75)])])
    out = tmp_path / "o.h5"
    first = invoke(["run", a_xyz, "-o", tmp_path / "elsewhere.h5", "--workdir", tmp_path / "wa", *FAST_ARGS])
    assert first.exit_code == 0, first.output
    real_create = pyscf_io.merge.create_dataset
    raced = []

    def create_after_the_other_run_published(*args, **kwargs):
        if not raced:
            raced.append(True)
            pyscf_io.merge.merge_workdir(WorkDir(tmp_path / "wa"), out)  # run A publishes to the same output now
        return real_create(*args, **kwargs)

    monkeypatch.setattr(pyscf_io.merge, "create_dataset", create_after_the_other_run_published)
    result = invoke(["run", b_xyz, "-o", out, "--workdir", tmp_path / "wb", *FAST_ARGS])
    assert raced
    assert result.exit_code == 1 and "wrote" not in result.stdout, result.output
    assert "Traceback" not in result.output and "another process" in result.stderr
    with open_dataset(out) as ds:
        assert ds.labels() == ["h2-a"]  # A's result, intact
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_second_run_to_an_existing_output_is_refused_before_computing(tmp_path, h2_xyz):
    out = tmp_path / "o.h5"
    assert invoke(["run", h2_xyz, "-o", out, "--workdir", tmp_path / "wa", *FAST_ARGS]).exit_code == 0
    err = fails(["run", h2_xyz, "-o", out, "--workdir", tmp_path / "wb", *FAST_ARGS])
    assert "not written by this run" in err
    assert not list((tmp_path / "wb" / "state").glob("*.json"))  # nothing computed
    again = invoke(["run", h2_xyz, "-o", out, "--workdir", tmp_path / "wb", "--overwrite", *FAST_ARGS])
    assert again.exit_code == 0, again.output


# ---- lost part files -------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["delete", "truncate"])
def test_lost_part_file_is_recomputed(tmp_path, damage):
    frames = [(f"h2-{k}", [("H", 0.0, 0.0, 0.0), ("H", 0.0, 0.0, 0.70 + 0.02 * k)]) for k in range(3)]
    geometry = write_xyz(tmp_path / "h2s.xyz", frames)
    out = tmp_path / "o.h5"
    assert invoke(["run", geometry, "-o", out, *FAST_ARGS]).exit_code == 0
    parts = list((tmp_path / "o.h5.work" / "parts").glob("*.h5"))
    assert len(parts) == 1
    if damage == "delete":
        parts[0].unlink()
    else:
        with open(parts[0], "r+b") as handle:
            handle.truncate(os.path.getsize(parts[0]) // 2)
    result = invoke(["run", geometry, "-o", out, *FAST_ARGS])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "0, 1, 2" in warnings[0] and "recomputed" in warnings[0], result.stderr
    with open_dataset(out) as ds:
        assert ds.labels() == ["h2-0", "h2-1", "h2-2"]


def test_merge_of_a_workdir_with_lost_data_says_so(tmp_path):
    frames = [(f"h2-{k}", [("H", 0.0, 0.0, 0.0), ("H", 0.0, 0.0, 0.70 + 0.02 * k)]) for k in range(2)]
    geometry = write_xyz(tmp_path / "h2s.xyz", frames)
    out = tmp_path / "o.h5"
    assert invoke(["run", geometry, "-o", out, *FAST_ARGS]).exit_code == 0
    for part in (tmp_path / "o.h5.work" / "parts").glob("*.h5"):
        part.unlink()
    err = fails(["merge", tmp_path / "o.h5.work"], lines=2)  # the warning, then the error
    assert "pending again" in err and "Traceback" not in err
    with open_dataset(out) as ds:  # the old dataset is kept
        assert len(ds) == 2


# ---- pyscf-io guess ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def h2_data(tmp_path_factory) -> Path:
    """An H2 dataset (STO-3G, jkfit aux, grid level 1) made by pyscf-io run."""
    tmp = tmp_path_factory.mktemp("guess-hostile")
    xyz = write_xyz(tmp / "h2.xyz", [("h2", H2), ("h2b", [("H", 0.0, 0.0, 0.0), ("H", 0.0, 0.0, 0.80)])])
    result = invoke(["run", xyz, "-o", tmp / "h2.h5", *FAST_ARGS])
    assert result.exit_code == 0, result.output
    return tmp / "h2.h5"


def _copy_dataset(source: Path, target: Path, provenance=None, metadata=None) -> Path:
    """The structures of ``source`` in a new dataset (another dataset id), optionally with changes."""
    from rho_data import create_dataset

    with open_dataset(source) as ds:
        writer = create_dataset(target, ds.basis, provenance or ds.provenance, metadata=ds.metadata_names, extras=ds.extra_names)
        for s in ds:
            s.metadata.update(metadata or {})
            writer.append(s)
        writer.close()
    return target


def _predictions(path: Path, data: Path, scale: float = 1.0, basis=None) -> Path:
    from rho_data import Structure, create_predictions

    with open_dataset(data) as ds:
        writer = create_predictions(path, basis or ds.basis, dataset_id=ds.dataset_id)
        for i, s in enumerate(ds):
            c = s.coefficients * scale
            writer.append(Structure(s.numbers, s.positions, label=s.label, coefficients=c, dataset_index=i))
        writer.close()
    return path


def test_guess_refuses_another_datasets_predictions(tmp_path, h2_data):
    other = _copy_dataset(h2_data, tmp_path / "other.h5")
    pred = _predictions(tmp_path / "pred.h5", other)
    err = fails(["guess", pred, "--reference", h2_data, "-o", tmp_path / "r"])
    assert "pred.h5" in err and "predictions of dataset" in err and "h2.h5" in err
    assert not (tmp_path / "r").exists()


def test_guess_refuses_predictions_in_another_basis(tmp_path, h2_data):
    """Same sizes, other exponents: the coefficients would mean another density."""
    from rho_data import AuxiliaryBasis, ElementBasis, GaussianRadial

    with open_dataset(h2_data) as ds:
        h = ds.basis.elements["H"]
        radials = tuple(GaussianRadial(g.l, tuple(1.1 * e for e in g.exponents), g.coefficients) for g in h.gaussians)
        other = AuxiliaryBasis({"H": ElementBasis("H", h.n_radial, radials)})
    err = fails(["guess", _predictions(tmp_path / "pred.h5", h2_data, basis=other), "--reference", h2_data, "-o", tmp_path / "r"])
    assert "auxiliary basis differs" in err


def test_guess_refuses_a_dataset_whose_scf_cannot_be_rebuilt(tmp_path, h2_data):
    from rho_data import Provenance

    foreign = _copy_dataset(h2_data, tmp_path / "aims.h5", provenance=Provenance(producer="aims-io"))
    err = fails(["guess", _predictions(tmp_path / "pred.h5", foreign), "--reference", foreign, "-o", tmp_path / "r"])
    assert "aims.h5" in err and "cannot be rebuilt" in err


def test_guess_refuses_a_structure_whose_spin_cannot_be_rebuilt(tmp_path, h2_data):
    odd = _copy_dataset(h2_data, tmp_path / "odd.h5", metadata={"spin": 1.0})
    err = fails(["guess", _predictions(tmp_path / "pred.h5", odd), "--reference", odd, "-o", tmp_path / "r"])
    assert "odd.h5" in err and "structure 0" in err and "spin 1" in err


@pytest.mark.parametrize("guesses, message", [("ml,bogus", "unknown guess 'bogus'"), ("ml,ml", "named twice"), ("", "unknown")])
def test_guess_refuses_bad_guess_names(tmp_path, h2_data, guesses, message):
    err = fails(
        ["guess", _predictions(tmp_path / "pred.h5", h2_data), "--reference", h2_data, "-o", tmp_path / "r", "--guesses", guesses]
    )
    assert message in err


def test_guess_refuses_non_finite_predictions(tmp_path, h2_data):
    """rho-data's writer refuses NaN, so the file is damaged afterwards (another program's file)."""
    import h5py

    pred = _predictions(tmp_path / "pred.h5", h2_data)
    with h5py.File(pred, "r+") as h5:
        h5["structures/coefficients"][0] = float("nan")
    err = fails(["guess", pred, "--reference", h2_data, "-o", tmp_path / "r"])
    assert "non-finite" in err and "structure 0" in err


def test_guess_refuses_a_density_without_electrons(tmp_path, h2_data):
    pred = _predictions(tmp_path / "pred.h5", h2_data, scale=-1.0)
    err = fails(["guess", pred, "--reference", h2_data, "-o", tmp_path / "r", "--guesses", "ml"])
    assert "structure 0" in err and "no guess can be built" in err
