"""dtype="float32-checked": float32 traversal checked in float64 gives the float64 answer."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

import reluscope.traversal.checked as checked
from reluscope.testing.models import ResidualMLP, randomise_batchnorm
from reluscope.traversal import Precision, traverse, traverse_many

T_TOL = 1e-10  # breakpoints: the same unit's root, computed from another midpoint


def assert_same(got, ref):
    assert torch.equal(got.offsets, ref.offsets)
    assert torch.equal(got.patterns, ref.patterns)
    assert float((got.t - ref.t).abs().max()) <= T_TOL
    assert torch.equal(got.uncertain, ref.uncertain)
    assert got.dtype == "float64" and got.tolerance == ref.tolerance


def _mlp(seed, in_dim, widths, slope):
    torch.manual_seed(seed)
    layers, d = [], in_dim
    for w in widths:
        layers += [nn.Linear(d, w), nn.LeakyReLU(slope) if slope else nn.ReLU()]
        d = w
    return nn.Sequential(*layers, nn.Linear(d, 3)).double().eval()


def _ends(seed, shape, n=4, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, *shape, generator=g, dtype=torch.float64) * scale,
            torch.randn(n, *shape, generator=g, dtype=torch.float64) * scale)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), in_dim=st.integers(1, 6), widths=st.lists(st.integers(1, 12), min_size=1, max_size=3),
       slope=st.sampled_from([0.0, 0.0, 0.1]), include_output=st.booleans(), twin=st.booleans())
def test_checked_float32_mlp_equals_float64(seed, in_dim, widths, slope, include_output, twin):
    model = _mlp(seed, in_dim, widths, slope)
    if twin and widths[0] > 1:  # a unit and its twin 1e-9 apart: slivers float32 cannot see, repaired
        with torch.no_grad():
            model[0].weight[1] = model[0].weight[0]
            model[0].bias[1] = model[0].bias[0] + 1e-9
    x0, x1 = _ends(seed, (in_dim,))
    ref = traverse_many(model, x0, x1, include_output=include_output)
    assert_same(traverse_many(model, x0, x1, include_output=include_output, dtype="float32-checked"), ref)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), include_output=st.booleans())
def test_checked_float32_residual_graph_equals_float64(seed, include_output):
    torch.manual_seed(seed)
    model = randomise_batchnorm(ResidualMLP()).double().eval()
    x0, x1 = _ends(seed, (3,))
    ref = traverse_many(model, x0, x1, include_output=include_output)
    assert_same(traverse_many(model, x0, x1, include_output=include_output, dtype=Precision.CHECKED_FLOAT32), ref)


def _spy_splice(monkeypatch):
    calls = []
    real = checked._splice

    def spy(*args):
        calls.append(int((~args[11]).sum()))  # ok: the rejected pieces
        return real(*args)

    monkeypatch.setattr(checked, "_splice", spy)
    return calls


def test_checked_float32_repairs_two_breakpoints_float32_merges(monkeypatch):
    # biases -0.5 and -0.5 - 1e-9 are one float32 number: float32 sees one breakpoint (2 pieces),
    # float64 two (a piece of length 1e-9 between them)
    model = nn.Sequential(nn.Linear(1, 2), nn.ReLU()).double()
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        model[0].bias.copy_(torch.tensor([-0.5, -0.5 - 1e-9], dtype=torch.float64))
    x0, x1 = torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64)
    assert traverse(copy.deepcopy(model).float(), x0.float(), x1.float(), dtype="model").n_pieces == 2
    calls = _spy_splice(monkeypatch)
    ref = traverse(model, x0, x1)
    got = traverse(model, x0, x1, dtype="float32-checked")
    assert calls == [1] and ref.n_pieces == got.n_pieces == 3
    assert torch.equal(got.patterns, ref.patterns)
    torch.testing.assert_close(got.t, ref.t, rtol=0, atol=T_TOL)
    assert float(got.lengths[1]) == pytest.approx(1e-9, rel=1e-6)


def test_checked_float32_repairs_a_sign_float32_rounds_away(monkeypatch):
    # z = relu(x + 1 + 1e-9) - relu(x + 1) - 5e-10 is +5e-10 in float64 on the whole segment,
    # but -5e-10 in float32 (1 + 1e-9 rounds to 1): float32's pattern is wrong on the only piece
    model = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1), nn.ReLU()).double()
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        model[0].bias.copy_(torch.tensor([1 + 1e-9, 1.0], dtype=torch.float64))
        model[2].weight.copy_(torch.tensor([[1.0, -1.0]], dtype=torch.float64))
        model[2].bias.fill_(-5e-10)
    x0, x1 = torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64)
    assert not bool(traverse(copy.deepcopy(model).float(), x0.float(), x1.float(), dtype="model").patterns[0, -1])
    calls = _spy_splice(monkeypatch)
    got = traverse(model, x0, x1, dtype="float32-checked")
    ref = traverse(model, x0, x1)
    assert calls == [1] and bool(ref.patterns[0, -1])
    assert torch.equal(got.patterns, ref.patterns) and torch.equal(got.t, ref.t)


def test_checked_float32_splices_a_rejected_run_between_accepted_pieces(monkeypatch):
    # many pieces; one close pair of breakpoints in the middle: only that run is traversed again
    model = nn.Sequential(nn.Linear(1, 8), nn.ReLU()).double()
    cuts = torch.tensor([0.1, 0.2, 0.3, 0.45, 0.45 + 1e-9, 0.6, 0.7, 0.9], dtype=torch.float64)
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        model[0].bias.copy_(-cuts)
    x0, x1 = torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64)
    calls = _spy_splice(monkeypatch)
    got, ref = traverse(model, x0, x1, dtype="float32-checked"), traverse(model, x0, x1)
    assert calls == [1] and got.n_pieces == ref.n_pieces == 9
    assert torch.equal(got.patterns, ref.patterns)
    torch.testing.assert_close(got.t, ref.t, rtol=0, atol=T_TOL)


def test_checked_float32_with_max_pooling_runs_in_float64(monkeypatch):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 2)).double()
    x0, x1 = _ends(1, (1, 4, 4), n=2)
    monkeypatch.setattr(checked, "_check", None)  # never reached: max-pooling goes straight to float64
    assert_same(traverse_many(model, x0, x1, dtype="float32-checked"), traverse_many(model, x0, x1))


def test_checked_float32_beyond_float32_range_runs_in_float64(monkeypatch):
    model = _mlp(0, 2, [4], 0.0)
    x0, x1 = _ends(2, (2,), n=2, scale=1e40)  # inf in float32
    monkeypatch.setattr(checked, "_check", None)
    assert_same(traverse_many(model, x0, x1, dtype="float32-checked"), traverse_many(model, x0, x1))
