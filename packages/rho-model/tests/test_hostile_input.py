"""Hostile and careless input to ``rho-train``: one line on stderr, a non-zero exit, no traceback, nothing lost.

Covers: model files that carry code, shell injection into job scripts, replacing a run or a
predictions file, non-finite data and results, split files of another dataset, a stale
descriptor cache, out-of-range and mistyped options, unreadable option files and outputs.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
from pathlib import Path

import ase
import ase.io
import h5py
import numpy as np
import pytest
import torch
import yaml
from helpers import SMALL_DESCRIPTOR, water_geometries, write_dataset
from typer.testing import CliRunner

from rho_data import RhoDataError, RhoWriter, open_dataset, open_predictions
from rho_data.split import write_index_file
from rho_model import RhoModelError
from rho_model.cli import app
from rho_model.slurm import JobSpec, job_script

runner = CliRunner()
EXAMPLE_NET = Path(__file__).resolve().parents[1] / "examples" / "net.py"


def fails(args: list[str], *, lines: int | None = 1) -> str:
    """Run the CLI; it must exit non-zero with ``lines`` lines on stderr and no traceback. Returns stderr."""
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code not in (0, None), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    err = result.stderr.strip()
    if lines is not None:
        assert len(err.splitlines()) == lines, err
    return err


def succeeds(args: list[str]) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def options_file(folder: Path, **sections) -> Path:
    opts = {"descriptor": dict(SMALL_DESCRIPTOR, cache_dir=str(folder / "cache")), "fit": {"alpha": 1e-8}}
    for name, values in sections.items():
        opts.setdefault(name, {}).update(values)
    path = folder / "opts.yaml"
    path.write_text(yaml.safe_dump(opts))
    return path


@pytest.fixture(scope="module")
def run(water_dataset, tmp_path_factory) -> Path:
    """A trained linear run (fixed alpha: no CV, a few seconds)."""
    folder = tmp_path_factory.mktemp("hostile")
    succeeds(["train", water_dataset, "-o", folder / "run", "--options", options_file(folder)])
    return folder / "run"


# ---- model files never run code ------------------------------------------------------------


def _model_with_code(run: Path, path: Path, marker: Path) -> Path:
    """The run's model relabelled as a python network whose stored net.py writes ``marker``."""
    import json

    payload = torch.load(run / "model.pt", weights_only=True)
    config = json.loads(payload["config"])
    config["model"]["type"] = "python"
    config["net_source"] = f"with open({str(marker)!r}, 'w') as f:\n    f.write('ran')\nraise RuntimeError('stored code ran')\n"
    payload["config"] = json.dumps(config)
    torch.save(payload, path)
    return path


def test_model_file_code_is_never_run_silently(run, water_dataset, tmp_path):
    marker = tmp_path / "marker"
    model = _model_with_code(run, tmp_path / "evil.pt", marker)
    for args in (
        ["predict", model, water_dataset, "-o", tmp_path / "p.h5"],
        ["export", model, "-o", tmp_path / "e.pt"],
        ["train", water_dataset, "-o", tmp_path / "ft", "--init", model, "--set", "fit.method=gradient"],
    ):
        err = fails(args)
        assert "--net FILE" in err and "show-net" in err, err
        assert not marker.exists()
    assert not (tmp_path / "p.h5").exists() and not (tmp_path / "e.pt").exists() and not (tmp_path / "ft").exists()


def test_stored_code_is_written_out_for_review_never_run(run, water_dataset, tmp_path):
    import json

    marker = tmp_path / "marker"
    model = _model_with_code(run, tmp_path / "evil.pt", marker)
    stored = json.loads(torch.load(model, weights_only=True)["config"])["net_source"]
    # the option that once ran the stored code is gone: a usage error, nothing runs
    err = fails(["predict", model, water_dataset, "-o", tmp_path / "p.h5", "--trust-model-code"])
    assert "--trust-model-code" in err
    assert stored.strip() in succeeds(["show-net", model])
    out = succeeds(["show-net", model, "-o", tmp_path / "net.py"])
    assert (tmp_path / "net.py").read_text() == stored and "--net" in out
    assert "exists" in fails(["show-net", model, "-o", tmp_path / "net.py"])  # nothing replaced without --overwrite
    assert not marker.exists() and not (tmp_path / "p.h5").exists()
    # the reviewed file is what runs, and only because the user named it
    err = fails(["predict", model, water_dataset, "-o", tmp_path / "p.h5", "--net", tmp_path / "net.py"])
    assert marker.exists() and "stored code ran" in err
    assert "not python code" in fails(["show-net", run / "model.pt"])


def test_python_network_loads_from_the_named_net_file(water_dataset, tmp_path):
    from rho_model.model_file import load_model
    from rho_model.options import load_options
    from rho_model.train import run_training

    opts = load_options(
        overrides={
            "descriptor": dict(SMALL_DESCRIPTOR, cache_dir=None),
            "model": {"type": "python", "net_file": str(EXAMPLE_NET)},
            "fit": {"method": "gradient"},
            "training": {"epochs": 1, "batch_size": 8},
        }
    )
    run_training(opts, water_dataset, tmp_path / "run", echo=None)
    with pytest.raises(RhoModelError, match="--net FILE"):
        load_model(tmp_path / "run/model.pt")
    assert load_model(tmp_path / "run/model.pt", net_file=EXAMPLE_NET).config["model"]["type"] == "python"


def test_pickled_code_in_a_model_file_is_refused(water_dataset, tmp_path):
    marker = tmp_path / "marker"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    torch.save({"format": "rho-model", "version": 1, "config": Evil()}, tmp_path / "pickle.pt")
    err = fails(["predict", tmp_path / "pickle.pt", water_dataset, "-o", tmp_path / "p.h5"])
    assert "not a readable model file" in err
    assert not marker.exists()


# ---- job scripts ---------------------------------------------------------------------------

HOSTILE = ["$(touch PWNED)", "`touch PWNED`", 'it\'s "quoted"', "a;touch PWNED", "two words", "x|touch PWNED&"]


def _command_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _check_script(text: str, spec: JobSpec) -> list[str]:
    """Valid shell, only the four expected command lines, each #SBATCH value one shell word; the srun words."""
    subprocess.run(["bash", "-n"], input=text, text=True, check=True)
    commands = _command_lines(text)
    assert len(commands) == 4, commands
    assert commands[0] == "set -euo pipefail" and commands[1].startswith("export OMP_NUM_THREADS=")
    assert commands[2].startswith("head_node=$(scontrol") and commands[3].startswith("srun ")
    for line in text.splitlines()[1:]:
        if line.startswith("#SBATCH "):
            assert len(shlex.split(line[len("#SBATCH ") :])) == 1, line
    words = shlex.split(commands[3])
    train = words[words.index("-m") :]
    assert train[:4] == ["-m", "rho_model.cli", "train", str(spec.dataset.resolve())]
    assert train[train.index("-o") + 1] == str(spec.out.resolve())
    return words


@pytest.mark.parametrize("value", HOSTILE)
def test_job_script_quotes_hostile_values(tmp_path, value):
    spec = JobSpec(
        tmp_path / f"data {value}.h5",
        tmp_path / f"run {value}",
        config_files=[tmp_path / f"o {value}.yaml"],
        overrides=[f"data.seed={value}"],
        time=value,
        partition=value,
        job_name=value,
        sbatch_args=[f"--comment={value}"],
    )
    text = job_script(spec)
    words = _check_script(text, spec)
    assert words[words.index("--set") + 1] == f"data.seed={value}"
    assert words[words.index("-c") + 1] == str(spec.config_files[0].resolve())
    # the script really runs only srun (stubbed), with the hostile words as plain arguments
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text('#!/bin/bash\nprintf "%s\\n" "$@" > "$SRUN_ARGS"\n')
    (bin_dir / "scontrol").write_text("#!/bin/bash\necho node1\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", SRUN_ARGS=str(tmp_path / "args"))
    env.update(SLURM_NNODES="1", SLURM_JOB_ID="7", SLURM_JOB_NODELIST="node1")
    subprocess.run(["bash", "-c", text], cwd=tmp_path, env=env, check=True, capture_output=True)
    assert not (tmp_path / "PWNED").exists()
    ran = (tmp_path / "args").read_text().splitlines()
    assert ran[ran.index("-m") :] == words[words.index("-m") :]


@pytest.mark.parametrize(
    "setting",
    ["--time", "--partition", "--sbatch-arg", "-o", "--set", "--options"],
)
def test_newline_in_a_job_setting_is_refused(water_dataset, tmp_path, setting):
    hostile = "x\ntouch PWNED"
    out = tmp_path / "run"
    args = ["submit", water_dataset, "-o", out, "--script-only"]
    if setting == "-o":
        out = tmp_path / hostile
        args[3] = out
    elif setting == "--set":
        args += ["--set", f"data.train={hostile}"]
    elif setting == "--options":
        opts = tmp_path / hostile
        opts.write_text("{}\n")
        args += ["--options", opts]
    else:
        args += [setting, hostile]
    err = fails(args)
    assert "control character" in err and "'\\n'" in err, err
    assert not out.exists()  # refused before anything was written
    assert not (tmp_path / "PWNED").exists()


# ---- never replace or truncate a result -------------------------------------------------------


def test_train_refuses_an_existing_run_without_overwrite(run, water_dataset, tmp_path):
    before = (run / "model.pt").read_bytes()
    err = fails(["train", water_dataset, "-o", run, "--options", options_file(tmp_path)])
    assert "already holds a run" in err and "--overwrite" in err
    assert (run / "model.pt").read_bytes() == before
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    succeeds(["train", water_dataset, "-o", copy, "--options", options_file(tmp_path, fit={"alpha": 1e-6}), "--overwrite"])
    assert (copy / "model.pt").read_bytes() != before


def test_failed_predict_overwrite_keeps_the_old_file(run, water_dataset, tmp_path):
    ds = open_dataset(water_dataset)
    waters = [ds[i].to_ase() for i in range(4)]
    ds.close()
    good, bad = tmp_path / "good.xyz", tmp_path / "bad.xyz"
    ase.io.write(good, waters)
    ase.io.write(bad, waters[:2] + [ase.Atoms("NaCl", positions=[[0, 0, 0], [0, 0, 2.4]])])  # fails at the third
    out = tmp_path / "p.h5"
    succeeds(["predict", run / "model.pt", good, "-o", out])
    err = fails(["predict", run / "model.pt", bad, "-o", out, "--overwrite", "--batch-size", "1"])
    assert "not known to the model" in err
    with open_predictions(out) as p:
        assert len(p) == 4
    assert sorted(f.name for f in tmp_path.iterdir()) == ["bad.xyz", "good.xyz", "p.h5"]  # no temporary left
    fails(["predict", run / "model.pt", good, "-o", out])  # exists, no --overwrite


def test_every_writer_leaves_no_temporary(run):
    names = [p.name for p in run.rglob("*")]
    assert not [n for n in names if n.endswith(".tmp") or n.endswith(".tmp.npz")], names


# ---- non-finite data and results -----------------------------------------------------------


@pytest.mark.parametrize("column", ["coefficients", "overlap_values"])
def test_non_finite_training_data_is_refused(water_dataset, tmp_path, column):
    data = tmp_path / "data.h5"
    shutil.copy(water_dataset, data)
    with open_dataset(data) as ds:  # first row of structure 5 in the column's ragged segment
        segment = ds.store.columns[column].segment
        start = int(ds.store.index_row(5)[2 * ds.store.segments.index(segment)])
    with h5py.File(data, "r+") as h5:
        h5[f"structures/{column}"][start] = np.nan if column == "coefficients" else np.inf
    opts = options_file(tmp_path, data={"fractions": [1.0, 0.0, 0.0]})
    err = fails(["train", data, "-o", tmp_path / "run", "--options", opts])
    assert "structure 5" in err and "non-finite" in err, err
    assert not (tmp_path / "run/model.pt").exists()


def test_non_finite_weights_are_refused(run, water_dataset, tmp_path):
    payload = torch.load(run / "model.pt", weights_only=True)
    name = next(k for k in payload["state_dict"] if k.endswith("weight"))
    payload["state_dict"][name] = payload["state_dict"][name] * float("nan")
    torch.save(payload, tmp_path / "nan.pt")
    err = fails(["predict", tmp_path / "nan.pt", water_dataset, "-o", tmp_path / "p.h5"])
    assert "non-finite" in err and "structure" in err
    assert not (tmp_path / "p.h5").exists()
    err = fails(["export", tmp_path / "nan.pt", "-o", tmp_path / "e.pt"])
    assert "non-finite" in err and not (tmp_path / "e.pt").exists()


# ---- split files ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def other_dataset(water_target, tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("other") / "other.h5", water_geometries(4, seed=9), water_target)


def test_split_files_carry_the_dataset_id(run, water_dataset):
    with open_dataset(water_dataset) as ds:
        assert (run / "splits/train.idx").read_text().startswith(f"# dataset_id: {ds.dataset_id}\n")


def test_split_of_another_dataset_is_refused(run, water_dataset, other_dataset, tmp_path):
    with open_dataset(other_dataset) as ds:
        foreign = tmp_path / "foreign.idx"
        write_index_file(foreign, np.arange(2), dataset_id=ds.dataset_id)
    opts = options_file(tmp_path)
    err = fails(["train", water_dataset, "-o", tmp_path / "r", "--options", opts, "--set", f"data.train={foreign}"])
    assert "is a split of dataset" in err
    err = fails(["predict", run / "model.pt", water_dataset, "--indices", foreign, "-o", tmp_path / "p.h5"])
    assert "is a split of dataset" in err
    # rho-train's own split of the water dataset is refused for the other dataset
    err = fails(["predict", run / "model.pt", other_dataset, "--indices", run / "splits/val.idx", "-o", tmp_path / "p.h5"])
    assert "is a split of dataset" in err


@pytest.mark.parametrize("content", ["0\nabc\n", "0\n999\n", "-1\n"])
def test_bad_index_values(run, water_dataset, tmp_path, content):
    bad = tmp_path / "bad.idx"
    bad.write_text(content)
    fails(["predict", run / "model.pt", water_dataset, "--indices", bad, "-o", tmp_path / "p.h5"])
    fails(["train", water_dataset, "-o", tmp_path / "r", "--options", options_file(tmp_path), "--set", f"data.train={bad}"])
    fails(["predict", run / "model.pt", water_dataset, "--indices", tmp_path / "missing.idx", "-o", tmp_path / "p.h5"])


# ---- descriptor cache ----------------------------------------------------------------------


def test_cache_is_not_stale_after_structures_are_appended(water_dataset, water_target, tmp_path):
    data = write_dataset(tmp_path / "grow.h5", water_geometries(6, seed=4), water_target)
    opts = options_file(tmp_path, data={"fractions": [1.0, 0.0, 0.0]})
    succeeds(["train", data, "-o", tmp_path / "a", "--options", opts])
    with open_dataset(water_dataset) as src:
        w = RhoWriter(data)
        for i in range(4):
            w.append(src[i])
        w.close()
    succeeds(["train", data, "-o", tmp_path / "b", "--options", opts])
    assert len(list((tmp_path / "cache").glob("*/chunk_00000.npz"))) == 2
    from rho_model.predict import Predictor

    with open_dataset(data) as ds:
        pred = Predictor.load(tmp_path / "b/model.pt").predict([ds[8].to_ase()])[0]
        ref = ds[8].coefficients
    assert np.linalg.norm(pred - ref) < 0.1 * np.linalg.norm(ref)


# ---- options -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("descriptor.cutoff=0", "descriptor.cutoff"),
        ("descriptor.cutoff=-2", "descriptor.cutoff"),
        ("descriptor.cutoff=abc", "descriptor.cutoff"),
        ("descriptor.cutoff_width=0", "descriptor.cutoff_width"),
        ("descriptor.density_width=-0.1", "descriptor.density_width"),
        ("descriptor.max_radial=-1", "descriptor.max_radial"),
        ("descriptor.max_angular=2.5", "descriptor.max_angular"),
        ("training.lr=0", "training.lr"),
        ("training.lr=fast", "training.lr"),
        ("training.epochs=-1", "training.epochs"),
        ("training.batch_size=0", "training.batch_size"),
        ("fit.alphas=[]", "fit.alphas"),
        ("fit.alphas=[1e-8, -1]", "fit.alphas[1]"),
        ("fit.alphas=[.nan]", "fit.alphas[0]"),
        ("fit.alpha=.inf", "fit.alpha"),
        ("fit.cg_tol=1", "fit.cg_tol"),
        ("fit.cv_tol=0", "fit.cv_tol"),
        ("fit.cv_folds=1", "fit.cv_folds"),
        ("model.baseline=maybe", "model.baseline"),
        ("data.fractions=[0.9, 0.9, 0]", "data.fractions"),
        ("seed=-3", "seed"),
        ("device=gpu", "device"),
    ],
)
def test_bad_option_values_name_the_key(water_dataset, tmp_path, override, key):
    err = fails(["train", water_dataset, "-o", tmp_path / "r", "--set", override])
    assert f"{key} must be" in err, err
    assert not (tmp_path / "r").exists()


def test_bad_option_files(water_dataset, tmp_path):
    cases = {
        "latin1.yaml": b"fit:\n  alpha: 1\n# caf\xe9\n",
        "wrongtype.yaml": b"descriptor:\n  max_radial: many\n",
        "bomb.yaml": b"a: &a [x, x, x]\nb: &b [*a, *a, *a]\nfit:\n  alphas: [*b, *b]\n",
        "list.yaml": b"- 1\n- 2\n",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        err = fails(["train", water_dataset, "-o", tmp_path / "r", "--options", tmp_path / name])
        assert name in err, err
    (tmp_path / "dir.yaml").mkdir()
    assert "is a directory" in fails(["train", water_dataset, "-o", tmp_path / "r", "--options", tmp_path / "dir.yaml"])
    fails(["train", water_dataset, "-o", tmp_path / "r", "--options", tmp_path / "missing.yaml"])
    assert not (tmp_path / "r").exists()


def test_string_numbers_from_yaml_are_read_as_numbers(tmp_path):
    from rho_model.options import load_options

    (tmp_path / "o.yaml").write_text("fit:\n  alpha: 1e-8\n  alphas: [1e-9, 1e-7]\n")
    opts = load_options(tmp_path / "o.yaml")
    assert opts["fit"]["alpha"] == 1e-8 and opts["fit"]["alphas"] == [1e-9, 1e-7]


# ---- outputs -------------------------------------------------------------------------------


def test_outputs_in_missing_or_read_only_folders(run, water_dataset, tmp_path):
    missing = tmp_path / "nowhere" / "p.h5"
    assert "does not exist" in fails(["predict", run / "model.pt", water_dataset, "-o", missing])
    assert "does not exist" in fails(["export", run / "model.pt", "-o", tmp_path / "nowhere" / "e.pt"])
    assert "is a directory" in fails(["predict", run / "model.pt", water_dataset, "-o", tmp_path])
    if os.geteuid() == 0:
        return  # root writes into read-only folders
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        assert "not writable" in fails(["predict", run / "model.pt", water_dataset, "-o", locked / "p.h5"])
        fails(["train", water_dataset, "-o", locked / "run", "--options", options_file(tmp_path)])
    finally:
        locked.chmod(stat.S_IRWXU)


def test_errors_are_rho_data_errors():
    assert issubclass(RhoModelError, RhoDataError) and issubclass(RhoModelError, ValueError)
