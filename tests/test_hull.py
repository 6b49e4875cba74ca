"""Hull distance, RGE, properties and the nearest-convex-hull classifier against slow references."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import reluscope.data
from reluscope.hull import (
    NearestConvexHull,
    class_geometry,
    crucial_share,
    hull_distance,
    hull_distance_bounds,
    in_hull,
    misinclusion,
    revised_greedy_expansion,
)
from reluscope.testing.hull import brute_hull_distance, lp_in_hull, qp_hull_distance

TOY = Path(reluscope.data.__file__).parent / "hull_toy"


def load_toy(name):
    return np.loadtxt(TOY / f"{name}.txt", skiprows=1)[:, 1:]


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 7), d=st.integers(1, 3), seed=st.integers(0, 10_000))
def test_distance_matches_brute_force(n, d, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    q = np.vstack([rng.normal(size=(4, d)) * 1.5, rng.dirichlet(np.ones(n), size=2) @ x])
    res = hull_distance_bounds(x, q, tol=1e-9)
    ref = np.array([brute_hull_distance(x, v) for v in q])
    radius = np.linalg.norm(x - x.mean(0), axis=1).max()
    np.testing.assert_allclose(res.distance, ref, atol=1e-7 * max(radius, 1) + 1e-9)
    assert (res.lower <= ref + 1e-7).all() and (res.upper >= ref - 1e-7).all()
    assert res.converged.all()


@pytest.mark.parametrize("n,d", [(40, 5), (70, 8)])
def test_distance_matches_qp_and_lp(n, d):
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, d))
    inside = rng.dirichlet(np.ones(6), size=10) @ x[:6]
    outside = rng.normal(size=(10, d)) * 2
    q = np.vstack([inside, outside])
    dist = hull_distance(x, q)
    ref = np.array([qp_hull_distance(x, v) for v in q])
    np.testing.assert_allclose(dist, ref, atol=1e-5)
    assert (dist <= ref + 1e-9).all()  # ours is exact; SLSQP may stop slightly above the optimum
    lp = np.array([lp_in_hull(x, v) for v in q])
    np.testing.assert_array_equal(in_hull(x, q, inside_distance=1e-6), lp)


def test_duplicates_and_flat_sets():
    rng = np.random.default_rng(1)
    base = rng.normal(size=(6, 2))
    flat = np.hstack([base, np.zeros((6, 1))])  # a 2-D set in 3-D
    flat = np.vstack([flat, flat[:3]])  # plus duplicates
    q = np.array([[*base[:3].mean(0), 0.0], [*base[:3].mean(0), 0.5], [10.0, 0.0, -1.0]])
    dist = hull_distance(flat, q)
    ref = [brute_hull_distance(flat[:6], v) for v in q]
    np.testing.assert_allclose(dist, ref, atol=1e-8)
    assert dist[0] < 1e-8 and abs(dist[1] - 0.5) < 1e-8
    # a single point and repeated single point
    np.testing.assert_allclose(hull_distance(np.ones((3, 2)), np.zeros((1, 2))), [np.sqrt(2)])


def test_allowed_mask_is_leave_one_out():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(9, 2))
    allowed = ~np.eye(9, dtype=bool)
    d = hull_distance(x, x, allowed=allowed)
    ref = np.array([brute_hull_distance(np.delete(x, i, 0), x[i]) for i in range(9)])
    np.testing.assert_allclose(d, ref, atol=1e-9)
    assert (d > 0).sum() >= 3  # the hull's vertices are outside the hull of the others


def test_bad_input():
    x = np.random.default_rng(0).normal(size=(5, 3))
    with pytest.raises(ValueError, match="queries: expected shape \\[M, 3\\]"):
        hull_distance(x, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="single point"):
        hull_distance(x, np.zeros(3))
    with pytest.raises(ValueError, match="NaN/inf"):
        hull_distance(np.vstack([x, [np.nan] * 3]), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="NaN/inf"):
        hull_distance(x, np.full((1, 3), np.inf))
    with pytest.raises(ValueError, match="at least 1 point"):
        hull_distance(np.zeros((0, 3)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="tol"):
        hull_distance(x, np.zeros((1, 3)), tol=0)
    with pytest.raises(ValueError, match="inside_distance"):
        in_hull(x, np.zeros((1, 3)), inside_distance=-1)
    with pytest.raises(ValueError, match="empty hull"):
        hull_distance(x, np.zeros((1, 3)), allowed=np.zeros((1, 5), dtype=bool))
    with pytest.raises(TypeError, match="real floating"):
        hull_distance(np.ones((3, 2), dtype=bool), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="inside_distance"):
        revised_greedy_expansion(x, inside_distance=0)
    with pytest.raises(ValueError, match="at least 2 point"):
        revised_greedy_expansion(x[:1])


@pytest.mark.parametrize("name", ["Center", "Circles", "Moons", "Centers"])
def test_rge_toy_sets_error_bound(name):
    x = load_toy(name)
    res = revised_greedy_expansion(x)
    assert res.indices.size == np.unique(res.indices).size
    assert set(res.indices) <= set(range(len(x)))
    assert res.size <= len(x) // 10
    assert res.error <= 0.06 + 1e-9  # the stop bound: paper Table 1 reports 0.000-0.053
    # error recomputed with the exact reference on a subsample of S (all of S is slow for SLSQP)
    sub = np.random.default_rng(0).choice(len(x), 60, replace=False)
    e = x[res.indices]
    ref = max(brute_or_qp(e, x[i]) for i in sub)
    assert ref <= res.error + 1e-6


def brute_or_qp(points, q):
    return qp_hull_distance(points, q)


def test_rge_hull_of_few_points_keeps_extremes():
    # a triangle plus interior points: E must be the 3 corners (interior ones are within eps)
    rng = np.random.default_rng(3)
    corners = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    inner = rng.dirichlet(np.ones(3), size=60) @ corners
    x = np.vstack([inner, corners])
    res = revised_greedy_expansion(x, initial_size=2, max_size=10)
    assert set(res.indices.tolist()) == {60, 61, 62}
    assert res.error < 1e-9


def test_crucial_and_misinclusion_against_lp():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(25, 3))
    b = rng.normal(size=(20, 3)) * 0.5
    share = crucial_share(a)
    ref = np.mean([not lp_in_hull(np.delete(a, i, 0), a[i]) for i in range(len(a))])
    assert share == pytest.approx(ref)
    mis = misinclusion(a, b, inside_fraction=1e-6)
    assert mis == pytest.approx(np.mean([lp_in_hull(a, v) for v in b]))
    y = np.array([0] * 25 + [1] * 20)
    geo = class_geometry(np.vstack([a, b]), y, x_test=np.vstack([a, b]), y_test=y, inside_fraction=1e-6)
    assert geo.crucial[0] == pytest.approx(share)
    assert geo.misinclusion_train[1, 0] == pytest.approx(mis)
    assert len(geo.histograms) == 2 and geo.histograms[0][0].sum() == 25 * 24 // 2


def test_nearest_convex_hull_classifier():
    rng = np.random.default_rng(5)
    x0 = rng.normal(size=(40, 4)) + 3
    x1 = rng.normal(size=(40, 4)) - 3
    x = np.vstack([x0, x1])
    y = np.array([0] * 40 + [1] * 40)
    clf = NearestConvexHull().fit(x, y)
    d = clf.decision_function(x[:5])
    assert d.shape == (5, 2) and (d[:, 0] < 1e-6).all()
    # leave-one-out against a direct computation
    d_loo = clf.decision_function(x, loo=True)
    np.testing.assert_allclose(d_loo[3, 0], qp_hull_distance(np.delete(x0, 3, 0), x0[3]), atol=1e-5)
    assert clf.score(x, y, loo=True) == 1.0
    assert (clf.predict_train() == y).all()
    q = np.vstack([rng.normal(size=(10, 4)) + 3, rng.normal(size=(10, 4)) - 3])
    assert clf.score(q, [0] * 10 + [1] * 10) == 1.0
    approx = NearestConvexHull(mode="rge").fit(x, y)
    assert approx.score(q, [0] * 10 + [1] * 10) == 1.0
    assert all(len(m) <= 40 for m in approx.members_)
    with pytest.raises(ValueError, match="mode"):
        NearestConvexHull(mode="nope").fit(x, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(np.zeros((2, 3)))
    with pytest.raises(RuntimeError, match="fit"):
        NearestConvexHull().predict(x)
    with pytest.raises(ValueError, match="training data"):
        clf.decision_function(q, loo=True)


def test_float32_input_and_torch_tensors():
    x = torch.randn(20, 3, generator=torch.Generator().manual_seed(0))
    q = torch.randn(4, 3, generator=torch.Generator().manual_seed(1)).float()
    d = hull_distance(x.float(), q)
    assert d.dtype == np.float64
    np.testing.assert_allclose(d, [qp_hull_distance(x.double().numpy(), v) for v in q.double().numpy()], atol=1e-5)


def test_layer_activations_and_overfitting_report():
    from reluscope.experiments.hulls import layer_activations
    from reluscope.hull import overfitting_report
    from reluscope.train import mlp

    model = mlp(4, [6, 5], 2, seed=0).eval()
    x = torch.randn(30, 4, generator=torch.Generator().manual_seed(0))
    acts = layer_activations(model, x)
    assert [n for n, _ in acts] == ["input", "1:ReLU", "3:ReLU"]
    np.testing.assert_allclose(acts[1][1], torch.relu(model[0](x)).detach().double().numpy())
    y = (x[:, 0] > 0).long().numpy()
    rows = overfitting_report([(n, a, a) for n, a in acts], y, y, net_train=0.5, net_test=0.5)
    assert len(rows) == 3
    # test data = training data: without leave-one-out every point sits in its own hull
    assert all(r.nch_test == 1.0 for r in rows)
    clf = NearestConvexHull().fit(acts[0][1], y)
    assert rows[0].nch_train == pytest.approx(clf.score(acts[0][1], y, loo=True))


def test_mean_misinclusion_counts_each_point_once():
    # regression: a point inside two other classes' hulls was counted twice (summed [C, C] rows)
    sq = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0], [4.0, 4.0]])
    x = np.vstack([sq, sq + 0.5, [[2.0, 2.0], [9.0, 9.0]]])
    y = np.array([1] * 4 + [2] * 4 + [0, 0])
    geo = class_geometry(x, y, x_test=x, y_test=y, inside_fraction=1e-6)
    # the point (2, 2) of class 0 lies in both hulls; (9, 9) in none; the squares' corners: (0.5, 0.5) etc.
    inside_other = np.array([any(lp_in_hull(x[y == c], v) for c in (0, 1, 2) if c != yy) for v, yy in zip(x, y)])
    assert geo.misincluded_train.tolist() == inside_other.tolist()
    assert geo.mean_misinclusion() == pytest.approx(inside_other.mean())
    assert geo.mean_misinclusion("test") == pytest.approx(inside_other.mean())
    assert geo.misinclusion_train[0, 1] == 0.5 and geo.misinclusion_train[0, 2] == 0.5


def test_misinclusion_tolerance_is_relative_to_the_hull_radius():
    a = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # radius sqrt(0.5)
    r = np.sqrt(0.5)
    near, far = [[1.0 + 0.02 * r, 0.5]], [[1.0 + 0.04 * r, 0.5]]
    assert misinclusion(a, near) == 1.0 and misinclusion(a, far) == 0.0  # default eps 0.03
    assert misinclusion(a * 100, np.array(near) * 100) == 1.0  # scale-free


@settings(max_examples=6, deadline=None)
@given(n=st.integers(20, 90), d=st.integers(1, 3), seed=st.integers(0, 10**6), spread=st.floats(0.5, 3.0))
def test_kcha_matches_the_plain_iteration(n, d, seed, spread):
    from reluscope.hull import kcha_scores
    from reluscope.testing.hull import kcha_plain

    x = np.random.default_rng(seed).normal(size=(n, d)) * spread
    ref, _ = kcha_plain(x)
    np.testing.assert_allclose(kcha_scores(x, prune=0, precision="float64"), ref, rtol=1e-10, atol=1e-12)
    fast = kcha_scores(x)  # pruned, float32 products
    np.testing.assert_allclose(fast, ref, rtol=1e-5, atol=1e-6)


def test_kcha_toy_set_same_seeds_as_plain():
    from reluscope.hull import kcha_scores
    from reluscope.testing.hull import kcha_plain

    x = load_toy("Moons")[::8]  # 250 points: the plain iteration stays cheap
    ref, _ = kcha_plain(x)
    fast = kcha_scores(x)
    assert np.abs(fast - ref).max() < 1e-5
    k = len(x) // 20
    assert set(np.argsort(fast)[-k:]) == set(np.argsort(ref)[-k:])


def test_kcha_same_steps_and_scores_as_plain_in_both_precisions():
    from reluscope.hull.kcha import _kcha
    from reluscope.testing.hull import kcha_plain

    x = load_toy("Centers")[::6]  # 334 points
    ref, steps = kcha_plain(x)
    for precision, tol in (("float32", 1e-5), ("float64", 1e-6)):
        ours, ours_steps = _kcha(x, 0.3, 0.01, 500, 1e-6, precision, 2**31, None)
        assert ours_steps == steps
        np.testing.assert_allclose(ours, ref, rtol=tol)


def test_kcha_numpy_fallback_and_uncached_kernel_give_the_same_scores(monkeypatch):
    # without numba the fused kernels are numpy code with the same arithmetic; with a tight
    # memory_budget the blocks gather their kernel rows every step instead of keeping them
    import reluscope.hull.kcha as kcha

    x = load_toy("Circles")[::7]
    compiled = {p: kcha.kcha_scores(x, precision=p) for p in ("float32", "float64")}
    small = kcha.kcha_scores(x, memory_budget=kcha.kcha_memory(len(x)) + 1)
    np.testing.assert_array_equal(small, compiled["float32"])
    monkeypatch.setitem(sys.modules, "numba", None)  # `import numba` now fails: the numpy kernels run
    monkeypatch.delitem(sys.modules, "reluscope.hull._kcha_nb", raising=False)
    assert kcha._kernels() == (kcha._first_step_np, kcha._gather_np, kcha._compact_np, kcha._step_np)
    for p, scores in compiled.items():
        np.testing.assert_array_equal(kcha.kcha_scores(x, precision=p), scores)
    with pytest.raises(ValueError, match="precision"):
        kcha.kcha_scores(x, precision="half")


def test_kcha_threads_give_the_same_scores_and_restore_the_thread_count():
    # blocks split over torch's threads: each sums in block order, so the result is the same bit for bit
    import reluscope.hull.kcha as kcha

    x = load_toy("Moons")[::5]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = {p: kcha._kcha(x, 0.3, 0.01, 500, 1e-6, p, 2**31, None) for p in ("float32", "float64")}
        torch.set_num_threads(3)
        for p, (scores, steps) in one.items():
            many, many_steps = kcha._kcha(x, 0.3, 0.01, 500, 1e-6, p, 2**31, None)
            np.testing.assert_array_equal(many, scores)
            assert many_steps == steps
            assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_kcha_restores_the_thread_count_when_a_step_raises(monkeypatch):
    # the block workers set one torch thread each; an error mid-iteration (here a MemoryError in
    # the fourth block step) must still leave the caller's count, in this thread and new ones
    import threading

    import reluscope.hull.kcha as kcha

    x = load_toy("Moons")[::5]
    advance, calls = kcha._advance, []

    def failing(*args):
        calls.append(1)
        if len(calls) > 3:
            raise MemoryError("allocation failed")
        return advance(*args)

    monkeypatch.setattr(kcha, "_advance", failing)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        with pytest.raises(MemoryError, match="allocation failed"):
            kcha._kcha(x, 0.3, 0.01, 500, 1e-6, "float32", 2**31, None)
        assert len(calls) > 3 and torch.get_num_threads() == 3
        seen = []
        worker = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
        worker.start()
        worker.join()
        assert seen == [3]
    finally:
        torch.set_num_threads(before)


def test_rge_memory_budget_and_max_size_warning():
    from reluscope._checks import MemoryBudgetError
    from reluscope.hull import RGEStop

    x = load_toy("Circles")[::10]
    with pytest.raises(MemoryBudgetError, match="kcha_sample"):
        revised_greedy_expansion(x, memory_budget=10_000)
    with pytest.warns(RuntimeWarning, match="above stop="):
        res = revised_greedy_expansion(x, initial_size=2, max_size=4, stop=0.0)
    assert res.stopped_by is RGEStop.MAX_SIZE and res.error > 0 and not res.reached_stop
    ok = revised_greedy_expansion(x, kcha_sample=50)
    assert ok.kcha_points == 50 and ok.stopped_by in (RGEStop.STOP, RGEStop.EXHAUSTED)


def test_hull_functions_detach_requires_grad_tensors():
    x = torch.randn(12, 3, dtype=torch.float64, requires_grad=True)
    q = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    np.testing.assert_allclose(hull_distance(x, q), hull_distance(x.detach(), q.detach()))
    assert crucial_share(x) == crucial_share(x.detach())
    res = revised_greedy_expansion(torch.as_tensor(load_toy("Moons")[::20]).requires_grad_())
    assert res.size > 0


def test_overfitting_report_takes_torch_labels():
    # regression: torch labels compared with numpy predictions gave a Bool tensor without mean()
    from reluscope.hull import overfitting_report

    rng = np.random.default_rng(0)
    a = np.vstack([rng.normal(size=(15, 3)) + 2, rng.normal(size=(15, 3)) - 2])
    y = torch.tensor([0] * 15 + [1] * 15)
    rows = overfitting_report([("a", a, a)], y, y, net_train=1.0, net_test=1.0)
    ref = overfitting_report([("a", a, a)], y.numpy(), y.numpy(), net_train=1.0, net_test=1.0)
    from dataclasses import astuple

    assert np.allclose(astuple(rows[0])[1:], astuple(ref[0])[1:], equal_nan=True) and rows[0].nch_test == 1.0


def test_nch_leave_one_out_drops_a_class_s_only_point():
    # regression: a one-point class kept its point under leave-one-out (distance 0, always right)
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    y = np.array([0, 0, 0, 1])
    clf = NearestConvexHull().fit(x, y)
    d = clf.decision_function(x, loo=True)
    assert np.isinf(d[3, 1]) and clf.predict_train()[3] == 0


@settings(max_examples=8, deadline=None)
@given(n=st.integers(8, 60), d=st.integers(2, 6), seed=st.integers(0, 10**6), first=st.sampled_from([0, 2, 24]))
def test_distance_with_the_interior_certificate_matches_qp_and_lp(n, d, seed, first):
    # dense-interior queries (weight on every point) reach the alternating-projection certificate
    # when Wolfe gets few first steps; outside and face queries must still come out exact
    import reluscope.hull.distance as dist

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    q = np.vstack([rng.dirichlet(np.ones(n), size=3) @ x, rng.normal(size=(2, d)) * 2,
                   rng.dirichlet(np.ones(2), size=1) @ x[:2]])
    saved = dist._FIRST_STEPS
    dist._FIRST_STEPS = first
    try:
        res = hull_distance_bounds(x, q, tol=1e-9)
        decided = in_hull(x, q, inside_distance=1e-6)
    finally:
        dist._FIRST_STEPS = saved
    ref = np.array([qp_hull_distance(x, v) for v in q])
    np.testing.assert_allclose(res.distance, ref, atol=1e-5)
    assert (res.lower <= ref + 1e-7).all() and (res.upper >= ref - 1e-5).all()
    assert decided.tolist() == [lp_in_hull(x, v, tol=1e-9) or r <= 1e-6 for v, r in zip(q, ref)]
    # the returned combination reproduces the hull point it claims
    w = np.where(res.support >= 0, res.weights, 0)
    p = np.einsum("mk,mkd->md", w, x[np.clip(res.support, 0, None)])
    np.testing.assert_allclose(np.linalg.norm(q - p, axis=1), res.distance, atol=1e-9)
    assert (w >= 0).all() and np.allclose(w.sum(1), 1)


def _fake_digits(split):
    # 10 separable classes in 784-D, enough points per class for every split
    g = torch.Generator().manual_seed(0 if split == "train" else 1)
    n = 400 if split == "train" else 100
    y = torch.arange(n) % 10
    centres = torch.randn(10, 784, generator=torch.Generator().manual_seed(7))
    x = (centres[y] + 0.8 * torch.randn(n, 784, generator=g)).clamp(0, 1)
    return x, y


def test_hulls_experiment_chooses_the_layer_on_validation(monkeypatch, tmp_path):
    from reluscope.experiments import hulls as ex

    monkeypatch.setattr(ex, "_loader", lambda name: _fake_digits)
    cfg = ex.HullsConfig(width=16, depth=2, net_train_size=200, epochs=1, hull_per_class=6, val_per_class=3,
                         test_per_class=4)
    ytr, yte = _fake_digits("train")[1], _fake_digits("test")[1]
    val, net, hull, test = ex.split_indices(ytr, yte, cfg)
    assert not set(val) & set(net) and set(hull) <= set(net) and len(val) == 30 and len(test) == 40
    run = ex.run_hulls_config(cfg)
    assert [r.layer for r in run.layers] == ["1:ReLU", "3:ReLU"]
    best = max(r.nch_val for r in run.layers)
    chosen = next(r for r in run.layers if r.nch_val == best)  # the earliest best on validation
    assert run.chosen_layer == chosen.layer and run.nch_test == chosen.nch_test
    assert ex.HullsRun.from_dict(run.to_dict()) == run
    exp = ex.HullsResult((run,), 0.0)
    assert exp.summary()[0].key == "mnist/relu" and exp.summary()[0].nch_test == run.nch_test
    assert ex.HullsResult.load(exp.save(tmp_path / "hulls")).to_dict() == exp.to_dict()
    assert "chosen" in ex.format_table(exp)
    # the study as a sweep (in this process): the same per-layer rows, kept in out/sweep.jsonl
    swept = ex.run_hulls_experiment([cfg], out=tmp_path / "sweep", workers=0)
    assert swept.runs[0].layers == run.layers and (tmp_path / "sweep" / "sweep.jsonl").exists()
    with pytest.raises(ValueError, match="either out"):
        ex.run_hulls_experiment([cfg])


@pytest.mark.parametrize("loo", [False, True])
def test_nch_classify_agrees_with_exact_distances(loo):
    rng = np.random.default_rng(11)
    x = np.vstack([rng.normal(size=(25, 5)) + s for s in (0.0, 0.7, 1.4)])
    y = np.repeat([0, 1, 2], 25)
    clf = NearestConvexHull().fit(x, y)
    q = x if loo else rng.normal(size=(40, 5)) + 0.7
    yq = y if loo else rng.integers(0, 3, 40)
    d = clf.decision_function(q, loo=loo)
    pred, mis = clf.classify(q, yq, loo=loo, inside_fraction=0.03)
    assert (pred == clf.classes_[d.argmin(1)]).all()
    other = clf.classes_[None, :] != yq[:, None]
    assert (mis == ((d <= 0.03 * clf.radius_[None, :]) & other).any(1)).all()
    assert 0 < mis.mean() < 1  # overlapping classes: both cases occur


def test_rge_batch_is_deprecated_for_memory_budget():
    x = np.random.default_rng(0).normal(size=(60, 2))
    new = revised_greedy_expansion(x, max_size=12)
    with pytest.warns(DeprecationWarning, match="memory_budget"):
        old = revised_greedy_expansion(x, max_size=12, batch=3)
    np.testing.assert_array_equal(old.indices, new.indices)  # the batch changes work, not the answer
    assert new.inside_distance == 0.03


def test_layer_hulls_is_the_cli_model_mode_as_a_call(tmp_path):
    from reluscope.hull import LayerHulls, layer_hulls
    from reluscope.train import mlp

    model = mlp(784, [16], 10, seed=0)
    res = layer_hulls(model, "1", per_class=4, seed=3)
    assert isinstance(res, LayerHulls) and res.report.layer == "1" and res.geometry.classes.tolist() == list(range(10))
    assert 0 <= res.report.nch_test <= 1 and res.geometry.misinclusion_test.shape == (10, 10)
    back = LayerHulls.load(res.save(tmp_path / "h"))
    assert back.report.to_dict() == res.report.to_dict()  # (nan ratios compare equal as JSON)
    assert np.array_equal(back.geometry.crucial, res.geometry.crucial)
    with pytest.raises(ValueError, match="data: expected one of"):
        layer_hulls(model, "1", data="moons")
