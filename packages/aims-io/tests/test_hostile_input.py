"""Hostile and careless input through the `aims-io` command line: one line on stderr, exit != 0, no traceback.

Also the SLURM job script with hostile names (a fake `sbatch` on PATH records what it is given):
values with a newline are refused naming the setting; `$(...)`, backticks, quotes, `;` and
spaces are harmless (the script passes `bash -n`, holds only the expected command lines, and
running it executes nothing from a name).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES, copy_run, need, standin_command
from typer.testing import CliRunner

from aims_io.cli import app
from aims_io.settings import dump


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_one_line_error(result, *needles: str) -> str:
    """Exit code != 0, exactly one line on stderr (containing every needle), no traceback."""
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@contextlib.contextmanager
def read_only(directory: Path):
    """Make ``directory`` unwritable, also for root (immutable flag); skip where that is impossible."""
    directory.chmod(0o555)
    immutable = False
    if not os.access(directory, os.W_OK):
        pass
    elif subprocess.run(["chattr", "+i", str(directory)], capture_output=True, check=False).returncode == 0:
        immutable = True
    try:
        if os.access(directory, os.W_OK):
            pytest.skip("cannot make a directory read-only for this user")
        yield directory
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(directory)], check=False)
        directory.chmod(0o755)


def _structures(path: Path) -> Path:
    import ase.io
    from ase import Atoms

    ase.io.write(path, [Atoms("H2", positions=[[0, 0, 0], [0.74, 0, 0]])], format="extxyz")
    return path


# ---- settings files ------------------------------------------------------------------------


def test_non_utf8_settings_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"dft:\n  xc: pb\xe9\xff\n")
    r = invoke("prepare", "scf", _structures(tmp_path / "s.xyz"), "-w", tmp_path / "w", "-c", bad)
    assert_one_line_error(r, str(bad), "UTF-8")


def test_directory_as_settings_file(tmp_path):
    r = invoke("prepare", "scf", _structures(tmp_path / "s.xyz"), "-w", tmp_path / "w", "-c", tmp_path)
    assert_one_line_error(r, "is a directory")


def test_missing_settings_file(tmp_path):
    r = invoke("run", "scf", "-w", tmp_path, "-c", tmp_path / "nope.yaml")
    assert_one_line_error(r, "nope.yaml")


def test_billion_laughs_settings_are_refused(tmp_path):
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for k in range(1, 9):
        lines.append(f"{chr(97 + k)}: &{chr(97 + k)} [" + ", ".join([f"*{chr(96 + k)}"] * 9) + "]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\ndft:\n  extra_keywords:\n    x: *i\n")
    r = invoke("run", "scf", "-w", tmp_path, "-c", bomb)
    assert_one_line_error(r, str(bomb), "aliases")
    r = invoke("run", "scf", "-w", tmp_path, "--set", "hpc.setup_lines=[&a x, *a, *a]")
    assert_one_line_error(r, "aliases")


@pytest.mark.parametrize(
    "text, needles",
    [
        ("hpc:\n  nodes: two\n", ["'hpc.nodes' must be a number", "'two'"]),
        ("hpc:\n  nodes: 1.5\n", ["'hpc.nodes' must be a whole number"]),
        ("hpc:\n  nodes: null\n", ["'hpc.nodes' must not be null"]),
        ("hpc:\n  max_parallel: 0\n", ["'hpc.max_parallel' must be >= 1"]),
        ("hpc:\n  array_parallel: -2\n", ["'hpc.array_parallel' must be >= 1"]),
        ("hpc:\n  array_parallel: many\n", ["'hpc.array_parallel' must be a number"]),
        ("hpc:\n  partition: 3\n", ["'hpc.partition' must be text"]),
        ("hpc:\n  time: 1:00:00\n", ["'hpc.time' must be text"]),  # YAML 1.1 reads 1:00:00 as 3600
        ("hpc:\n  setup_lines: module load aims\n", ["'hpc.setup_lines' must be a list"]),
        ("hpc:\n  setup_lines: [[a]]\n", ["'hpc.setup_lines[0]' must be one line of text"]),
        ("hpc:\n  sbatch_options: {mem: [1, 2]}\n", ["'hpc.sbatch_options.mem' must be a single value"]),
        ("dft:\n  charge: .nan\n", ["'dft.charge' must be a finite number"]),
        ("dft:\n  default_prodbas_acc: 0\n", ["'dft.default_prodbas_acc' must be > 0"]),
        ("dft:\n  default_max_l_prodbas: -1\n", ["'dft.default_max_l_prodbas' must be >= 0"]),
        ("dft:\n  cube_points: [10, 10]\n", ["'dft.cube_points' must be 3 integers >= 2"]),
        ("dft:\n  cube: 'yes'\n", ["'dft.cube' must be true or false"]),
        ("dft: 3\n", ["'dft' must be a mapping"]),
        ("dft:\n  xc: " + "a;" * 5000 + "\n", ["'dft.xc'", "..."]),
    ],
)
def test_wrong_typed_or_out_of_range_settings(tmp_path, text, needles):
    cfg = tmp_path / "user.yaml"
    cfg.write_text(text)
    line = assert_one_line_error(invoke("run", "scf", "-w", tmp_path, "-c", cfg), *needles)
    assert len(line) < 400  # user values are shown bounded


def test_wrong_typed_override_names_the_key(tmp_path):
    assert_one_line_error(invoke("run", "scf", "-w", tmp_path, "--set", "hpc.ntasks=[1]"), "'hpc.ntasks' must be a number")
    assert_one_line_error(invoke("run", "scf", "-w", tmp_path, "--set", "nodes"), "section.key=value")


def test_wrong_typed_command_line_options(tmp_path):
    r = invoke("import", tmp_path, tmp_path / "out.h5", "--threshold", "abc")
    assert r.exit_code == 2 and "Traceback" not in r.output + r.stderr and "--threshold" in r.stderr
    assert_one_line_error(invoke("import", tmp_path, tmp_path / "out.h5", "--threshold", "-1"), "--threshold")
    assert_one_line_error(invoke("import", tmp_path, tmp_path / "out.h5", "--threshold", "nan"), "--threshold")


# ---- run directories and inputs ----------------------------------------------------------------


def test_missing_run_directories(tmp_path):
    assert_one_line_error(invoke("run", "scf", "-w", tmp_path / "nowhere"), "no run directories")
    assert_one_line_error(invoke("status", "ri", "-w", tmp_path / "nowhere"), "no run directories")
    assert_one_line_error(invoke("import", tmp_path / "nowhere", tmp_path / "out.h5"), "not a directory")
    assert_one_line_error(invoke("prepare", "ri", "-w", tmp_path / "nowhere"), "no SCF run directories")
    assert not (tmp_path / "nowhere").exists()
    assert_one_line_error(invoke("run", "bogus", "-w", tmp_path), "unknown stage")
    assert_one_line_error(invoke("status", "rebuild/a;b", "-w", tmp_path), "rebuild name")
    assert_one_line_error(invoke("prepare", "scf", tmp_path / "none.xyz", "-w", tmp_path / "w"), "structures file not found")


@pytest.mark.parametrize(
    "content",
    [
        b"atom 0.0 zero 0.0 C\n",
        b"atom 0.0 0.0\n",
        b"atom 0.0 0.0 0.0\n",
        b"atom 0.0 0.0 0.0 Xx\n",
        b"lattice_vector 1 0 0\natom 0 0 0 H\n",
        b"# nothing\n",
        b"atom 0.0 0.0 0.0 H\xff\xfe\n",
    ],
)
def test_malformed_geometry_in_is_one_line(ch4_ri_tree, tmp_path, content):
    run = copy_run(ch4_ri_tree / "000000", tmp_path / "ri" / "bad")
    (run / "geometry.in").write_bytes(content)
    r = invoke("import", tmp_path / "ri", tmp_path / "out.h5")
    assert_one_line_error(r, f"{run}/geometry.in: ")
    assert not (tmp_path / "out.h5").exists()  # nothing imported: no dataset


def test_geometry_in_is_a_directory(ch4_ri_tree, tmp_path):
    run = copy_run(ch4_ri_tree / "000000", tmp_path / "ri" / "bad")
    (run / "basis_info.out").unlink()
    (run / "basis_info.out").mkdir()
    assert_one_line_error(invoke("import", tmp_path / "ri", tmp_path / "out.h5"), "basis_info.out")


def test_malformed_scf_geometry_at_prepare_ri(tmp_path):
    work = tmp_path / "w"
    scf = work / "scf" / "000000"
    scf.mkdir(parents=True)
    (scf / "control.in").write_text("xc pbe\n")
    (scf / "aims.out").write_text("Leaving FHI-aims.\nHave a nice day.\n")
    (scf / "D_spin_01_kpt_000001.csc").write_text("x\n")
    (scf / "geometry.in").write_bytes(b"atom 1 2 three H\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"dft:\n  species_defaults: {need(FIXTURES / 'species_defaults' / 'tight')}\n")
    assert_one_line_error(invoke("prepare", "ri", "-w", work, "-c", cfg), f"{scf}/geometry.in", "line 1")


# ---- outputs -------------------------------------------------------------------------------


def test_import_output_in_missing_directory(ch4_ri_tree, tmp_path):
    r = invoke("import", ch4_ri_tree, tmp_path / "missing" / "out.h5")
    assert_one_line_error(r, "does not exist")


def test_import_output_in_read_only_directory(ch4_ri_tree, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    with read_only(locked):
        assert_one_line_error(invoke("import", ch4_ri_tree, locked / "out.h5"), "not writable")
        assert list(locked.iterdir()) == []


def test_import_output_is_a_directory(ch4_ri_tree, tmp_path):
    assert_one_line_error(invoke("import", ch4_ri_tree, tmp_path), "is a directory")


def test_prepare_in_read_only_work_directory(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"dft:\n  species_defaults: {need(FIXTURES / 'species_defaults' / 'tight')}\n")
    with read_only(locked):
        assert_one_line_error(invoke("prepare", "scf", _structures(tmp_path / "s.xyz"), "-w", locked, "-c", cfg))


# ---- SLURM values ----------------------------------------------------------------------------


def _prepared(work: Path, tmp_path: Path, hpc: dict) -> Path:
    """A work directory with one prepared SCF run and a settings file with ``hpc``."""
    cfg = tmp_path / "user.yaml"
    dump({"dft": {"species_defaults": str(need(FIXTURES / "species_defaults" / "tight"))}, "hpc": hpc}, cfg)
    r = invoke("prepare", "scf", _structures(tmp_path / "s.xyz"), "-w", work, "-c", cfg)
    assert r.exit_code == 0, r.output
    return cfg


HOSTILE = "x $(touch PWNED) `touch PWNED` 'q' \"dq\" ; touch PWNED"


@pytest.mark.parametrize(
    "hpc, setting",
    [
        ({"time": "01:00:00\ntouch PWNED"}, "hpc.time"),
        ({"partition": "debug\ntouch PWNED"}, "hpc.partition"),
        ({"account": "me\rtouch PWNED"}, "hpc.account"),
        ({"sbatch_options": {"mem": "1G\ntouch PWNED"}}, "hpc.sbatch_options.mem"),
        ({"sbatch_options": {"mem\nx": "1G"}}, "hpc.sbatch_options"),
        ({"setup_lines": ["module load aims", "true\ntouch PWNED"]}, "hpc.setup_lines[1]"),
        ({"setup_lines": ["export A=1\u2028touch PWNED"]}, "hpc.setup_lines[0]"),
        ({"aims_command": "aims.x\ntouch PWNED"}, "hpc.aims_command"),
    ],
)
def test_newline_in_an_hpc_setting_is_refused(tmp_path, fake_sbatch, hpc, setting):
    cfg = tmp_path / "user.yaml"
    dump({"hpc": {"backend": "slurm", **hpc}}, cfg)
    r = invoke("run", "scf", "-w", tmp_path, "-c", cfg)
    assert_one_line_error(r, f"setting '{setting}", "control character", str(cfg))
    key, value = next(iter(hpc.items()))
    if isinstance(value, str):  # and the same on the command line
        r = invoke("run", "scf", "-w", tmp_path, "--set", "hpc.backend=slurm", "--set", f"hpc.{key}={json.dumps(value)}")
        assert_one_line_error(r, f"setting '{setting}", "control character")
    assert not fake_sbatch.exists()


def test_newline_in_the_work_directory_is_refused_for_slurm(tmp_path, fake_sbatch):
    work = tmp_path / "work\ntouch PWNED"
    cfg = _prepared(work, tmp_path, {"backend": "slurm", "aims_command": standin_command()})
    r = invoke("run", "scf", "-w", work, "-c", cfg)
    assert_one_line_error(r, "run directory path", "control character")
    assert not fake_sbatch.exists() and not (work / "jobs").exists()
    assert not (work / "scf" / "000000" / ".aims-io-job.json").exists()  # the run is left as it was


def test_hostile_names_are_harmless_in_the_job_script(tmp_path, fake_sbatch):
    work = tmp_path / f"work {HOSTILE}"
    aims = f'{shlex.quote(sys.executable)} -c \'import os; open("ran", "w").write(os.getcwd())\' {shlex.quote(HOSTILE)}'
    hpc = {
        "backend": "slurm",
        "aims_command": aims,
        "partition": HOSTILE,
        "account": "a;b`c`",
        "time": "1:00:00 $(touch PWNED)",
        "sbatch_options": {"comment": HOSTILE, "exclusive": True},
        "setup_lines": ["export AIMS_IO_TEST_SETUP='a b'"],
    }
    cfg = _prepared(work, tmp_path, hpc)
    r = invoke("run", "scf", "-w", work, "-c", cfg)
    assert r.exit_code == 0, r.output + r.stderr
    assert "submitted SLURM array 4242" in r.output
    (argv,) = [json.loads(line) for line in fake_sbatch.read_text().splitlines()]
    assert f"--partition={HOSTILE}" in argv and f"--comment={HOSTILE}" in argv and "--exclusive" in argv
    script = Path(argv[-1])
    assert stat.S_IMODE(script.stat().st_mode) == 0o750
    text = script.read_text()
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    commands = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    list_file = script.with_suffix(".list")
    assert commands == [
        "export AIMS_IO_TEST_SETUP='a b'",
        "ulimit -s unlimited 2>/dev/null || true",
        f'run_dir=$(sed -n "${{SLURM_ARRAY_TASK_ID}}p" {shlex.quote(str(list_file))})',
        'cd "$run_dir" || { echo "aims-io: cannot enter run directory $run_dir" >&2; exit 1; }',
        f"{shlex.join(shlex.split(aims))} > aims.out 2> aims.err",
    ]
    assert all(line.startswith("#!") or line.startswith("# ") for line in text.splitlines() if line.startswith("#"))
    # running the script as SLURM would: FHI-aims (here: python) runs in the hostile run directory, nothing else
    run_dir = work / "scf" / "000000"
    env = {**os.environ, "SLURM_ARRAY_TASK_ID": "1"}
    done = subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert (run_dir / "ran").read_text() == str(run_dir.resolve())
    assert not list(tmp_path.rglob("PWNED"))
