"""Hull distance, RGE, properties and the nearest-convex-hull classifier against slow references."""

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
    np.testing.assert_array_equal(in_hull(x, q, eps=1e-6), lp)


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
    with pytest.raises(ValueError, match="eps"):
        in_hull(x, np.zeros((1, 3)), eps=-1)
    with pytest.raises(ValueError, match="empty hull"):
        hull_distance(x, np.zeros((1, 3)), allowed=np.zeros((1, 5), dtype=bool))
    with pytest.raises(TypeError, match="real floating"):
        hull_distance(np.ones((3, 2), dtype=bool), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="eps"):
        revised_greedy_expansion(x, eps=0)
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
    mis = misinclusion(a, b)
    assert mis == pytest.approx(np.mean([lp_in_hull(a, v) for v in b]))
    y = np.array([0] * 25 + [1] * 20)
    geo = class_geometry(np.vstack([a, b]), y, x_test=np.vstack([a, b]), y_test=y)
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
