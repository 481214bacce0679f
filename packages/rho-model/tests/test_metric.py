import numpy as np
import pytest
import torch

from rho_data import open_dataset
from rho_model.data import Batch, load_records
from rho_model.metric import BatchOverlap, overlap_loss, projection_loss


def _batch(path, n=5):
    ds = open_dataset(path)
    recs = load_records(ds, list(range(n)), {})
    return ds, recs


def test_loss_equals_dense_formula(water_dataset):
    ds, recs = _batch(water_dataset)
    batch = Batch(recs, ds.basis)
    rng = np.random.default_rng(0)
    pred = batch.reference + torch.as_tensor(rng.normal(size=batch.layout.size))
    dense = 0.0
    for s, r in enumerate(recs):
        sl = slice(batch.layout.offsets[s], batch.layout.offsets[s + 1])
        diff = (pred[sl] - batch.reference[sl]).numpy()
        dense += diff @ r.overlap.to_dense() @ diff
    loss = float(overlap_loss(pred, batch.reference, batch.overlap))
    proj = float(projection_loss(pred, batch.overlap.matvec(batch.reference), batch.constant, batch.overlap))
    assert abs(loss - dense) <= 1e-12 * abs(dense)
    assert abs(proj - dense) <= 1e-9 * abs(dense)


@pytest.mark.parametrize("storage", ["dense per structure", "atom-pair blocks"])
def test_matvec_and_quadratic_match_dense(water_dataset, monkeypatch, storage):
    from rho_model import metric

    if storage == "atom-pair blocks":
        monkeypatch.setattr(metric, "DENSE_STRUCTURE_MAX", 0)
    ds, recs = _batch(water_dataset, 3)
    batch = Batch(recs, ds.basis)
    assert bool(batch.overlap.dense) == (storage == "dense per structure")
    assert bool(batch.overlap.groups) == (storage == "atom-pair blocks")
    rng = np.random.default_rng(1)
    v = torch.as_tensor(rng.normal(size=batch.layout.size))
    several = torch.as_tensor(rng.normal(size=(batch.layout.size, 3)))
    out, out_several = batch.overlap.matvec(v).numpy(), batch.overlap.matvec(several).numpy()
    quadratic = 0.0
    for s, r in enumerate(recs):
        sl = slice(batch.layout.offsets[s], batch.layout.offsets[s + 1])
        dense = r.overlap.to_dense()
        np.testing.assert_allclose(out[sl], dense @ v.numpy()[sl], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(out_several[sl], dense @ several.numpy()[sl], rtol=1e-12, atol=1e-12)
        quadratic += v.numpy()[sl] @ dense @ v.numpy()[sl]
    assert float(batch.overlap.quadratic(v)) == pytest.approx(quadratic, rel=1e-12)


@pytest.mark.parametrize("dense_max", [0, 2048])
def test_pair_cutoff_drops_far_pairs(water_dataset, monkeypatch, dense_max):
    from rho_model import metric

    monkeypatch.setattr(metric, "DENSE_STRUCTURE_MAX", dense_max)
    ds, recs = _batch(water_dataset, 2)
    full = BatchOverlap([r.overlap for r in recs], Batch(recs, ds.basis).layout.offsets)
    short = BatchOverlap(
        [r.overlap for r in recs], Batch(recs, ds.basis).layout.offsets, positions=[r.positions for r in recs], pair_cutoff=0.5
    )
    assert short.n_pairs == sum(r.n_atoms if hasattr(r, "n_atoms") else len(r.numbers) for r in recs)
    assert full.n_pairs > short.n_pairs
    v = torch.as_tensor(np.random.default_rng(3).normal(size=short.size))
    one_centre = 0.0  # only the atoms' own blocks are within 0.5 A
    offsets = Batch(recs, ds.basis).layout.offsets
    for s, r in enumerate(recs):
        start = offsets[s] + r.overlap.atom_offsets
        for i, block in enumerate(r.overlap.diagonal_blocks()):
            x = v.numpy()[start[i] : start[i + 1]]
            one_centre += x @ block @ x
    assert float(short.quadratic(v)) == pytest.approx(one_centre, rel=1e-12)
    assert float(v @ short.matvec(v)) == pytest.approx(one_centre, rel=1e-12)


def test_batch_loss_is_the_tested_loss_of_the_model(water_dataset):
    """The training loss (metric.batch_loss) is overlap_loss / projection_loss of the model's prediction."""
    from rho_model.metric import batch_loss

    ds, recs = _batch(water_dataset, 4)
    batch = Batch(recs, ds.basis)
    rng = np.random.default_rng(2)
    blocks = {n: torch.as_tensor(rng.normal(size=b.shape)) for n, b in batch.blocks_of(batch.reference).items()}

    def model(features, samples):
        return blocks

    pred = batch.assemble(blocks)
    assert float(batch_loss(model, batch, "overlap")) == float(overlap_loss(pred, batch.reference, batch.overlap))
    proj = float(batch_loss(model, batch, "projections"))
    assert proj == float(projection_loss(pred, batch.projections, batch.constant, batch.overlap))
    assert abs(proj - float(overlap_loss(pred, batch.reference, batch.overlap))) <= 1e-9 * abs(proj)


def test_rhs_uses_the_stored_projections_unless_a_pair_cutoff_truncates_s(water_dataset):
    """LinearProblem's S d: w - S (d_ref - d) from the dataset's w = S d_ref (equal to S d), or S d with a pair cutoff."""
    import dataclasses

    from rho_model.normal_equations import target_projections

    ds, recs = _batch(water_dataset, 3)
    batch = Batch(recs, ds.basis)
    assert batch.stored_projections
    offset = torch.zeros_like(batch.reference)
    offset[::7] = 0.3
    target = batch.reference - offset
    direct = batch.overlap.matvec(target)
    torch.testing.assert_close(target_projections(batch, target), direct, rtol=1e-10, atol=1e-12)
    # it is the stored w that is used: a different stored w shows through, but not under a pair cutoff
    marked = Batch([dataclasses.replace(r, projections=r.projections + 1.0) for r in recs], ds.basis)
    torch.testing.assert_close(target_projections(marked, target), direct + 1.0, rtol=1e-10, atol=1e-10)
    assert target_projections(marked, marked.reference) is marked.projections
    cut = Batch(marked.records, ds.basis, pair_cutoff=1.0)
    torch.testing.assert_close(target_projections(cut, target), cut.overlap.matvec(target))
