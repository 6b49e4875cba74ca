"""The folding measure: properties from the papers, slow references, exact vs fine sampling."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from reluscope.folding import (
    Aggregator,
    PairStrategy,
    PathFolding,
    aggregate_folding,
    draw_pairs,
    folding_measure,
    folding_measures,
    folding_profile,
    global_folding,
    interaction_effect,
    interaction_effects,
    path_folding,
    path_folding_many,
    symmetric_folding,
    symmetric_folding_many,
)
from reluscope.testing.folding import chi_reference, dedupe_walk, sampled_walk
from reluscope.traversal import traverse

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def walks(draw, max_n=10, max_units=7, min_units=1):
    n = draw(st.integers(1, max_n))
    units = draw(st.integers(min_units, max_units))
    bits = draw(st.lists(st.booleans(), min_size=n * units, max_size=n * units))
    return torch.tensor(bits, dtype=torch.bool).reshape(n, units)


def random_net(seed, widths=(2, 6, 6, 2), dtype=torch.float64):
    torch.manual_seed(seed)
    mods = []
    for a, b in zip(widths[:-1], widths[1:]):
        mods += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    return torch.nn.Sequential(*mods[:-1]).to(dtype)


# ---------------------------------------------------------------- the measure on walks


def test_papers_example():
    w = torch.tensor([[0, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1]], dtype=torch.bool)
    assert folding_measure(w) == pytest.approx(2 / 3)
    p = folding_profile(w)
    assert (p.r1, p.r2) == (2, 6)
    np.testing.assert_allclose(p.running_chi, [0, 0, 2 / 3])
    np.testing.assert_array_equal(p.distance_to_start, [0, 2, 2])
    np.testing.assert_array_equal(p.step_lengths, [2, 4])


@FAST
@given(walks())
def test_measure_matches_reference_and_bounds(w):
    chi = folding_measure(w)
    assert chi == pytest.approx(chi_reference(w.tolist()))
    assert 0.0 <= chi <= 1.0
    rev = folding_measure(w.flip(0))
    assert (chi == 0) == (rev == 0)
    p = folding_profile(w)
    if p.r2 > 0:
        d_over_l = p.end_distance / p.r2
        assert (1 - d_over_l) / 2 - 1e-12 <= chi <= 1 - d_over_l + 1e-12
        assert abs(chi - rev) <= d_over_l + 1e-12
        if p.end_distance == 0:  # the walk returns to its start
            assert chi >= 0.5
    else:
        assert chi == 0.0


@FAST
@given(walks(), st.data())
def test_repeated_samples_do_not_change_chi(w, data):
    reps = torch.tensor(data.draw(st.lists(st.integers(1, 3), min_size=len(w), max_size=len(w))))
    assert folding_measure(torch.repeat_interleave(w, reps, dim=0)) == pytest.approx(folding_measure(w))


@FAST
@given(st.lists(walks(min_units=4, max_units=4), min_size=1, max_size=6))  # no filter: it tripped the health check
def test_batched_measure_and_running_curve(ws):
    np.testing.assert_allclose(folding_measures(ws), [folding_measure(w) for w in ws])
    w = ws[0]
    running = folding_profile(w).running_chi
    np.testing.assert_allclose(running, [folding_measure(w[: i + 1]) for i in range(len(w))])


@FAST
@given(walks(), st.data())
def test_interaction_effect(w, data):
    k = data.draw(st.integers(1, len(w)))
    expected = chi_reference(w.tolist()) - chi_reference(w[:k].tolist()) - chi_reference(w[k - 1:].tolist())
    assert interaction_effect(w, k) == pytest.approx(expected)
    curve = interaction_effects(w)
    assert curve.shape == (len(w),) and curve[0] == pytest.approx(0) and curve[-1] == pytest.approx(0)


def test_walk_validation():
    assert folding_measure(torch.zeros(1, 5, dtype=torch.bool)) == 0.0  # documented: r2 = 0
    assert folding_measure([np.array([True, False]), torch.tensor([False, False])]) == 0.0  # r1 = r2 = 1
    with pytest.raises(ValueError, match="at least one pattern"):
        folding_measure(torch.zeros(0, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="at least one pattern"):
        folding_measure([])
    with pytest.raises(TypeError, match="bool"):
        folding_measure(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="same number of units"):
        folding_measure([torch.zeros(3, dtype=torch.bool), torch.zeros(4, dtype=torch.bool)])
    with pytest.raises(TypeError, match=r"walk\[1\]"):
        folding_measure([torch.zeros(3, dtype=torch.bool), [0, 1, 0]])
    with pytest.raises(ValueError, match=r"\[n, units\]"):
        folding_measure(torch.zeros(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="split index"):
        interaction_effect(torch.zeros(3, 2, dtype=torch.bool), 0)


def test_list_of_patterns_is_a_walk():
    pats = [np.array([0, 0, 0, 0], bool), np.array([1, 1, 0, 0], bool), torch.tensor([0, 0, 1, 1]).bool()]
    assert folding_measure(pats) == pytest.approx(2 / 3)


# ---------------------------------------------------------------- along segments of networks


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.integers(0, 10_000), st.booleans())
def test_exact_folding_equals_fine_sampling(seed, include_output):
    net = random_net(seed)
    g = torch.Generator().manual_seed(seed)
    x0, x1 = (torch.randn(2, 2, generator=g, dtype=torch.float64) * 3).unbind(0)
    n = 3001
    tr = traverse(net, x0, x1, include_output=include_output)
    # a grid finds every region when each is longer than two grid steps
    assume(float((tr.t[1:] - tr.t[:-1]).min()) > 2 / (n - 1))
    fine = dedupe_walk(sampled_walk(net, x0, x1, n, include_output=include_output))
    res = path_folding(net, x0, x1, include_output=include_output)
    assert torch.equal(res.walk, fine)
    assert res.chi == pytest.approx(chi_reference(fine.tolist()))
    assert res.exact and res.walk.shape[0] == len(res.t) - 1


def test_papers_grid_mode_and_batches():
    net = random_net(3, widths=(2, 8, 8, 3))
    g = torch.Generator().manual_seed(1)
    x0, x1 = torch.randn(5, 2, generator=g, dtype=torch.float64) * 4, torch.randn(5, 2, generator=g, dtype=torch.float64) * 4
    batch = path_folding_many(net, x0, x1, n_points=11)
    assert len(batch) == 5
    for i, res in enumerate(batch):
        ref = sampled_walk(net, x0[i], x1[i], 11, include_output=True)
        assert torch.equal(res.walk, ref) and res.chi == pytest.approx(chi_reference(ref.tolist()))
        np.testing.assert_allclose(res.t, np.linspace(0, 1, 11))
    exact = path_folding_many(net, x0, x1)
    for i, res in enumerate(exact):
        single = path_folding(net, x0[i], x1[i])
        assert torch.equal(res.walk, single.walk) and res.chi == single.chi
        back = path_folding(net, x1[i], x0[i])
        assert torch.equal(back.walk, res.walk.flip(0))
        assert symmetric_folding(net, x0[i], x1[i]) == pytest.approx((res.chi + back.chi) / 2)
    np.testing.assert_allclose(
        symmetric_folding_many(net, x0, x1), [(a.chi + folding_measure(a.walk.flip(0))) / 2 for a in exact]
    )


def test_hidden_units_only_and_degenerate_segment():
    net = random_net(5)
    x = torch.tensor([0.3, -0.2], dtype=torch.float64)
    res = path_folding(net, x, x.clone())
    assert res.chi == 0.0 and res.walk.shape[0] == 1
    hidden = path_folding(net, x, -3 * x, include_output=False)
    assert hidden.walk.shape[1] == 12
    assert path_folding(net, x, -3 * x).walk.shape[1] == 14


def test_smooth_nets_fold_through_bisection():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 6), torch.nn.GELU(), torch.nn.Linear(6, 6), torch.nn.Tanh(),
                              torch.nn.Linear(6, 2)).double()
    x0, x1 = torch.tensor([-3.0, 1.0], dtype=torch.float64), torch.tensor([3.0, -2.0], dtype=torch.float64)
    res = path_folding(net, x0, x1)
    fine = dedupe_walk(sampled_walk(net, x0, x1, 4001, include_output=True))
    assert torch.equal(res.walk, fine)


def test_path_folding_errors():
    net = random_net(0)
    with pytest.raises(ValueError, match="n_points"):
        path_folding(net, torch.zeros(2), torch.ones(2), n_points=1)
    with pytest.raises(ValueError, match="x0"):
        path_folding(net, torch.zeros(3), torch.ones(3))
    with pytest.raises(ValueError, match="equal shapes"):
        path_folding(net, torch.zeros(2), torch.ones(1, 2))
    with pytest.raises(ValueError, match="finite"):
        path_folding(net, torch.tensor([0.0, float("nan")]), torch.ones(2))


# ---------------------------------------------------------------- over a data set


def _toy_data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 2, generator=g, dtype=torch.float64) * 3
    y = torch.arange(40) % 3
    return x, y


def test_global_folding_matches_per_pair():
    net = random_net(7)
    x, y = _toy_data()
    res = global_folding(net, x, y, classes=(0, 2), budget=30, seed=1, memory_budget=2**20)
    assert res.pairs.shape == (30, 2) and len({tuple(p) for p in res.pairs.tolist()}) == 30
    assert (y[res.pairs[:, 0]] == 0).all() and (y[res.pairs[:, 1]] == 2).all()
    expected = [path_folding(net, x[i], x[j]).chi for i, j in res.pairs]
    np.testing.assert_allclose(res.chi, expected)
    assert res.value == aggregate_folding(expected, "median_positive")
    again = global_folding(net, x, y, classes=(0, 2), budget=30, seed=1)
    np.testing.assert_array_equal(again.pairs, res.pairs)
    grid = global_folding(net, x, y, classes=(0, 2), budget=30, seed=1, n_points=11)
    np.testing.assert_allclose(grid.chi, [path_folding(net, x[i], x[j], n_points=11).chi for i, j in grid.pairs])


def test_pair_strategies():
    x, y = _toy_data()
    all_pairs = draw_pairs(y, (0, 1), pairs="all", budget=10_000)
    assert len(all_pairs) == 14 * 13
    with pytest.raises(ValueError, match="pairs='random'"):
        draw_pairs(y, (0, 1), pairs="all", budget=10)
    cen = draw_pairs(y, (0, 1), pairs=PairStrategy.CENTROIDS, budget=10)
    assert len(cen) == 10 and ((cen == -1).sum(1) == 1).all()
    net = random_net(2)
    res = global_folding(net, x, y, classes=(0, 1), pairs="centroids", budget=6)
    means = [x[y == 0].mean(0), x[y == 1].mean(0)]
    for (i, j), chi in zip(res.pairs, res.chi):
        a = means[0] if i < 0 else x[i]
        b = means[1] if j < 0 else x[j]
        assert chi == pytest.approx(path_folding(net, a, b).chi)


def test_aggregators():
    chi = np.array([0.0, 0.0, 0.2, 0.4, 0.9])
    assert aggregate_folding(chi) == pytest.approx(0.4)
    assert aggregate_folding(chi, Aggregator.MEAN) == pytest.approx(0.3)
    assert aggregate_folding(chi, "max") == pytest.approx(0.9)
    assert aggregate_folding(chi, "share_folded") == pytest.approx(0.6)
    assert aggregate_folding(np.zeros(3)) == 0.0 and aggregate_folding([]) == 0.0
    with pytest.raises(ValueError, match="aggregator"):
        aggregate_folding(chi, "median")


def test_global_folding_errors():
    net = random_net(0)
    x, y = _toy_data()
    with pytest.raises(ValueError, match="does not occur"):
        global_folding(net, x, y, classes=(0, 7))
    with pytest.raises(ValueError, match="budget"):
        global_folding(net, x, y, classes=(0, 1), budget=0)
    with pytest.raises(ValueError, match="two different"):
        global_folding(net, x, y, classes=(1, 1))
    with pytest.raises(ValueError, match="pairs"):
        global_folding(net, x, y, classes=(0, 1), pairs="nearest")
    with pytest.raises(ValueError, match="one label per row"):
        global_folding(net, x, y[:-1], classes=(0, 1))


# ---------------------------------------------------------------- the differentiable surrogate


def test_soft_folding_tends_to_sampled_chi():
    from reluscope.folding import soft_folding

    net = random_net(11, widths=(2, 8, 8, 3))
    g = torch.Generator().manual_seed(2)
    x0, x1 = torch.randn(6, 2, generator=g, dtype=torch.float64) * 3, torch.randn(6, 2, generator=g, dtype=torch.float64) * 3
    soft = soft_folding(net, x0, x1, tau=1e-6, beta=1e-4, n_points=11)
    hard = [path_folding(net, a, b, n_points=11).chi for a, b in zip(x0, x1)]
    np.testing.assert_allclose(soft.detach().numpy(), hard, atol=1e-3)
    assert max(hard) > 0  # the comparison is not all zeros


@pytest.mark.parametrize("tau", [1e-3, 0.1, 0.5, 2.0, 10.0])
def test_soft_chi_of_a_walk_that_does_not_move_is_zero(tau):
    """Regression (issue 9): the soft distance sum p(1-q) + (1-p)q is not 0 for p = q, so x -> x got
    soft chi ~0.9. With sum |p - q| a motionless walk folds nothing, at every temperature."""
    from reluscope.folding import soft_folding

    net = random_net(3, widths=(2, 8, 8, 3))
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    np.testing.assert_array_equal(soft_folding(net, x, x.clone(), tau=tau).detach().numpy(), 0.0)


def test_soft_chi_tends_to_grid_chi_as_tau_goes_to_zero_with_default_beta():
    """Regression (issue 9): with the default smooth max (beta tied to tau) the surrogate is a
    faithful relaxation: soft chi -> the 11-point grid chi of the same walk as tau -> 0."""
    from reluscope.folding import soft_folding

    net = random_net(11, widths=(2, 8, 8, 3))
    g = torch.Generator().manual_seed(2)
    x0, x1 = torch.randn(8, 2, generator=g, dtype=torch.float64) * 3, torch.randn(8, 2, generator=g, dtype=torch.float64) * 3
    hard = np.array([path_folding(net, a, b, n_points=11).chi for a, b in zip(x0, x1)])
    errors = [np.abs(soft_folding(net, x0, x1, tau=tau).detach().numpy() - hard).max() for tau in (1e-1, 1e-2, 1e-6)]
    assert errors[-1] < 1e-3 and errors[-1] <= errors[0]
    assert hard.max() > 0  # the comparison is not all zeros


def test_folding_penalty_has_gradients_and_trains():
    from reluscope.folding import folding_loss, folding_penalty
    from reluscope.train import train_classifier

    net = random_net(4, widths=(2, 8, 8, 2)).float()
    x0, x1 = torch.randn(4, 2), torch.randn(4, 2)
    folding_penalty(net, x0, x1, tau=0.5).backward()
    grads = [p.grad for p in net.parameters()]
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads) and any(gr.abs().sum() > 0 for gr in grads)
    x, y = _toy_data()
    res = train_classifier(random_net(4, widths=(2, 8, 8, 3)).float(), x.float(), y, epochs=2,
                           extra_loss=folding_loss(0.1, n_pairs=4))
    assert res.steps > 0 and np.isfinite(res.history[-1].loss)
    with pytest.raises(ValueError, match="tau"):
        folding_penalty(net, x0, x1, tau=0)
    with pytest.raises(TypeError, match="no activation"):
        folding_penalty(torch.nn.Linear(2, 2), x0, x1, include_output=False)


def test_conv_net_single_image_and_batch():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Conv2d(2, 2, 3), torch.nn.ReLU(),
                              torch.nn.Flatten(), torch.nn.Linear(2 * 2 * 2, 3)).double().eval()
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(2, 1, 6, 6, generator=g, dtype=torch.float64).unbind(0)
    single = path_folding(net, a, b)
    one = path_folding(net, a[None], b[None])  # a batch of one is one input: same type back
    batch = path_folding_many(net, a[None], b[None])
    assert torch.equal(single.walk, one.walk) and torch.equal(single.walk, batch[0].walk)
    tr = traverse(net, a, b, include_output=True)
    assert float(tr.lengths.min()) > 2 / 4000  # so the grid below sees every region
    fine = dedupe_walk(sampled_walk(net, a, b, 4001, include_output=True))
    assert torch.equal(single.walk, fine) and len(fine) > 10


def test_one_pair_gives_one_result_and_batches_are_pointed_to_the_many_forms():
    """Issue 16.4: the same inputs give one return type; a batch of several is refused with the fix."""
    net = random_net(2)
    x = torch.tensor([[0.3, -0.2], [1.0, 2.0], [-1.5, 0.5]], dtype=torch.float64)
    one = path_folding(net, x[0:1], x[1:2])
    assert isinstance(one, PathFolding) and type(traverse(net, x[0:1], x[1:2])) is type(traverse(net, x[0], x[1]))
    with pytest.raises(ValueError, match="got a batch of 2 .*use traverse_many for batches"):
        traverse(net, x[:2], x[1:])
    assert isinstance(symmetric_folding(net, x[0:1], x[1:2]), float)
    with pytest.raises(ValueError, match="got a batch of 2 .*use path_folding_many for batches"):
        path_folding(net, x[:2], x[1:])
    with pytest.raises(ValueError, match="use path_folding_many"):
        symmetric_folding(net, x[:2], x[1:])
    many = path_folding_many(net, x[:2], x[1:])
    assert isinstance(many, list) and [r.chi for r in many] == [path_folding(net, a, b).chi for a, b in zip(x[:2], x[1:])]
    assert isinstance(interaction_effect(one.walk, 1), float) and interaction_effects(one.walk).shape == (one.n_patterns,)


def test_folding_on_a_residual_network_matches_the_sampled_region_key():
    """Graphs (residual addition, BatchNorm after it, cat, constant scalings): exact walks equal
    dense sampling of the key recorded from the user's own forward; symmetric and global folding
    agree with the per-pair walks."""
    from reluscope.testing.models import ResidualMLP, randomise_batchnorm
    from reluscope.testing.sampling import function_patterns

    torch.manual_seed(2)
    model = randomise_batchnorm(ResidualMLP(d=3, width=5)).eval().double()
    g = torch.Generator().manual_seed(3)
    x0, x1 = (torch.randn(2, 3, generator=g, dtype=torch.float64) * 3).unbind(0)
    res = path_folding(model, x0, x1)
    assert res.exact and float(np.diff(res.t).min()) > 2 / 4000  # the grid sees every region
    t = torch.linspace(0, 1, 4001, dtype=torch.float64)[:, None]
    fine = dedupe_walk(function_patterns(model, x0 + t * (x1 - x0), include_output=True))
    assert res.walk.shape[0] > 3 and torch.equal(res.walk, fine)
    assert res.chi == pytest.approx(chi_reference(fine.tolist()))
    assert symmetric_folding(model, x0, x1) == pytest.approx((res.chi + chi_reference(fine.flip(0).tolist())) / 2)
    x = torch.randn(30, 3, generator=g, dtype=torch.float64) * 3
    y = torch.arange(30) % 3
    glob = global_folding(model, x, y, classes=(0, 2), budget=12, seed=1)
    np.testing.assert_allclose(glob.chi, [path_folding(model, x[i], x[j]).chi for i, j in glob.pairs])


def test_path_chi_from_the_flat_traversal_equals_per_segment_walks():
    """path_chi measures exact walks straight from the batched traversal's flat arrays; it must
    give the chi and walk length of each segment's own walk, also for a degenerate segment and
    when a small memory budget makes many batches."""
    from reluscope.folding import path_chi
    from reluscope.patterns.walks import ragged_walk_extents, walk_extents

    net = random_net(11, widths=(2, 8, 8, 2))
    g = torch.Generator().manual_seed(4)
    x0, x1 = torch.randn(40, 2, generator=g, dtype=torch.float64) * 3, torch.randn(40, 2, generator=g, dtype=torch.float64) * 3
    x1[7] = x0[7]
    each = path_folding_many(net, x0, x1)
    chi, lengths = path_chi(net, x0, x1)
    np.testing.assert_allclose(chi, [r.chi for r in each], rtol=0, atol=1e-15)
    assert lengths.tolist() == [r.n_patterns for r in each] and lengths[7] == 1 and chi[7] == 0
    assert (chi > 0).any()
    small, small_len = path_chi(net, x0, x1, memory_budget=2**14)
    np.testing.assert_array_equal(small, chi)
    np.testing.assert_array_equal(small_len, lengths)
    grid, grid_len = path_chi(net, x0, x1, n_points=11, memory_budget=2**12)
    np.testing.assert_allclose(grid, [path_folding(net, a, b, n_points=11).chi for a, b in zip(x0, x1)])
    walks = [r.walk for r in each]
    ragged = ragged_walk_extents(torch.cat(walks), [w.shape[0] for w in walks])
    plain = walk_extents(walks)
    for field in ("end", "farthest", "length"):
        np.testing.assert_array_equal(getattr(ragged, field), getattr(plain, field))
