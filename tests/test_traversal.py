"""Exact traversal against dense sampling (hook reference), ties, edge cases and bad input."""

from __future__ import annotations

import dataclasses
import warnings

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from reluscope.network import to_network
from reluscope.patterns import activation_patterns
from reluscope.testing.sampling import check_traversal
from reluscope.traversal import TOLERANCE, PrecisionWarning, Traversal, Traversals, traverse, traverse_many, traverse_pairs


def random_mlp(seed, in_dim, widths, *, slope=0.0, out_dim=3):
    torch.manual_seed(seed)
    layers, d = [], in_dim
    for w in widths:
        layers += [nn.Linear(d, w), nn.LeakyReLU(slope) if slope else nn.ReLU()]
        d = w
    layers.append(nn.Linear(d, out_dim))
    return nn.Sequential(*layers).double().eval()


def random_cnn(seed, *, pool_padding=1, slope=0.2):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, padding=pool_padding),
        nn.Conv2d(4, 3, 2), nn.LeakyReLU(slope), nn.AvgPool2d(2), nn.Flatten(), nn.LazyLinear(4),
    ).double()


def endpoints(seed, shape, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale,
            torch.randn(*shape, generator=g, dtype=torch.float64) * scale)


def assert_pieces_hold(model, tr: Traversal, x0, x1, include_output=False, seed=0):
    """Patterns at random interior points of every piece equal the piece's pattern."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(tr.n_pieces, 3, generator=g, dtype=torch.float64) * 0.8 + 0.1
    t = (tr.t[:-1, None] + u * tr.lengths[:, None]).reshape(-1)
    x = x0.unsqueeze(0) + t.reshape((-1,) + (1,) * x0.dim()) * (x1 - x0).unsqueeze(0)
    bits = activation_patterns(model, x, include_output=include_output)
    assert torch.equal(bits, tr.patterns.repeat_interleave(3, dim=0))


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    in_dim=st.integers(2, 10),
    widths=st.lists(st.integers(1, 12), min_size=1, max_size=3),
    slope=st.sampled_from([0.0, 0.0, 0.1]),
    include_output=st.booleans(),
)
def test_mlp_traversal_matches_dense_sampling(seed, in_dim, widths, slope, include_output):
    model = random_mlp(seed, in_dim, widths, slope=slope)
    x0, x1 = endpoints(seed, (in_dim,))
    tr = traverse(model, x0, x1, include_output=include_output)
    assert tr.t.dtype == torch.float64 and tr.t[0] == 0 and tr.t[-1] == 1
    assert bool((tr.lengths > TOLERANCE).all())
    check_traversal(tr, model, x0, x1, n=5000, include_output=include_output)
    assert_pieces_hold(model, tr, x0, x1, include_output, seed)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), pool_padding=st.sampled_from([0, 1]), include_output=st.booleans())
def test_cnn_traversal_matches_dense_sampling(seed, pool_padding, include_output):
    model = random_cnn(seed, pool_padding=pool_padding)
    x0, x1 = endpoints(seed, (2, 7, 7))
    model(x0.unsqueeze(0))  # materialise LazyLinear
    model.eval()
    tr = traverse(model, x0, x1, include_output=include_output)
    check_traversal(tr, model, x0, x1, n=4000, include_output=include_output)
    assert_pieces_hold(model, tr, x0, x1, include_output, seed)


def test_maxpool_with_dilation_and_stride():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.MaxPool2d(3, stride=2, dilation=2), nn.ReLU(),
                          nn.Flatten(), nn.Linear(27, 4)).double().eval()
    x0, x1 = endpoints(3, (1, 12, 12))
    tr = traverse(model, x0, x1, include_output=True)
    assert tr.n_pieces > 5
    check_traversal(tr, model, x0, x1, n=8000, include_output=True)


@pytest.mark.parametrize("seed", [0, 1])
def test_mnist_sized_input(seed):
    model = random_mlp(seed, 784, [16, 16], out_dim=10)
    x0, x1 = endpoints(seed, (784,), scale=1.0)
    tr = traverse(model, x0, x1, include_output=True)
    check_traversal(tr, model, x0, x1, n=20_000, include_output=True)
    assert_pieces_hold(model, tr, x0, x1, True, seed)


def test_hidden_units_only_by_default():
    model = random_mlp(5, 3, [4, 5])
    x0, x1 = endpoints(5, (3,))
    assert traverse(model, x0, x1).patterns.shape[1] == 9
    assert traverse(model, x0, x1, include_output=True).patterns.shape[1] == 12


# ---------------------------------------------------------------- ties and edge cases


def test_duplicate_units_cross_at_one_t():
    """Two units with equal weights cross together: one breakpoint, both bits flip at once."""
    model = random_mlp(7, 4, [6, 5])
    with torch.no_grad():
        model[0].weight[1] = model[0].weight[0]
        model[0].bias[1] = model[0].bias[0]
    x0, x1 = endpoints(7, (4,))
    tr = traverse(model, x0, x1)
    check_traversal(tr, model, x0, x1, n=5000)
    assert torch.equal(tr.patterns[:, 0], tr.patterns[:, 1])
    # the same net without the duplicate has the same breakpoints
    single = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 5), nn.ReLU()).double()
    with torch.no_grad():
        single[0].weight.copy_(model[0].weight[1:])
        single[0].bias.copy_(model[0].bias[1:])
        single[2].weight.copy_(model[2].weight[:, 1:])
        single[2].weight[:, 0] += model[2].weight[:, 0]
        single[2].bias.copy_(model[2].bias)
    torch.testing.assert_close(traverse(single, x0, x1).t, tr.t, rtol=0, atol=1e-12)


def test_distinct_units_crossing_at_the_same_point():
    """Different hyperplanes through one point of the segment: one breakpoint at t = 1/2."""
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU()).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0], [1.0, 1.0], [2.0, -1.0]]))
        net[0].bias.zero_()
    tr = traverse(net, torch.tensor([-1.0, -1.0]), torch.tensor([1.0, 1.0]))
    assert tr.t.tolist() == [0.0, 0.5, 1.0]
    assert tr.patterns.tolist() == [[False, False, False], [True, True, True]]


def line_net():
    """z(x) = x, x - 1 on a 1-D input: boundaries at x = 0 and x = 1."""
    net = nn.Sequential(nn.Linear(1, 2), nn.ReLU()).double()
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[0].bias.copy_(torch.tensor([0.0, -1.0]))
    return net


def test_segment_starting_and_ending_on_boundaries():
    net = line_net()
    tr = traverse(net, torch.tensor([0.0]), torch.tensor([1.0]))  # both ends on a boundary
    assert tr.t.tolist() == [0.0, 1.0] and tr.patterns.tolist() == [[True, False]]
    tr = traverse(net, torch.tensor([0.0]), torch.tensor([3.0]))
    assert tr.t.tolist() == pytest.approx([0.0, 1 / 3, 1.0], abs=1e-15)
    assert tr.patterns.tolist() == [[True, False], [True, True]]
    tr = traverse(net, torch.tensor([-1.0]), torch.tensor([0.0]))  # ends on a boundary
    assert tr.t.tolist() == [0.0, 1.0] and tr.patterns.tolist() == [[False, False]]


def test_unit_identically_zero_along_segment_never_splits():
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU()).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
        net[0].bias.zero_()
    # unit 0 is y = 0 along the whole segment
    tr = traverse(net, torch.tensor([-1.0, 0.0]), torch.tensor([1.0, 0.0]))
    assert tr.t.tolist() == [0.0, 0.5, 1.0]
    assert tr.patterns.tolist() == [[False, False], [False, True]]


def test_unit_touching_zero_without_crossing():
    """z2 = relu(x) + relu(-x) = |x| touches 0 at x = 0 only: its bit stays 1 on both pieces."""
    net = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1), nn.ReLU()).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0], [-1.0]]))
        net[0].bias.zero_()
        net[2].weight.fill_(1.0)
        net[2].bias.zero_()
    tr = traverse(net, torch.tensor([-1.0]), torch.tensor([1.0]))
    assert tr.t.tolist() == [0.0, 0.5, 1.0]
    assert tr.patterns.tolist() == [[False, True, True], [True, False, True]]


def test_x0_equal_x1_gives_one_piece():
    model = random_mlp(2, 5, [7, 7])
    x0, _ = endpoints(2, (5,))
    tr = traverse(model, x0, x0.clone(), include_output=True)
    assert tr.t.tolist() == [0.0, 1.0]
    assert torch.equal(tr.patterns, activation_patterns(model, x0[None], include_output=True))


def test_many_equals_single_and_all_pairs_order():
    model = random_mlp(4, 3, [8, 8])
    a, b = endpoints(4, (4, 3))
    given_pairs = traverse_many(model, a, b, batch_size=3)
    assert len(given_pairs) == 4
    for i, tr in enumerate(given_pairs):
        single = traverse(model, a[i], b[i])
        # Batched matmuls may round differently in the last bit; breakpoints agree to 1e-12.
        assert torch.allclose(tr.t, single.t, rtol=0, atol=1e-12)
        assert torch.equal(tr.patterns, single.patterns)
    every = traverse_many(model, a, b[:3], pairs="all", batch_size=5)
    assert len(every) == 12
    assert [tr.n_pieces for tr in traverse_pairs(model, a, b[:3])] == [tr.n_pieces for tr in every]
    for i in range(4):
        for j in range(3):
            single = traverse(model, a[i], b[j])
            assert torch.allclose(every[i * 3 + j].t, single.t, rtol=0, atol=1e-12)
            assert torch.equal(every[i * 3 + j].patterns, single.patterns)


def test_network_input_float32_model_and_batch_of_one():
    model = random_mlp(6, 4, [9]).float()
    x0, x1 = endpoints(6, (4,))
    tr = traverse(to_network(model), x0.float(), x1.float())
    assert tr.t.dtype == torch.float64
    again = traverse(model, x0[None].float(), x1[None].float())
    assert torch.equal(tr.t, again.t)
    check_traversal(tr, model.double(), x0.float().double(), x1.float().double(), n=4000)


def test_traversal_is_frozen():
    tr = traverse(line_net(), torch.tensor([-1.0]), torch.tensor([2.0]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        tr.t = torch.zeros(2)
    assert tr.n_pieces == len(tr) == 3
    torch.testing.assert_close(tr.midpoints, (tr.t[1:] + tr.t[:-1]) / 2)


# ---------------------------------------------------------------- bad input


def test_bad_inputs_raise_clear_errors():
    model = random_mlp(0, 4, [5])
    x = torch.randn(4, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"x1: expected the shape of x0 \[4\], got \[5\]"):
        traverse(model, x, torch.randn(5))
    with pytest.raises(ValueError, match="x0: expected one input of shape \\[4\\]"):
        traverse(model, torch.randn(3), torch.randn(3))
    with pytest.raises(ValueError, match="traverse_many"):
        traverse(model, torch.randn(2, 4), torch.randn(2, 4))
    with pytest.raises(ValueError, match="x1: expected finite values"):
        traverse(model, x, torch.full((4,), float("nan")))
    with pytest.raises(ValueError, match="pairs"):
        traverse_many(model, x[None], x[None], pairs="some")
    with pytest.raises(ValueError, match="pairs='all'"):
        traverse_many(model, torch.randn(3, 4), torch.randn(2, 4))
    with pytest.raises(ValueError, match="x1: expected a batch"):
        traverse_many(model, torch.randn(3, 4), torch.randn(3, 5))
    with pytest.raises(ValueError, match="batch_size"):
        traverse_many(model, torch.randn(3, 4), torch.randn(3, 4), batch_size=0)
    dropout = nn.Sequential(nn.Linear(4, 5), nn.Dropout(0.3), nn.ReLU())
    with pytest.raises(ValueError, match="training mode"):
        traverse(dropout, x, x)
    gelu = nn.Sequential(nn.Linear(4, 5), nn.GELU()).eval()
    with pytest.raises(TypeError, match="traverse_bisection"):
        traverse(gelu, x, x)
    with pytest.raises(TypeError, match="traverse_bisection"):
        traverse_many(gelu, x[None], x[None])


def test_invariant_checker_catches_a_missed_region():
    """The reference must be able to fail: drop one breakpoint or swap two pieces."""
    model = random_mlp(9, 3, [6, 6])
    x0, x1 = endpoints(9, (3,))
    tr = traverse(model, x0, x1)
    assert tr.n_pieces >= 3
    missed = Traversal(torch.cat([tr.t[:1], tr.t[2:]]), tr.patterns[1:])
    with pytest.raises(AssertionError, match="disagree"):
        check_traversal(missed, model, x0, x1, n=5000)
    swapped = Traversal(tr.t, tr.patterns[[1, 0] + list(range(2, tr.n_pieces))])
    with pytest.raises(AssertionError):
        check_traversal(swapped, model, x0, x1, n=5000)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    in_dim=st.integers(1, 4),
    widths=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    include_output=st.booleans(),
)
def test_integer_nets_with_many_exact_ties(seed, in_dim, widths, include_output):
    """Weights and biases in {-1, 0, 1} and integer endpoints: many units cross at the same t,
    segments start and end on boundaries, some units are identically zero.

    Regression (seed=194, in_dim=1, widths=[6, 3]): a layer-2 unit equal to (x-1) - (x+1) + 2 = 0
    on a whole piece evaluates to +-1e-16 at some sample points; such bits are decided by rounding
    and are not compared (zero_tol) - see the module docstring of reluscope.traversal.exact."""
    g = torch.Generator().manual_seed(seed)
    model = random_mlp(seed, in_dim, widths, out_dim=2)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randint(-1, 2, p.shape, generator=g).double())
    x0 = torch.randint(-2, 3, (in_dim,), generator=g).double()
    x1 = torch.randint(-2, 3, (in_dim,), generator=g).double()
    tr = traverse(model, x0, x1, include_output=include_output)
    check_traversal(tr, model, x0, x1, n=2001, include_output=include_output, zero_tol=1e-12)


def test_traverse_on_a_batch_of_conv_inputs_points_to_traverse_many():
    """Issue 16.4: a conv net without input_shape used to fail with a matrix-shape error."""
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(2 * 4 * 4, 2)).double()
    x = torch.randn(2, 1, 6, 6, dtype=torch.float64)
    with pytest.raises(ValueError, match="x0: expected one input, got a batch of 2 .*use traverse_many for batches"):
        traverse(net, x, x.flip(0))
    assert traverse(net, x[:1], x[1:]).n_pieces == traverse(net, x[0], x[1]).n_pieces
@pytest.mark.parametrize("seed", [0, 1])
def test_streamed_pieces_within_a_small_memory_budget_agree(seed, monkeypatch):
    """A budget of a few pieces forces the depth-first chunking at every activation (ReLU splits
    applied in chunks, max-pool splitting resumed per chunk, chunk ends merged): the result must
    be the one computed at once, and agree with dense sampling. (The dense engine's chunks: the
    sparse front runs only within budgets it fits, tests/test_traversal_front.py.)"""
    from reluscope.network import to_network
    from reluscope.traversal import _front
    from reluscope.traversal.exact import _bytes_per_piece

    monkeypatch.setattr(_front, "ENABLED", False)

    model = random_cnn(seed, pool_padding=seed)
    x0, x1 = endpoints(seed, (2, 7, 7), scale=3.0)
    model(x0.unsqueeze(0))
    model.eval()
    whole = traverse(model, x0, x1, include_output=True)
    per_piece = _bytes_per_piece(to_network(model).with_input_shape((2, 7, 7)).to(dtype=torch.float64), x0[None], True)
    small = traverse(model, x0, x1, include_output=True, memory_budget=3 * per_piece)
    assert whole.n_pieces > 6  # enough pieces for chunks of 3 to matter
    assert torch.equal(small.t, whole.t) and torch.equal(small.patterns, whole.patterns)
    check_traversal(small, model, x0, x1, n=4000, include_output=True)
    many = traverse_many(model, torch.stack([x0, x1]), torch.stack([x1, -x0]), memory_budget=3 * per_piece)
    assert torch.equal(many[0].patterns, traverse(model, x0, x1).patterns)


def test_convolutions_of_many_pieces_run_in_chunks_within_the_budget(monkeypatch):
    """Regression (issue 11.5): torch's float64 convolution unfolds its whole batch (in_channels *
    kh * kw values per output position), so convolving every piece at once took the tangent CNN
    at width 32 to 9 GB against a 2 GiB budget. Pieces now go through a convolution in chunks
    whose unfolded buffer fits a quarter of the budget, with the same result."""
    from reluscope.network.layers import Conv2d
    from reluscope.traversal._refine import _affine_pieces

    torch.manual_seed(0)
    layer = to_network(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1)).double()).layers[0]
    h, dh = torch.randn(50, 3, 6, 6, dtype=torch.float64), torch.randn(50, 3, 6, 6, dtype=torch.float64)
    unfolded = 3 * 3 * 3 * 6 * 6 * 8  # bytes per piece
    seen = []
    real = Conv2d.forward
    monkeypatch.setattr(Conv2d, "forward", lambda self, x: seen.append(x.shape[0] if x.shape[1] != 4 else 0) or real(self, x))
    out, dout = _affine_pieces(layer, h, dh, budget=4 * 7 * unfolded)
    assert max(seen) == 7 and sum(seen[1:]) == 50  # seen[0] is the shape probe
    assert torch.equal(out, real(layer, h))
    assert torch.equal(dout, layer.linear(dh))
    model = random_cnn(4, pool_padding=0)
    x0, x1 = endpoints(4, (2, 7, 7), scale=3.0)
    model(x0.unsqueeze(0))
    model.eval()
    whole = traverse(model, x0, x1, include_output=True)
    seen.clear()
    small = traverse(model, x0, x1, include_output=True, memory_budget=4 * 2 * (2 * 9 * 7 * 7 * 8))
    assert max(seen) <= 2 < whole.n_pieces  # the first conv (2 -> 4 channels, 7x7): 2 pieces a call
    assert torch.equal(small.t, whole.t) and torch.equal(small.patterns, whole.patterns)


# ---------------------------------------------------------------- graphs (residual networks)

GRAPH_MODELS = {
    "resnet-basic": (lambda: _models().tiny_resnet(width=2, in_channels=2), (2, 5, 5)),
    "resnet-bottleneck": (lambda: _models().tiny_resnet(_models().Bottleneck, width=1, in_channels=2), (2, 5, 5)),
    "vgg": (lambda: _models().tiny_vgg(widths=(2, "M", 3, "M"), in_channels=2), (2, 6, 6)),
    "lenet-functional": (lambda: _models().LeNetFunctional(width=2, size=10), (1, 10, 10)),
    "residual-mlp": (lambda: _models().randomise_batchnorm(_models().ResidualMLP()).eval(), (3,)),
}


def _models():
    import reluscope.testing.models as models

    return models


def _graph_model(name):
    make, shape = GRAPH_MODELS[name]
    return make().double().eval(), shape


@pytest.mark.parametrize("name", sorted(GRAPH_MODELS))
def test_graph_traversal_matches_dense_sampling_of_the_independent_key(name):
    """Residual blocks (BasicBlock, Bottleneck with 1x1 downsample, BN after the addition),
    adaptive pooling, functional relu / max_pool2d and view: every sample's key (signs of every
    activation input and argmax of every window, recorded from the user's own forward) is the
    pattern of its piece."""
    model, shape = _graph_model(name)
    assert not to_network(model, input_shape=shape).is_chain or name in ("vgg", "lenet-functional")
    x0, x1 = endpoints(3, shape, scale=2.0)
    include_output = name in ("resnet-basic", "residual-mlp")
    tr = traverse(model, x0, x1, include_output=include_output)
    assert tr.n_pieces > 3
    check_traversal(tr, model, x0, x1, n=1500, include_output=include_output, key="functions")


def test_graph_traversal_streamed_within_a_small_memory_budget_agrees():
    """The depth-first chunking splits every live value (the shortcut too), so a budget of eight
    pieces (of 47) gives the one-shot result."""
    from reluscope.traversal.exact import _bytes_per_piece

    model, shape = _graph_model("resnet-basic")
    x0, x1 = endpoints(4, shape, scale=2.0)
    whole = traverse(model, x0, x1, include_output=True)
    net = to_network(model, input_shape=shape).to(dtype=torch.float64)
    small = traverse(model, x0, x1, include_output=True, memory_budget=8 * _bytes_per_piece(net, x0[None], True))
    assert whole.n_pieces > 16
    assert torch.equal(small.t, whole.t) and torch.equal(small.patterns, whole.patterns)
    many = traverse_many(model, torch.stack([x0, x1]), torch.stack([x1, -x0]))
    assert torch.equal(many[0].patterns, whole.patterns[:, : many[0].patterns.shape[1]].unique_consecutive(dim=0))


class _Residual(nn.Module):
    """h -> h + scale * act(block(h)) blocks; optionally the pre-activation is read again, or the
    activation reads a view of a value that stays live (in-place jvp would corrupt it)."""

    def __init__(self, width, depth, slope, scale, reuse, view):
        super().__init__()
        self.inp = nn.Linear(2, width)
        self.blocks = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.out = nn.Linear(2 * width, 2)
        self.slope, self.scale, self.reuse, self.view = slope, scale, reuse, view

    def forward(self, x):
        import torch.nn.functional as F

        h = self.inp(x)
        for block in self.blocks:
            z = block(h.view(h.size(0), -1)) if self.view else block(h)
            r = F.leaky_relu(z, self.slope)
            h = h + self.scale * r + (0.5 * z if self.reuse else 0.0)
        a = F.relu(h.view(h.size(0), -1)) if self.view else F.relu(h)
        return self.out(torch.cat([a, F.relu(-h - 0.5)], 1))  # h is read again after the ReLU


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    width=st.integers(1, 5),
    depth=st.integers(1, 3),
    slope=st.sampled_from([0.0, 0.1]),
    scale=st.floats(-2, 2, allow_nan=False),
    reuse=st.booleans(),
    view=st.booleans(),
    include_output=st.booleans(),
)
def test_random_residual_mlps_traverse_exactly(seed, width, depth, slope, scale, reuse, view, include_output):
    torch.manual_seed(seed)
    model = _Residual(width, depth, slope, scale, reuse, view).double().eval()
    x0, x1 = endpoints(seed, (2,), scale=3.0)
    tr = traverse(model, x0, x1, include_output=include_output)
    check_traversal(tr, model, x0, x1, n=1001, include_output=include_output, key="functions", zero_tol=None)
    assert torch.equal(tr.patterns, activation_patterns(model, x0[None] + tr.midpoints[:, None] * (x1 - x0)[None],
                                                        include_output=include_output))


def test_activation_reading_a_view_of_a_live_value_is_not_computed_in_place():
    """relu(h.view(...)) while h is still read later (by relu(-h - 0.5)): the view shares h's
    memory, so the jvp must not overwrite it. A short segment makes no split (a split copies every
    value), which is when the shared memory would be overwritten."""
    torch.manual_seed(1)
    model = _Residual(3, 1, 0.0, 1.0, False, True).double().eval()
    x0 = torch.tensor([1.0, -1.0], dtype=torch.float64)
    x1 = x0 + 1e-6
    g = model.inp(x0[None])
    assert bool((g + torch.relu(model.blocks[0](g)) < -0.5).any())  # relu(-h - 0.5) has a bit that a clobbered h would switch off
    tr = traverse(model, x0, x1, include_output=True)
    assert tr.n_pieces == 1
    assert torch.equal(tr.patterns, activation_patterns(model, ((x0 + x1) / 2)[None], include_output=True))


def test_bytes_per_piece_counts_the_shortcut_held_across_a_block():
    from reluscope.traversal.exact import _bytes_per_piece

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp, self.fc = nn.Linear(2, 100), nn.Linear(100, 100)

        def forward(self, x):
            h = self.inp(x)
            return h + torch.relu(self.fc(h))

    net = to_network(Block().double(), input_shape=(2,))
    # at the ReLU: the shortcut h and the pre-activation are live, old and new pieces, h and dh each
    assert _bytes_per_piece(net, torch.zeros(1, 2, dtype=torch.float64), True) >= 8 * (4 * 200 + 2 * 100)


# ---------------------------------------------------------------- the batched (ragged) result, tolerance, batches


def test_traversals_is_a_flat_sequence_of_per_segment_views():

    model = random_mlp(5, 3, [8, 8])
    a, b = endpoints(5, (5, 3))
    b[2] = a[2]  # a degenerate segment: one piece
    many = traverse_many(model, a, b, include_output=True)
    assert isinstance(many, Traversals) and len(many) == 5
    singles = [traverse(model, a[i], b[i], include_output=True) for i in range(5)]
    assert many.n_pieces.tolist() == [s.n_pieces for s in singles] and many.n_pieces[2] == 1
    assert many.patterns.shape[0] == int(many.offsets[-1]) and many.t.shape[0] == int(many.offsets[-1]) + 5
    for i, (tr, single) in enumerate(zip(many, singles)):
        assert torch.allclose(tr.t, single.t, rtol=0, atol=1e-12) and torch.equal(tr.patterns, single.patterns)
        assert tr.t.data_ptr() == many.t[int(many.offsets[i]) + i:].data_ptr()  # a view, not a copy
    assert torch.equal(many[-1].patterns, many[4].patterns) and [t.n_pieces for t in many[1:3]] == many.n_pieces[1:3].tolist()
    assert torch.equal(many.segment, torch.repeat_interleave(torch.arange(5), many.n_pieces))
    with pytest.raises(IndexError, match="out of range"):
        many[5]
    joined = Traversals.concat([traverse_many(model, a[:2], b[:2], include_output=True),
                                traverse_many(model, a[2:], b[2:], include_output=True)])
    assert torch.equal(joined.offsets, many.offsets) and torch.equal(joined.patterns, many.patterns)
    torch.testing.assert_close(joined.t, many.t, rtol=0, atol=1e-12)


def test_patterns_are_stored_packed_and_joined_across_chunks_unchanged(monkeypatch):
    """Issue 11.5: one segment of the tangent CNN at width 64 has ~20,000 pieces of ~97,000 bits
    (1.9 GiB as bool, held three times while chunks were joined). Results now store the bits
    packed (`packed`, eight to a byte), packed a few rows at a time, and chunk results are joined
    with one copy: the same patterns as bool (read through `patterns`), with or without chunks."""
    import reluscope.traversal._pieces as pieces
    from reluscope.patterns import PackedPatterns
    from reluscope.traversal import _front
    from reluscope.traversal.exact import _bytes_per_piece

    monkeypatch.setattr(_front, "ENABLED", False)  # the dense engine's chunks (the front's: test_traversal_front)

    model = random_cnn(3, pool_padding=1)
    x0, x1 = endpoints(3, (2, 7, 7), scale=3.0)
    model(x0.unsqueeze(0))
    model.eval()
    whole = traverse(model, x0, x1, include_output=True)
    units = whole.n_units
    assert isinstance(whole.packed, PackedPatterns) and whole.packed.words.dtype == torch.uint8
    assert whole.packed.words.shape == (whole.n_pieces, (units + 7) // 8) and whole.patterns.shape == (whole.n_pieces, units)
    assert_pieces_hold(model, whole, x0, x1, include_output=True)
    monkeypatch.setattr(pieces, "_PACK_CHUNK", 3 * units)  # three rows packed at a time
    per_piece = _bytes_per_piece(to_network(model).with_input_shape((2, 7, 7)).to(dtype=torch.float64), x0[None], True)
    small = traverse(model, x0, x1, include_output=True, memory_budget=3 * per_piece)
    assert whole.n_pieces > 6 and torch.equal(small.packed.words, whole.packed.words) and torch.equal(small.t, whole.t)
    bits = torch.rand(5, 13) > 0.5  # a bool constructor argument is packed; patterns read back equal
    tr = Traversal(torch.linspace(0, 1, 6, dtype=torch.float64), bits)
    assert torch.equal(tr.patterns, bits) and tr.packed.words.shape == (5, 2) and tr.n_pieces == 5
    with pytest.raises(TypeError, match="exactly one of patterns"):
        Traversal(tr.t, bits, packed=tr.packed)
    with pytest.raises(TypeError, match=r"patterns: expected a bool tensor \[N, units\], got torch.uint8"):
        Traversal(tr.t, bits.to(torch.uint8))  # regression: the error named `bits`, no argument of Traversal


def test_tolerance_is_a_keyword_with_the_module_default():
    """Two units crossing 1e-9 apart in t: resolved at the default 1e-12, one breakpoint at 1e-6."""
    net = nn.Sequential(nn.Linear(1, 2), nn.ReLU()).double()
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[0].bias.copy_(torch.tensor([-0.5, -0.5 - 1e-9], dtype=torch.float64))
    x0, x1 = torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64)
    fine = traverse(net, x0, x1)
    assert fine.n_pieces == 3 and fine.tolerance == TOLERANCE
    coarse = traverse(net, x0, x1, tolerance=1e-6)
    assert coarse.n_pieces == 2 and coarse.tolerance == 1e-6
    assert traverse_many(net, x0[None], x1[None], tolerance=1e-6)[0].n_pieces == 2
    assert traverse_pairs(net, x0[None], x1[None], tolerance=1e-6)[0].n_pieces == 2
    for bad in (0.0, -1e-3, 0.5, float("nan"), "1e-9"):
        with pytest.raises(ValueError, match="tolerance: expected a resolution in t"):
            traverse(net, x0, x1, tolerance=bad)


def test_batches_grow_with_the_memory_budget_not_a_fixed_64(monkeypatch):
    import reluscope.traversal.exact as exact

    model = random_mlp(1, 2, [3])
    x0, x1 = endpoints(1, (300, 2))
    sizes = []
    real = exact._traverse_chunk
    monkeypatch.setattr(exact, "_traverse_chunk", lambda net, a, b, *rest: sizes.append(len(a)) or real(net, a, b, *rest))
    reference = [traverse(model, x0[i], x1[i]) for i in range(300)]
    sizes.clear()
    got = traverse_many(model, x0, x1)
    assert max(sizes) > 64 and sum(sizes) == 300
    assert all(torch.equal(g.patterns, r.patterns) for g, r in zip(got, reference))
    sizes.clear()
    traverse_many(model, x0, x1, batch_size=5)
    assert max(sizes) == 5
    # on a GPU the batch also fits its free memory
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (1000, 10**9))
    assert exact._free_bytes(torch.device("cuda"), 10**6) == 800
    assert exact._free_bytes(torch.device("cpu"), 10**6) == 10**6


def test_traverse_batches_yields_traverse_many_batch_by_batch():
    """The public streaming entry (path_chi's): the batches, concatenated, are traverse_many's
    result, and a small budget makes several batches; bad options are refused at the call."""
    from reluscope.traversal import Traversals, traverse_batches

    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 1)).double()
    g = torch.Generator().manual_seed(3)
    x0, x1 = torch.randn(6, 3, generator=g, dtype=torch.float64), torch.randn(6, 3, generator=g, dtype=torch.float64)
    whole = traverse_many(model, x0, x1, include_output=True, batch_size=2)
    parts = list(traverse_batches(model, x0, x1, include_output=True, batch_size=2))
    assert len(parts) > 1 and [len(p) for p in parts][:2] == [1, 2]  # the first batch is one segment, then doubles
    joined = Traversals.concat(parts)
    for a, b in zip(joined, whole):
        assert torch.equal(a.t, b.t) and torch.equal(a.patterns, b.patterns)
    with pytest.raises(ValueError, match="pairs = 'given' needs as many rows"):
        traverse_batches(model, x0, x1[:2])


@pytest.mark.parametrize("kind", ["Traversal", "Traversals"])
def test_result_files_saved_with_bool_patterns_still_load(tmp_path, kind):
    """Regression: files saved before patterns were packed hold a `patterns` field (bool) and no
    `packed`; load dropped the field it did not know and the constructor refused ("expected exactly
    one of patterns ... and packed"), although FORMAT_VERSION did not change."""
    import json

    import numpy as np

    from reluscope.results import load_result

    t = torch.tensor([0.0, 0.25, 1.0], dtype=torch.float64)
    bits = torch.tensor([[True, False, True], [False, False, True]])
    fields = {"t": {"__tensor__": "a0", "dtype": "float64"}, "patterns": {"__tensor__": "a1", "dtype": "bool"},
              "dtype": "float64", "tolerance": 1e-12, "uncertain": None}
    arrays = {"a0": t.numpy(), "a1": bits.numpy()}
    if kind == "Traversals":
        fields["offsets"] = {"__tensor__": "a2", "dtype": "int64"}
        arrays["a2"] = np.array([0, 2])
    meta = {"format": 1, "value": {"__dataclass__": f"reluscope.traversal.results:{kind}", "fields": fields}}
    path = tmp_path / "old.npz"
    np.savez(path, **arrays, __result__=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    loaded = load_result(path)
    assert type(loaded).__name__ == kind and torch.equal(loaded.patterns, bits) and torch.equal(loaded.t, t)


def test_concat_refuses_traversals_of_networks_with_different_unit_counts():
    # regression: 10 and 12 units both pack into 2 bytes a row, so torch.cat joined them silently
    torch.manual_seed(0)
    a, b = torch.randn(2, 2, dtype=torch.float64), torch.randn(2, 2, dtype=torch.float64)
    small = nn.Sequential(nn.Linear(2, 10), nn.ReLU(), nn.Linear(10, 1)).double()
    large = nn.Sequential(nn.Linear(2, 12), nn.ReLU(), nn.Linear(12, 1)).double()
    parts = [traverse_many(small, a, b), traverse_many(large, a, b)]
    with pytest.raises(ValueError, match=r"parts: expected traversals of one network, got patterns of \[10, 12\] units"):
        Traversals.concat(parts)
    assert len(Traversals.concat([parts[0], traverse_many(small, b, a)])) == 4


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), pool_padding=st.sampled_from([0, 1]), dilation=st.sampled_from([1, 2]),
       stride=st.sampled_from([1, 2, 3]), include_output=st.booleans())
def test_compiled_max_pool_passes_equal_torchs_bit_for_bit(seed, pool_padding, dilation, stride, include_output):
    """The max-pool passes compiled with numba (`_maxpool_nb`) against the torch passes, on the
    dense engine: the same breakpoints, patterns and uncertain flags, bit for bit."""
    pytest.importorskip("numba")
    from reluscope.traversal import _front, _maxpool

    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(),
                          nn.MaxPool2d(3, stride=stride, padding=pool_padding, dilation=dilation),
                          nn.Flatten(), nn.LazyLinear(4)).double()
    x0, x1 = endpoints(seed, (2, 9, 9), scale=3.0)
    x0[:, :2] = x1[:, :2] = 0.0  # zero rows: exact ties after the ReLU
    model(x0.unsqueeze(0))
    model.eval()
    enabled = _front.ENABLED
    try:
        _front.ENABLED = False
        compiled = traverse(model, x0, x1, include_output=include_output)
        _maxpool.COMPILED = False
        plain = traverse(model, x0, x1, include_output=include_output)
    finally:
        _maxpool.COMPILED, _front.ENABLED = True, enabled
    assert torch.equal(compiled.t, plain.t) and torch.equal(compiled.packed.words, plain.packed.words)
    assert torch.equal(compiled.uncertain, plain.uncertain)


@pytest.mark.parametrize("compiled", [True, False])
def test_max_pool_lines_equal_up_to_rounding_do_not_split_forever(compiled):
    """Regression (fuzz of the front's rows hand-over, seed 246): two window elements whose values
    are equal to the last bit at every midpoint but whose slopes differ (here by 1e-20 on values
    of 1e6) met "at the midpoint" again after every split, so the dense engine halved the pieces
    until it gave up ("max-pool splitting did not settle"; 16 GB in the fuzz). Lines within
    rounding of each other over the piece are not a crossing: one piece, flagged uncertain."""
    from reluscope.traversal import _front, _maxpool

    if compiled:
        pytest.importorskip("numba")
    conv = nn.Conv2d(1, 1, 1).double()
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.fill_(1e6)
    model = nn.Sequential(conv, nn.MaxPool2d((1, 2)), nn.Flatten(), nn.Linear(1, 1).double()).eval()
    x0 = torch.zeros(1, 1, 2, dtype=torch.float64)
    x1 = torch.tensor([[[1e-20, 2e-20]]], dtype=torch.float64)
    enabled = _front.ENABLED
    try:
        _front.ENABLED, _maxpool.COMPILED = False, compiled
        with pytest.warns(PrecisionWarning):
            got = traverse(model, x0, x1)
    finally:
        _maxpool.COMPILED, _front.ENABLED = True, enabled
    assert got.n_pieces == 1 and bool(got.uncertain.all())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("spread", [0.02, 0.03])
def test_max_pool_crossings_in_half_precision_are_not_left_out(dtype, spread):
    """Regression (review of the rule above): in bfloat16 a crossing whose lines part by 2-4 ulps
    over the piece was left out as "within rounding" while the near-tie check, at 2 ulps in
    half precision, did not flag the piece: one certain piece where sampling the model shows the
    argmax switch. The rule stays below half the decision tolerance of the dtype."""
    model = nn.Sequential(nn.Conv2d(1, 1, 1), nn.MaxPool2d((1, 2)), nn.Flatten(), nn.Linear(1, 1)).to(dtype).eval()
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        model[0].bias.zero_()
    eps = torch.finfo(dtype).eps
    x0 = torch.tensor([[[1.0, 1 - eps - spread]]]).to(dtype)
    x1 = torch.tensor([[[1.0, 1 - eps + spread]]]).to(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrecisionWarning)
        got = traverse(model, x0, x1, dtype="model")
    ts = torch.linspace(0, 1, 101, dtype=dtype)
    with torch.no_grad():
        argmax = torch.stack([model[0](x0 + t * (x1 - x0))[0, 0].argmax() for t in ts])
    switches = int((argmax[1:] != argmax[:-1]).sum())
    assert switches == 1 and (got.n_pieces == 2 or bool(got.uncertain.any()))
