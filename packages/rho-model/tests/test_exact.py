import numpy as np
import pytest
import torch

from rho_data import open_dataset
from rho_model import exact_fit
from rho_model.data import Batch, load_records
from rho_model.exact_fit import fit_exact, model_inputs
from rho_model.model_setup import descriptor_store, new_model
from rho_model.normal_equations import LinearProblem


def _setup(path, options, n):
    ds = open_dataset(path)
    store = descriptor_store(options, ds)
    idx = list(range(n))
    recs = load_records(ds, idx, store.gather(idx))
    model = new_model(options, ds, recs, store.calc.spec, store.calc.sizes, gradient=False)
    return ds, recs, model


def _dense_solution(problem: LinearProblem, recs, alpha):
    """Dense A (columns = weights in input coordinates) and S: (A^T S A + alpha I)^-1 A^T S d."""
    n = problem.target.shape[0]
    columns, shapes = [], []
    for name in problem.names:
        x = (problem.phi[name] @ problem.v[name].T).detach()  # rows of X (with the bias column)
        q = x.shape[1]
        m = problem.gather[name].shape[1]
        shapes.append((name, q, m))
        for a in range(q):
            for b in range(m):
                col = torch.zeros(n, dtype=x.dtype)
                col[problem.gather[name][:, b]] = x[:, a]
                columns.append(col)
    a_mat = torch.stack(columns, dim=1).numpy()
    s_mat = np.zeros((n, n))
    offs = problem.batch.layout.offsets
    for s, r in enumerate(recs):
        s_mat[offs[s] : offs[s + 1], offs[s] : offs[s + 1]] = r.overlap.to_dense()
    d = problem.target.numpy()
    h = a_mat.T @ s_mat @ a_mat + alpha * np.eye(a_mat.shape[1])
    theta = np.linalg.solve(h, a_mat.T @ s_mat @ d)
    resid = a_mat @ theta - d
    return theta, float(resid @ s_mat @ resid + alpha * theta @ theta), shapes


def test_exact_solver_reaches_dense_optimum(water_dataset, small_options):
    ds, recs, model = _setup(water_dataset, small_options, 4)
    batch = Batch(recs, ds.basis)
    problem = LinearProblem(batch, model_inputs(model, batch), batch.reference - exact_fit.baseline_flat(model, batch))
    alpha = 1e-4
    z, info = problem.solve(alpha, tol=1e-12, max_iter=20000)
    assert info.relative_residual <= 1e-11
    theta, best, shapes = _dense_solution(problem, recs, alpha)
    assert abs(problem.objective(z, alpha) - best) <= 1e-9 * best
    w = problem.weights(z)
    flat = np.concatenate([w[name].numpy().reshape(-1) for name, _, _ in shapes])
    np.testing.assert_allclose(flat, theta, rtol=0, atol=1e-7 * np.abs(theta).max())


def test_linear_model_fits_equivariant_target_exactly(water_dataset, small_options):
    small_options["fit"]["alpha"] = 1e-12
    small_options["fit"]["cg_tol"] = 1e-12
    ds, recs, model = _setup(water_dataset, small_options, 12)
    info = fit_exact(model, recs, ds.basis, small_options["fit"], 0, lambda _: None)
    assert info["relative_residual"] < 1e-10
    batch = Batch(recs, ds.basis)
    with torch.no_grad():
        pred = batch.assemble(model(batch.features, batch.samples))
    rel = float(torch.sqrt(batch.overlap.quadratic(pred - batch.reference) / batch.constant))
    assert rel < 1e-5


def test_cross_validation_sees_only_training_structures(water_dataset, small_options, tmp_path, monkeypatch):
    from rho_model.shared_rows import Fold
    from rho_model.train import run_training

    seen: set[int] = set()
    original = exact_fit.cross_validate

    def spy(shared, *args, **kwargs):
        seen.update(r.index for r in shared.records)  # the Gram matrices cover exactly these

        def make_spy(sh, train, held):
            seen.update(sh.records[i].index for i in train)
            seen.update(sh.records[i].index for i in held)
            return Fold(sh, train, held)

        return original(shared, *args, make_fold=make_spy, **kwargs)

    monkeypatch.setattr(exact_fit, "cross_validate", spy)
    small_options["fit"]["alpha_selection"] = "cv"  # the run has a validation split: CV only when asked
    summary = run_training(small_options, water_dataset, tmp_path / "run", echo=None)
    train = [int(x) for x in (tmp_path / "run/splits/train.idx").read_text().split() if x.isdigit()]
    val = [int(x) for x in (tmp_path / "run/splits/val.idx").read_text().split() if x.isdigit()]
    assert seen == set(train)
    assert not seen & set(val)
    assert len(summary["exact"]["cv_scan"]) == 3 * len(summary["exact"]["cv_alphas"]) >= 3 * 3
    log = (tmp_path / "run/log.txt").read_text()
    assert "cv alpha" in log and "relative residual" in log


def test_cv_needs_enough_structures(water_dataset, small_options):
    from rho_model.errors import RhoModelError

    ds, recs, model = _setup(water_dataset, small_options, 2)
    with pytest.raises(RhoModelError, match="cross-validation needs at least 3"):
        fit_exact(model, recs, ds.basis, small_options["fit"], 0, lambda _: None)


def test_fold_from_shared_gram_equals_direct_problem(water_dataset, small_options):
    """A CV fold built from the shared Gram matrices = the problem built from its records alone."""
    from rho_model.shared_rows import Fold, SharedRows

    ds, recs, model = _setup(water_dataset, small_options, 8)
    batch = Batch(recs, ds.basis)
    shared = SharedRows(batch, model_inputs(model, batch), batch.reference - exact_fit.baseline_flat(model, batch), ds.basis)
    train, held = [0, 1, 3, 4, 6, 7], [2, 5]
    fold = Fold(shared, train, held)
    direct_batch = Batch([recs[i] for i in train], ds.basis)
    direct = LinearProblem(
        direct_batch, model_inputs(model, direct_batch), direct_batch.reference - exact_fit.baseline_flat(model, direct_batch)
    )
    alpha = 1e-6
    z_fold, _ = fold.problem.solve(alpha, tol=1e-12, max_iter=20000)
    z_direct, _ = direct.solve(alpha, tol=1e-12, max_iter=20000)
    best = direct.objective(z_direct, alpha)
    assert abs(fold.problem.objective(z_fold, alpha) - best) <= 1e-8 * best
    # held-out error from the Gram matrices = error of the weights' predictions on the held-out records
    err, ref = fold.evaluate(z_fold)
    hb = Batch([recs[i] for i in held], ds.basis)
    pred = exact_fit.predict_linear(model, hb, fold.problem.weights(z_fold))
    np.testing.assert_allclose(err, float(hb.overlap.quadratic(pred - hb.reference)), rtol=1e-8)
    assert ref == pytest.approx(float(hb.constant))
    # a warm start from the fold's own state reproduces its solution
    start = fold.start(fold.state(z_fold))
    assert fold.problem.residual_norm(start, alpha) < 1e-9


def test_warm_start_from_a_larger_alpha_still_resolves_the_smaller_one(water_dataset, small_options):
    """The solution at 10 alpha has residual 9 alpha z at alpha: below a loose tol when alpha is small.

    Without ``warm_tol`` the solve stops at once and returns the larger alpha's solution; with
    it the solve reaches the optimum at alpha.
    """
    ds, recs, model = _setup(water_dataset, small_options, 4)
    batch = Batch(recs, ds.basis)
    problem = LinearProblem(batch, model_inputs(model, batch), batch.reference - exact_fit.baseline_flat(model, batch))
    alpha = 1e-8
    previous, _ = problem.solve(10 * alpha, tol=1e-12, max_iter=20000)
    _, best, _ = _dense_solution(problem, recs, alpha)
    stale, info = problem.solve(alpha, tol=1e-5, start=previous)
    assert info.iterations == 0
    assert problem.objective(stale, alpha) > (1 + 1e-3) * best  # measured: 5 % above the optimum
    resolved, info = problem.solve(alpha, tol=1e-5, start=previous, warm_tol=1e-3)
    assert info.iterations > 0
    assert problem.objective(resolved, alpha) <= (1 + 1e-7) * best


class _KnownErrorFold:
    """A real CV fold whose held-out error is replaced by steep (log10 alpha - log10 best)^2 + 1."""

    def __init__(self, shared, train, held, best_alpha, solved, steep=1.0):
        from rho_model.shared_rows import Fold

        self.fold = Fold(shared, train, held)
        self.problem = self.fold.problem
        solve = self.problem.solve

        def record(alpha, **kwargs):
            self.alpha = alpha
            solved.append(alpha)
            return solve(alpha, **kwargs)

        self.problem.solve = record
        self.best_alpha, self.steep = best_alpha, steep

    def evaluate(self, z):
        return self.steep * (np.log10(self.alpha) - np.log10(self.best_alpha)) ** 2 + 1.0, 1.0

    def state(self, z):
        return self.fold.state(z)

    def start(self, state):
        return self.fold.start(state)


@pytest.mark.parametrize(
    ("best_alpha", "patience", "steep", "scanned", "chosen"),
    [
        # a gentle rise (5 % and 20 % above the minimum one and two decades below it): 2 alphas past the minimum
        (1e-4, 2, 0.05, [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1], 1e-4),
        # a steep rise (twice the minimum one decade below it): the first alpha past it ends the descent
        (1e-4, 2, 1.0, [1e-5, 1e-4, 1e-3, 1e-2, 1e-1], 1e-4),
        (1e-4, 0, 1.0, [1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1], 1e-4),  # no patience: the whole grid
        # minimum above the grid: extended upwards first, then the descent judged against it
        (1e0, 2, 0.05, [1e-2, 1e-1, 1e0, 1e1], 1e0),
    ],
)
def test_cv_scan_stops_past_the_minimum_and_extends_at_the_ends(
    water_dataset, small_options, best_alpha, patience, steep, scanned, chosen
):
    from rho_model.alpha_selection import cross_validate
    from rho_model.shared_rows import SharedRows

    ds, recs, model = _setup(water_dataset, small_options, 6)
    batch = Batch(recs, ds.basis)
    shared = SharedRows(batch, model_inputs(model, batch), batch.reference - exact_fit.baseline_flat(model, batch), ds.basis)
    solved: list[float] = []
    cv = cross_validate(
        shared,
        [10.0**-k for k in range(1, 10)],
        3,
        0,
        tol=1e-5,
        max_iter=2000,
        warm_tol=1e-3,
        extend=2,
        patience=patience,
        log=lambda _: None,
        make_fold=lambda sh, train, held: _KnownErrorFold(sh, train, held, best_alpha, solved, steep),
    )
    assert cv.alpha == pytest.approx(chosen)
    np.testing.assert_allclose(cv.alphas, scanned)
    np.testing.assert_allclose(sorted(set(solved)), scanned)  # nothing below the stop was solved
    assert len(cv.scan) == 3 * len(scanned)


def test_validation_selection_sees_train_and_val_never_test(water_dataset, small_options, tmp_path, monkeypatch):
    """alpha on the validation split (the default when there is one): weights from train, errors from val only."""
    import json

    from rho_model import train as train_module
    from rho_model.train import run_training

    loaded: set[int] = set()
    judged: set[int] = set()
    original_load, original_select = train_module.load_records, exact_fit.select_on_validation

    def load_spy(ds, indices, *args, **kwargs):
        loaded.update(int(i) for i in indices)
        return original_load(ds, indices, *args, **kwargs)

    def select_spy(problem, holdout, *args, **kwargs):
        judged.update(r.index for r in holdout.batch.records)
        fitted = {r.index for r in problem.batch.records}
        assert not fitted & judged
        return original_select(problem, holdout, *args, **kwargs)

    monkeypatch.setattr(train_module, "load_records", load_spy)
    monkeypatch.setattr(exact_fit, "select_on_validation", select_spy)
    small_options["data"]["fractions"] = [0.5, 0.25, 0.25]
    summary = run_training(small_options, water_dataset, tmp_path / "run", echo=None)
    split = {
        name: {int(x) for x in (tmp_path / f"run/splits/{name}.idx").read_text().split() if x.isdigit()}
        for name in ("train", "val", "test")
    }
    assert split["test"] and judged == split["val"]
    assert not loaded & split["test"]
    exact = json.loads((tmp_path / "run/fit.json").read_text())["exact"]
    assert exact == json.loads(json.dumps(summary["exact"]))
    assert exact["alpha_selection"] == "validation" and exact["cv_scan"] == []
    assert len(exact["validation_scan"]) == len(exact["alphas"]) >= 3
    errors = {e["alpha"]: e["error"] for e in exact["alpha_errors"]}
    assert exact["alpha"] == min(errors, key=errors.get)
    # the recorded validation error of the chosen alpha is the saved model's error on the validation split
    assert exact["val_loss"] * len(split["val"]) == pytest.approx(errors[exact["alpha"]], rel=1e-3)
    assert "validation alpha" in (tmp_path / "run/log.txt").read_text()


def test_alpha_selection_options(water_dataset, small_options):
    from rho_model.errors import RhoModelError
    from rho_model.options import load_options

    with pytest.raises(RhoModelError, match="needs fit.alpha"):
        load_options(overrides={"fit": {"alpha_selection": "fixed"}})
    with pytest.raises(RhoModelError, match="fit.alpha is set"):
        load_options(overrides={"fit": {"alpha_selection": "cv", "alpha": 1e-6}})
    with pytest.raises(RhoModelError, match="fit.alpha_selection must be one of"):
        load_options(overrides={"fit": {"alpha_selection": "test"}})
    small_options["fit"]["alpha_selection"] = "validation"
    ds, recs, model = _setup(water_dataset, small_options, 4)
    with pytest.raises(RhoModelError, match="needs a validation split"):
        fit_exact(model, recs, ds.basis, small_options["fit"], 0, lambda _: None)


def _problem(ds, recs, model, **kwargs):
    batch = Batch(recs, ds.basis)
    return LinearProblem(batch, model_inputs(model, batch), batch.reference - exact_fit.baseline_flat(model, batch), **kwargs)


def test_dense_route_solves_every_alpha_from_one_normal_matrix(water_dataset, small_options):
    """M = Phi^T S Phi formed once; each alpha = the dense optimum and the CG solution to tight tolerance."""
    ds, recs, model = _setup(water_dataset, small_options, 4)
    dense = _problem(ds, recs, model, dense_max=10**6)
    cg = _problem(ds, recs, model)
    matrix = None
    for alpha in (1e-8, 1e-6, 1e-4):
        z, info = dense.solve(alpha, tol=1e-12)
        assert info.method == "dense" and info.iterations == 0 and info.relative_residual <= 1e-12
        matrix = dense.dense.matrix if matrix is None else matrix
        assert dense.dense.matrix is matrix  # not formed again
        z_cg, info_cg = cg.solve(alpha, tol=1e-12, max_iter=20000)
        assert info_cg.method == "cg" and info_cg.relative_residual <= 1e-11
        theta, best, shapes = _dense_solution(dense, recs, alpha)
        assert abs(dense.objective(z, alpha) - best) <= 1e-9 * best
        w, w_cg = dense.weights(z), cg.weights(z_cg)
        flat = np.concatenate([w[name].numpy().reshape(-1) for name, _, _ in shapes])
        flat_cg = np.concatenate([w_cg[name].numpy().reshape(-1) for name, _, _ in shapes])
        np.testing.assert_allclose(flat, flat_cg, rtol=0, atol=1e-8 * np.abs(flat).max())  # measured: 2e-10
        if alpha >= 1e-6:  # the primal reference itself is 5e-7 off at 1e-8 (condition number ~1e9)
            np.testing.assert_allclose(flat, theta, rtol=0, atol=1e-7 * np.abs(theta).max())
    # the normal matrix is Phi^T S Phi: its products are the operator's
    rng = np.random.default_rng(0)
    v = torch.as_tensor(rng.normal(size=dense.dim))
    np.testing.assert_allclose(matrix @ v, dense.flatten(dense.hessian(dense.unflatten(v), 0.0)), rtol=1e-10, atol=1e-12)


def test_dense_route_falls_back_to_cg(water_dataset, small_options, monkeypatch):
    from rho_model import solver

    ds, recs, model = _setup(water_dataset, small_options, 4)
    problem = _problem(ds, recs, model, dense_max=10**6)
    monkeypatch.setattr(solver.DenseNormal, "solve", lambda self, alpha: None)  # as if M + alpha I were indefinite
    z, info = problem.solve(1e-6, tol=1e-10, max_iter=20000)
    assert info.method == "cg" and info.iterations > 0 and info.relative_residual <= 1e-10


@pytest.mark.parametrize("selection", ["validation", "cv"])
def test_dense_and_cg_fits_choose_the_same_alpha_and_weights(water_dataset, small_options, selection):
    ds = open_dataset(water_dataset)
    store = descriptor_store(small_options, ds)
    train, val = list(range(9)), list(range(9, 13))
    recs = load_records(ds, train, store.gather(train))
    val_recs = load_records(ds, val, store.gather(val))
    small_options["fit"]["alpha_selection"] = selection
    small_options["fit"]["cg_tol"] = 1e-11
    small_options["fit"]["cv_tol"] = 1e-10
    fits = {}
    for dense_max in (0, 10**6):
        small_options["fit"]["dense_max"] = dense_max
        model = new_model(small_options, ds, recs, store.calc.spec, store.calc.sizes, gradient=False)
        info = fit_exact(model, recs, ds.basis, small_options["fit"], 0, lambda _: None, val_records=val_recs)
        batch = Batch(val_recs, ds.basis)
        with torch.no_grad():
            fits[dense_max] = (info, batch.assemble(model(batch.features, batch.samples)))
    (cg, w_cg), (dense, w_dense) = fits[0], fits[10**6]
    assert cg["method"] == "cg" and dense["method"] == "dense" and dense["unknowns"] == cg["unknowns"]
    assert dense["alpha"] == cg["alpha"] and dense["alphas"] == cg["alphas"]
    np.testing.assert_allclose(
        [e["relative_error"] for e in dense["alpha_errors"]], [e["relative_error"] for e in cg["alpha_errors"]], rtol=1e-6
    )
    # the predictions (on the validation structures) agree; weights in directions the data barely determine need not
    np.testing.assert_allclose(w_dense.numpy(), w_cg.numpy(), rtol=0, atol=1e-7 * float(w_cg.abs().max()))


def test_coarse_space_preconditioner_solves_the_same_problem_in_fewer_iterations(water_dataset, small_options):
    """Two-level CG (one-centre + exact solve on the top directions of each key) = the dense optimum."""
    ds, recs, model = _setup(water_dataset, small_options, 6)
    dense = _problem(ds, recs, model, dense_max=10**6)
    one_centre = _problem(ds, recs, model)
    two_level = _problem(ds, recs, model, coarse_max=dense.dim // 3)
    for alpha in (1e-6, 1e-4):
        z, _ = dense.solve(alpha, tol=1e-12)
        z1, info1 = one_centre.solve(alpha, tol=1e-12, max_iter=20000)
        z2, info2 = two_level.solve(alpha, tol=1e-12, max_iter=20000)
        assert info2.relative_residual <= 1e-11 and info2.iterations < info1.iterations
        flat, flat2 = dense.flatten(z), two_level.flatten(z2)
        np.testing.assert_allclose(flat2, flat, rtol=0, atol=1e-7 * float(flat.abs().max()))
    coarse = two_level.coarse
    assert 0 < coarse.dim <= dense.dim // 3
    # its matrix is M on the coarse coordinates
    positions, start = [], 0
    for name in two_level.names:
        positions.append(coarse.index[name] + start)
        start += two_level.shapes[name][0] * two_level.shapes[name][1]
    positions = torch.cat(positions)
    np.testing.assert_allclose(coarse.matrix, dense.dense.matrix[positions][:, positions], rtol=1e-10, atol=1e-12)


def test_coarse_space_of_a_dense_problem_comes_from_its_normal_matrix(water_dataset, small_options, monkeypatch):
    from rho_model import solver
    from rho_model.coarse_space import CoarseSpace

    ds, recs, model = _setup(water_dataset, small_options, 4)
    problem = _problem(ds, recs, model, dense_max=10**6, coarse_max=60)
    monkeypatch.setattr(solver.DenseNormal, "solve", lambda self, alpha: None)  # CG continues from the dense route
    z, info = problem.solve(1e-6, tol=1e-10, max_iter=20000)
    assert info.method == "cg" and info.relative_residual <= 1e-10 and problem.coarse is not None
    fresh = _problem(ds, recs, model)
    np.testing.assert_allclose(problem.coarse.matrix, CoarseSpace(fresh, 60).matrix, rtol=1e-10, atol=1e-12)
