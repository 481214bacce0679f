import subprocess
import sys

import ase.io
import numpy as np
import pytest
from typer.testing import CliRunner

from rho_data import open_dataset, open_predictions
from rho_model.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(water_dataset, tmp_path_factory):
    import yaml
    from helpers import SMALL_DESCRIPTOR

    out = tmp_path_factory.mktemp("cli")
    opts = out / "opts.yaml"
    opts.write_text(yaml.safe_dump({"descriptor": dict(SMALL_DESCRIPTOR, cache_dir=str(out / "cache")), "fit": {"alpha": 1e-8}}))
    result = runner.invoke(app, ["train", str(water_dataset), "-o", str(out / "run"), "--options", str(opts)])
    assert result.exit_code == 0, result.output
    return out


def test_version_and_options():
    assert "rho-model" in runner.invoke(app, ["--version"]).output
    out = runner.invoke(app, ["options"]).output
    assert "max_angular" in out and "cg_tol" in out


def test_train_writes_run_and_cache(trained):
    run = trained / "run"
    for name in ("model.pt", "options.yaml", "fit.json", "log.txt", "splits/train.idx", "splits/val.idx"):
        assert (run / name).exists(), name
    assert list((trained / "cache").glob("*/chunk_00000.npz"))


def test_predict_dataset_and_xyz(trained, water_dataset, tmp_path):
    pred = tmp_path / "pred.h5"
    r = runner.invoke(
        app,
        [
            "predict",
            str(trained / "run/model.pt"),
            str(water_dataset),
            "-o",
            str(pred),
            "--indices",
            str(trained / "run/splits/val.idx"),
        ],
    )
    assert r.exit_code == 0, r.output
    ds, p = open_dataset(water_dataset), open_predictions(pred)
    assert p.dataset_id == ds.dataset_id
    val = [int(x) for x in (trained / "run/splits/val.idx").read_text().split() if x.isdigit()]
    assert [p[i].dataset_index for i in range(len(p))] == val
    err = [np.linalg.norm(p[i].coefficients - ds[j].coefficients) / np.linalg.norm(ds[j].coefficients) for i, j in enumerate(val)]
    assert max(err) < 0.1
    xyz = tmp_path / "w.xyz"
    ase.io.write(xyz, [ds[j].to_ase() for j in val])
    r = runner.invoke(app, ["predict", str(trained / "run/model.pt"), str(xyz), "-o", str(tmp_path / "p2.h5")])
    assert r.exit_code == 0, r.output
    p2 = open_predictions(tmp_path / "p2.h5")
    np.testing.assert_allclose(p2[0].coefficients, p[0].coefficients, atol=1e-5)  # xyz rounds positions


def test_export_is_loadable(trained, tmp_path):
    r = runner.invoke(app, ["export", str(trained / "run/model.pt"), "-o", str(tmp_path / "m.pt")])
    assert r.exit_code == 0, r.output
    from rho_model.predict import Predictor

    atoms = ase.Atoms("OHH", positions=[[0, 0, 0.1], [0, 0.75, -0.45], [0, -0.75, -0.47]])
    a = Predictor.load(trained / "run/model.pt").predict([atoms])[0]
    b = Predictor.load(tmp_path / "m.pt").predict([atoms])[0]
    np.testing.assert_array_equal(a, b)
    # the TorchScript network (features -> coefficients) gives the same blocks as the Python model
    import torch

    from rho_data.layout import key_name

    predictor = Predictor.load(tmp_path / "m.pt")
    feats = {key_name(k): torch.as_tensor(v) for k, v in predictor.calc.compute([atoms]).items()}
    scripted = torch.jit.load(str(tmp_path / "m.ts"))
    with torch.no_grad():
        want, got = predictor.model(feats), scripted(feats)
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=0, atol=1e-12)


def test_bad_inputs_give_one_line_errors(trained, water_dataset, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("fit:\n  alhpa: 1\n")
    r = runner.invoke(app, ["train", str(water_dataset), "-o", str(tmp_path / "x"), "--options", str(bad)])
    assert r.exit_code == 1 and "unknown option 'fit.alhpa'" in r.output and "Traceback" not in r.output
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a model at all")
    r = runner.invoke(app, ["predict", str(corrupt), str(water_dataset), "-o", str(tmp_path / "p.h5")])
    assert r.exit_code == 1 and "corrupt.pt" in r.output and "not a readable model file" in r.output
    xyz = tmp_path / "nacl.xyz"
    ase.io.write(xyz, ase.Atoms("NaCl", positions=[[0, 0, 0], [0, 0, 2.4]]))
    r = runner.invoke(app, ["predict", str(trained / "run/model.pt"), str(xyz), "-o", str(tmp_path / "p3.h5")])
    assert r.exit_code == 1 and "not known to the model" in r.output


def test_dataset_with_other_basis_is_refused(trained, tmp_path):
    import helpers
    from helpers import SHELLS, water_geometries, write_dataset

    saved = dict(SHELLS)
    helpers.SHELLS["H"] = [(0, 2.0), (1, 1.0)]
    try:
        other = write_dataset(
            tmp_path / "other.h5", water_geometries(2), lambda n, p: np.zeros(sum(helpers.basis_of(["H", "O"]).atom_sizes(n)))
        )
    finally:
        helpers.SHELLS.clear()
        helpers.SHELLS.update(saved)
    r = runner.invoke(app, ["predict", str(trained / "run/model.pt"), str(other), "-o", str(tmp_path / "p.h5")])
    assert r.exit_code == 1 and "basis of H" in r.output


def test_cli_import_leaves_heavy_modules_unloaded():
    """`rho-train --help` / `--version` import only the CLI: torch, metatensor and featomic load inside commands."""
    code = (
        "import sys, rho_model.cli; "
        "print(sorted(m for m in ('torch', 'metatensor', 'metatensor.torch', 'featomic', 'ase') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    out = subprocess.run([sys.executable, "-m", "rho_model.cli", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("rho-model ")


def test_config_files_layer_in_order_and_old_spellings_still_work(water_dataset, tmp_path):
    """-c/--config repeatable (a later file wins, --set last); --out and --options are hidden old spellings."""
    import yaml
    from helpers import SMALL_DESCRIPTOR

    from rho_model.options import load_options

    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(yaml.safe_dump({"descriptor": dict(SMALL_DESCRIPTOR, cache_dir=None), "fit": {"alpha": 1e-8}, "seed": 3}))
    second.write_text(yaml.safe_dump({"fit": {"alpha": 1e-6}}))
    opts = load_options([first, second], {"seed": 5})
    assert opts["fit"]["alpha"] == 1e-6 and opts["seed"] == 5 and opts["descriptor"]["max_radial"] == 2
    assert load_options([second, first])["fit"]["alpha"] == 1e-8
    r = runner.invoke(app, ["train", str(water_dataset), "--output", str(tmp_path / "run"), "-c", str(first), "-c", str(second)])
    assert r.exit_code == 0, r.output
    saved = yaml.safe_load((tmp_path / "run/options.yaml").read_text())
    assert saved["fit"]["alpha"] == 1e-6 and saved["seed"] == 3
    old = runner.invoke(app, ["train", str(water_dataset), "--out", str(tmp_path / "old"), "--options", str(first)])
    assert old.exit_code == 0, old.output
    assert yaml.safe_load((tmp_path / "old/options.yaml").read_text())["fit"]["alpha"] == 1e-8
    help_text = runner.invoke(app, ["train", "--help"]).output
    assert "--config" in help_text and "--output" in help_text
    assert "--options" not in help_text and "--out " not in help_text and "--trust-model-code" not in help_text


def test_submit_passes_every_config_file_in_order(water_dataset, tmp_path):
    import shlex

    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("seed: 1\n")
    second.write_text("seed: 2\n")
    args = ["submit", str(water_dataset), "--out", str(tmp_path / "job"), "-c", str(first), "--options", str(second)]
    r = runner.invoke(app, [*args, "--script-only"])
    assert r.exit_code == 0, r.output
    text = (tmp_path / "job/train.sbatch").read_text()
    words = shlex.split(next(line for line in text.splitlines() if "rho_model.cli" in line))
    configs = [words[i + 1] for i, w in enumerate(words) if w == "-c"]
    assert configs == [str(first.resolve()), str(second.resolve())]
    assert "--options" not in words


def test_options_output_has_a_comment_per_option_and_reads_back():
    import yaml

    from rho_data.settings import leaf_comments
    from rho_model.options import DEFAULTS

    out = runner.invoke(app, ["options"]).output
    assert yaml.safe_load(out) == DEFAULTS
    comments = leaf_comments(out)
    assert "data.target" in comments and all(comments.values())
