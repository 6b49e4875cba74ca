"""Bisection traversal: agrees with exact traversal on ReLU nets and with fine sampling on smooth ones."""

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from reluscope.testing.folding import dedupe_walk, sampled_walk
from reluscope.traversal import traverse
from reluscope.traversal.bisection import traverse_bisection

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def _net(seed, act=torch.nn.ReLU, widths=(3, 7, 7, 2)):
    torch.manual_seed(seed)
    mods = []
    for a, b in zip(widths[:-1], widths[1:]):
        mods += [torch.nn.Linear(a, b), act()]
    return torch.nn.Sequential(*mods[:-1]).double()


def _ends(seed, dim=3):
    g = torch.Generator().manual_seed(seed + 1)
    return (torch.randn(2, dim, generator=g, dtype=torch.float64) * 3).unbind(0)


@SETTINGS
@given(st.integers(0, 10_000), st.booleans())
def test_finds_what_exact_traversal_finds(seed, include_output):
    net = _net(seed)
    x0, x1 = _ends(seed)
    exact = traverse(net, x0, x1, include_output=include_output)
    n_init, tol = 128, 1e-9
    # every region longer than a grid step holds a grid point, so none can be stepped over
    assume(float(exact.lengths.min()) > 1 / n_init)
    bis = traverse_bisection(net, x0, x1, tol=tol, include_output=include_output, n_init=n_init)
    assert torch.equal(bis.patterns, exact.patterns)
    assert float((bis.t - exact.t).abs().max()) <= tol


@pytest.mark.parametrize("act", [torch.nn.GELU, torch.nn.SiLU, torch.nn.Tanh, torch.nn.Sigmoid])
def test_smooth_nets_match_fine_sampling(act):
    net = _net(1, act)
    x0, x1 = _ends(1)
    bis = traverse_bisection(net, x0, x1, tol=1e-8, n_init=32, include_output=True)
    fine = sampled_walk(net, x0, x1, 6001, include_output=True)
    assert torch.equal(bis.patterns, dedupe_walk(fine))
    # each boundary separates the two patterns within the tolerance
    for i, tb in enumerate(bis.t[1:-1].tolist()):
        left = sampled_walk(net, x0 + (tb - 1e-8) * (x1 - x0), x0 + (tb + 1e-8) * (x1 - x0), 2, include_output=True)
        assert torch.equal(left[0], bis.patterns[i]) and torch.equal(left[1], bis.patterns[i + 1])
    assert bis.t[0] == 0 and bis.t[-1] == 1 and bool((bis.t[1:] > bis.t[:-1]).all())


def test_depth_limit_and_constant_segment():
    net = _net(2)
    x0, x1 = _ends(2)
    coarse = traverse_bisection(net, x0, x1, max_depth=0, n_init=8)
    fine = traverse_bisection(net, x0, x1, n_init=8)
    assert coarse.patterns.shape[0] <= fine.patterns.shape[0]
    point = traverse_bisection(net, x0, x0)
    assert point.patterns.shape[0] == 1 and point.t.tolist() == [0.0, 1.0]


def test_bad_arguments():
    net = _net(0)
    x0, x1 = _ends(0)
    with pytest.raises(ValueError, match="tol"):
        traverse_bisection(net, x0, x1, tol=0)
    with pytest.raises(ValueError, match="n_init"):
        traverse_bisection(net, x0, x1, n_init=0)
    with pytest.raises(ValueError, match="max_depth"):
        traverse_bisection(net, x0, x1, max_depth=-1)
    with pytest.raises(ValueError, match="no batch dimension"):
        traverse_bisection(net, x0[None], x1[None])
    with pytest.raises(ValueError, match="equal shapes"):
        traverse_bisection(net, x0, x1[:2])
