from pathlib import Path

import ase
import featomic
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from rho_data.layout import BatchLayout
from rho_model.predict import Predictor

EXAMPLE_NET = Path(__file__).resolve().parents[1] / "examples" / "net.py"
NET_FILES: dict[Path, Path] = {}  # model file -> the net.py its python network needs


def _load(path: Path, **kwargs) -> Predictor:
    return Predictor.load(path, net_file=NET_FILES.get(path), **kwargs)


def real_wigner_d(rotation: np.ndarray, lmax: int) -> dict[int, np.ndarray]:
    """D^l in featomic's real-harmonic convention, fitted from Y(R r) = D Y(r) with Y taken from
    featomic's spherical expansion of one neighbour (proportional to Y_lm of its direction)."""
    se = featomic.SphericalExpansion(
        cutoff={"radius": 3.0, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
        density={"type": "Gaussian", "width": 0.3},
        basis={"type": "TensorProduct", "max_angular": lmax, "radial": {"type": "Gto", "max_radial": 1}},
    )
    dirs = np.random.default_rng(5).normal(size=(40, 3))
    dirs /= np.linalg.norm(dirs, axis=1)[:, None]

    def harmonics(vectors):
        frames = [ase.Atoms("OH", positions=[[0, 0, 0], 1.2 * v]) for v in vectors]
        t = se.compute(frames)
        out = {}
        for l in range(lmax + 1):
            b = t.block({"o3_lambda": l, "center_type": 8, "neighbor_type": 1})
            out[l] = np.asarray(b.values)[:, :, 0]
        return out

    y, yr = harmonics(dirs), harmonics(dirs @ rotation.T)
    return {l: np.linalg.lstsq(y[l], yr[l], rcond=None)[0].T for l in range(lmax + 1)}


@pytest.fixture(scope="module")
def linear_model(water_dataset, tmp_path_factory):
    from helpers import SMALL_DESCRIPTOR

    from rho_model.options import load_options
    from rho_model.train import run_training

    out = tmp_path_factory.mktemp("eq")
    desc = dict(SMALL_DESCRIPTOR, cache_dir=str(out / "cache"))
    opts = load_options(overrides={"descriptor": desc, "fit": {"alpha": 1e-8}})
    run_training(opts, water_dataset, out / "run", echo=None)
    return out / "run" / "model.pt"


def _water(seed):
    rng = np.random.default_rng(seed)
    return ase.Atoms("OHH", positions=[[0, 0, 0.12], [0, 0.76, -0.47], [0, -0.76, -0.47]] + rng.normal(scale=0.1, size=(3, 3)))


def test_predictions_rotate_with_wigner_d(linear_model):
    predictor = _load(linear_model)
    atoms = _water(1)
    rot = Rotation.random(random_state=7).as_matrix()
    rotated = atoms.copy()
    rotated.positions = atoms.positions @ rot.T
    c, cr = predictor.predict([atoms, rotated])
    layout = BatchLayout.build(predictor.basis, [atoms.numbers])
    d = real_wigner_d(rot, 2)
    blocks, blocks_r = layout.to_blocks(c), layout.to_blocks(cr)
    for key, x in blocks.items():
        expected = np.einsum("mk,akn->amn", d[key[0]], x)
        np.testing.assert_allclose(blocks_r[key], expected, atol=1e-10 * max(1.0, np.abs(x).max()))
    assert any(k[0] > 0 and np.abs(v).max() > 1e-3 for k, v in blocks.items())  # the test is not vacuous


def test_prediction_in_pieces_equals_one_piece(linear_model):
    from helpers import cluster

    atoms = cluster(12, seed=4)
    whole = _load(linear_model, max_atoms=10_000).predict([_water(1), atoms])
    pieces = _load(linear_model, max_atoms=8).predict([_water(1), atoms])
    for a, b in zip(whole, pieces):
        np.testing.assert_allclose(b, a, atol=1e-12 * np.abs(a).max())


def test_permutation_and_translation_invariance(linear_model):
    predictor = _load(linear_model)
    atoms = _water(2)
    perm = [0, 2, 1]
    permuted = atoms[perm]
    shifted = atoms.copy()
    shifted.positions += np.array([3.1, -2.0, 0.7])
    c, cp, cs = predictor.predict([atoms, permuted, shifted])
    layout = BatchLayout.build(predictor.basis, [atoms.numbers])
    b, bp = layout.to_blocks(c), layout.to_blocks(cp)
    for key in b:
        rows = list(np.flatnonzero(atoms.numbers == key[1]))
        rows_permuted = np.flatnonzero(permuted.numbers == key[1])  # permuted atom i is original atom perm[i]
        np.testing.assert_allclose(bp[key], b[key][[rows.index(perm[i]) for i in rows_permuted]], atol=1e-10)
    np.testing.assert_allclose(cs, c, atol=1e-10)


@pytest.fixture(scope="module", params=["deep", "python"])
def nonlinear_model(request, water_dataset, tmp_path_factory):
    """A YAML-described deep model and the shipped example user net.py, briefly trained."""
    from helpers import SMALL_DESCRIPTOR

    from rho_model.options import load_options
    from rho_model.train import run_training

    out = tmp_path_factory.mktemp(request.param)
    model = (
        {
            "type": "deep",
            "layers": [
                {"linear": 8},
                {"layer_norm": True},
                {"activation": "silu"},
                {"linear": 8},
                {"invariant_activation": "tanh"},
            ],
        }
        if request.param == "deep"
        else {"type": "python", "net_file": str(EXAMPLE_NET)}
    )
    opts = load_options(
        overrides={
            "descriptor": dict(SMALL_DESCRIPTOR, cache_dir=str(out / "cache")),
            "model": model,
            "fit": {"method": "gradient"},
            "training": {"epochs": 2, "batch_size": 4, "lr": 1e-2},
        }
    )
    run_training(opts, water_dataset, out / "run", echo=None)
    if request.param == "python":
        NET_FILES[out / "run" / "model.pt"] = EXAMPLE_NET
    return out / "run" / "model.pt"


def test_nonlinear_models_rotate_with_wigner_d(nonlinear_model):
    test_predictions_rotate_with_wigner_d(nonlinear_model)
    test_permutation_and_translation_invariance(nonlinear_model)


def test_model_head_sees_tensormaps(nonlinear_model):
    from rho_model.model_file import load_model
    from rho_model.netcode import is_tensormap

    model = load_model(nonlinear_model, net_file=NET_FILES.get(nonlinear_model))
    seen = []
    model.head.register_forward_hook(lambda module, args, out: seen.append((args[0], out)))
    Predictor(model).predict([_water(3)])
    tin, tout = seen[0]
    assert is_tensormap(tin) and is_tensormap(tout)
    assert tin.keys.names == ["o3_lambda", "o3_sigma", "center_type"] and tout.keys == tin.keys
    assert tin.block(0).samples.names == ["system", "atom"] and tout.block(0).properties.names == ["n"]
    # a structure without oxygen: the O keys are left out of the head's input, no warnings
    h2 = Predictor(model).predict([ase.Atoms("HH", positions=[[0, 0, 0], [0, 0, 0.74]])])[0]
    assert np.all(np.isfinite(h2)) and np.abs(h2).max() > 0
