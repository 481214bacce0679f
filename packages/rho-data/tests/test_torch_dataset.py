"""rho_data.torch_dataset: items, blocks <-> flat, the overlap loss, collate, the example script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rho_data import RhoDataError, open_dataset  # noqa: E402
from rho_data.split import write_index_file  # noqa: E402
from rho_data.torch_dataset import (  # noqa: E402
    RhoTorchDataset,
    TorchOverlap,
    batch_overlap_loss,
    blocks_to_flat,
    collate,
    flat_to_blocks,
    overlap_loss,
)

EXAMPLE = Path(__file__).parents[1] / "examples" / "torch_dataset.py"


def test_item_shapes(dataset_path, basis, structures):
    data = RhoTorchDataset(dataset_path)
    assert len(data) == len(structures)
    item, s = data[2], structures[2]
    assert item["numbers"].dtype == torch.int64 and item["numbers"].tolist() == s.numbers.tolist()
    assert item["positions"].shape == (s.n_atoms, 3) and item["positions"].dtype == torch.float64
    assert item["cell"].shape == (3, 3) and item["pbc"].shape == (3,)
    assert torch.equal(item["coefficients"], torch.as_tensor(s.coefficients))
    assert torch.equal(item["projections"], torch.as_tensor(s.projections))
    assert torch.equal(item["overlap"].pairs, torch.as_tensor(s.overlap.pairs))
    assert torch.equal(item["overlap"].values, torch.as_tensor(s.overlap.values))
    for z in basis.symbols:
        element = basis[z]
        for l, n in enumerate(element.n_radial):
            name = f"l{l}_z{element.atomic_number}"
            count = int((s.numbers == element.atomic_number).sum())
            assert item["blocks"][name].shape == (count, 2 * l + 1, n) == (count, *data.key_shapes[name])
    # the block of one atom holds its coefficients in canonical order: l -> n -> m
    first_h = int(np.flatnonzero(s.numbers == 1)[0]) if (s.numbers == 1).any() else None
    if first_h is not None:
        start = int(basis.atom_sizes(s.numbers)[:first_h].sum())
        row = int((s.numbers[:first_h] == 1).sum())
        n0 = basis["H"].n_radial[0]
        assert item["blocks"]["l1_z1"][row, :, 0].tolist() == s.coefficients[start + n0 : start + n0 + 3].tolist()


def test_blocks_to_flat_round_trip_is_exact(dataset_path, structures):
    data = RhoTorchDataset(dataset_path)
    for item, s in zip(data, structures):
        flat = blocks_to_flat(item["blocks"], item["block_index"], len(item["coefficients"]))
        assert torch.equal(flat, torch.as_tensor(s.coefficients))
        assert all(torch.equal(a, b) for a, b in zip(flat_to_blocks(flat, item["block_index"]).values(), item["blocks"].values()))


def test_overlap_loss_equals_the_numpy_quadratic_form(dataset_path, structures):
    data = RhoTorchDataset(dataset_path)
    rng = np.random.default_rng(1)
    for item, s in zip(data, structures):
        pred = s.coefficients + rng.normal(size=len(s.coefficients))
        expected = s.overlap.quadratic(pred - s.coefficients)
        got = overlap_loss(torch.as_tensor(pred), item["coefficients"], item["overlap"])
        assert abs(float(got) - expected) <= 1e-12 * abs(expected)
        v = torch.as_tensor(pred)
        assert np.allclose(item["overlap"].matvec(v).numpy(), s.overlap.matvec(pred), rtol=1e-12, atol=1e-12)
    back = TorchOverlap.from_numpy(structures[0].overlap).to_numpy()
    assert np.array_equal(back.pairs, structures[0].overlap.pairs) and np.array_equal(back.values, structures[0].overlap.values)


def test_overlap_loss_has_a_gradient_and_checks_shapes(dataset_path):
    item = RhoTorchDataset(dataset_path)[0]
    pred = torch.zeros_like(item["coefficients"], requires_grad=True)
    overlap_loss(pred, item["coefficients"], item["overlap"]).backward()
    expected = -2 * item["overlap"].matvec(item["coefficients"])  # d/dp (p - d)^T S (p - d) at p = 0
    assert torch.allclose(pred.grad, expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(RhoDataError, match="prediction has shape"):
        overlap_loss(pred[:-1], item["coefficients"], item["overlap"])


def test_collate_three_structures(dataset_path, structures):
    data = RhoTorchDataset(dataset_path, [0, 2, 4])
    items = [data[k] for k in range(3)]
    batch = collate(items)
    chosen = [structures[i] for i in (0, 2, 4)]
    atoms = [s.n_atoms for s in chosen]
    assert batch["index"].tolist() == [0, 2, 4] and batch["labels"] == ["mol0", "mol2", "mol4"]
    assert batch["numbers"].shape == (sum(atoms),) and batch["positions"].shape == (sum(atoms), 3)
    assert batch["system"].tolist() == [k for k, n in enumerate(atoms) for _ in range(n)]
    assert batch["cell"].shape == (3, 3, 3) and len(batch["overlaps"]) == 3
    assert torch.equal(batch["coefficients"], torch.as_tensor(np.concatenate([s.coefficients for s in chosen])))
    size = len(batch["coefficients"])
    assert torch.equal(blocks_to_flat(batch["blocks"], batch["block_index"], size), batch["coefficients"])
    for name, block in batch["blocks"].items():
        assert len(block) == len(batch["block_atoms"][name]) == len(batch["block_system"][name])
        z = int(name.split("_z")[1])
        assert (batch["numbers"][batch["block_atoms"][name]] == z).all()
        assert torch.equal(batch["system"][batch["block_atoms"][name]], batch["block_system"][name])
    expected = sum(s.overlap.quadratic(s.coefficients) for s in chosen)
    got = batch_overlap_loss(torch.zeros(size, dtype=torch.float64), batch)
    assert abs(float(got) - expected) <= 1e-12 * expected


def test_indices_from_an_index_file_and_flat_keys(tmp_path, dataset_path):
    with open_dataset(dataset_path) as f:
        dataset_id = f.dataset_id
    write_index_file(tmp_path / "val.idx", np.array([3, 1]), dataset_id=dataset_id)
    data = RhoTorchDataset(dataset_path, tmp_path / "val.idx", keys="flat", dtype=torch.float32)
    assert [data[k]["index"] for k in range(2)] == [3, 1] and "blocks" not in data[0]
    assert data[0]["coefficients"].dtype == torch.float32
    write_index_file(tmp_path / "other.idx", np.array([0]), dataset_id="another")
    with pytest.raises(RhoDataError, match="not of dataset"):
        RhoTorchDataset(dataset_path, tmp_path / "other.idx")
    with pytest.raises(RhoDataError, match="indices must lie in"):
        RhoTorchDataset(dataset_path, [7])
    with pytest.raises(RhoDataError, match="keys must be"):
        RhoTorchDataset(dataset_path, keys="tuples")


def test_works_with_a_dataloader_and_workers(dataset_path):
    data = RhoTorchDataset(dataset_path)
    loader = torch.utils.data.DataLoader(data, batch_size=2, collate_fn=collate, num_workers=1)
    assert [b["index"].tolist() for b in loader] == [[0, 1], [2, 3], [4]]


def test_example_trains_and_lowers_the_loss(dataset_path):
    done = subprocess.run([sys.executable, str(EXAMPLE), str(dataset_path), "10"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    first, last = (float(line.split()[-1]) for line in done.stdout.splitlines()[:: len(done.stdout.splitlines()) - 1])
    assert last < first
    assert len(EXAMPLE.read_text().splitlines()) < 50
