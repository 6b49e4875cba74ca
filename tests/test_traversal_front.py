"""The sparse front of exact traversal (`traversal._front`): the first convolutional layers unit by
unit, against the dense engine alone and against dense sampling of the independent hook key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from reluscope.network import Network, to_network
from reluscope.network.layers import ChannelAffine, Conv2d, Flatten, Linear, ReLU
from reluscope.testing.sampling import check_traversal
from reluscope.traversal import _front, traverse, traverse_many

pytest.importorskip("numba")


@pytest.fixture
def always_sparse(monkeypatch):
    """Every convolution the front can take goes sparse (small nets would otherwise run dense)."""
    monkeypatch.setattr(_front, "_SPARSE_RECORD_COST", 0.0)


@pytest.fixture(params=["sparse", "rows"])
def handover(request, monkeypatch):
    """Every convolution of the front sparse (as `always_sparse`), or the second one handed over
    as dense rows (rows come only after a sparse convolution; the models add a third convolution
    for it, `cnn(..., third=True)`)."""
    monkeypatch.setattr(_front, "_SPARSE_RECORD_COST", 0.0)
    if request.param == "rows":
        monkeypatch.setattr(_front, "FORCED", {1: "rows"})
    return request.param


def dense(model, x0, x1, **options):
    """The dense engine alone: the reference the front must reproduce."""
    enabled = _front.ENABLED
    _front.ENABLED = False
    try:
        return traverse(model, x0, x1, **options)
    finally:
        _front.ENABLED = enabled


def used_front(model, x0, x1, **options):
    _front.TRACE = []
    try:
        out = traverse(model, x0, x1, **options)
        took = any(mode != "dense" for *_, mode in _front.TRACE)
    finally:
        _front.TRACE = None
    return out, took


def assert_front_matches(model, x0, x1, *, n=3000, **options):
    """The front runs, gives the dense engine's answer and agrees with dense sampling."""
    got, took = used_front(model, x0, x1, **options)
    assert took
    assert_same(got, dense(model, x0, x1, **options))
    check_traversal(got, model, x0, x1, n=n, include_output=options.get("include_output", False))
    return got


def assert_same(a, b, tol=1e-9):
    assert a.n_pieces == b.n_pieces
    assert float((a.t - b.t).abs().max()) < tol
    assert torch.equal(a.packed.words, b.packed.words)
    assert torch.equal(a.uncertain, b.uncertain)


def cnn(seed, *, c=2, widths=(4, 3), k=(3, 2), stride=1, padding=(1, 0), dilation=1, groups=1, pool=True,
        pool_padding=0, slope=0.0, batchnorm=False, third=False):
    torch.manual_seed(seed)
    act = (lambda: nn.LeakyReLU(slope)) if slope else nn.ReLU
    layers = [nn.Conv2d(c, widths[0], k[0], padding=padding[0]), act()]
    if pool:
        layers.append(nn.MaxPool2d(2, padding=pool_padding))
    layers += [nn.Conv2d(widths[0], widths[1], k[1], stride=stride, padding=padding[1], dilation=dilation,
                         groups=groups)]
    if batchnorm:
        bn = nn.BatchNorm2d(widths[1])
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(-2, 2)
        layers.append(bn)
    layers.append(act())
    if third:  # a third convolution (and activation), for the rows hand-over after a sparse one
        layers += [nn.Conv2d(widths[1], 2, 2, padding=1), act()]
    side = nn.Sequential(*layers).double()(torch.zeros(1, c, 12, 12, dtype=torch.float64)).shape[-1]
    if side >= 2:  # a second max-pool where the map allows it
        layers.append(nn.MaxPool2d(2, stride=1))
    layers += [nn.Flatten(), nn.LazyLinear(5), nn.ReLU(), nn.Linear(5, 3)]
    return nn.Sequential(*layers).double()


def endpoints(seed, shape, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale,
            torch.randn(*shape, generator=g, dtype=torch.float64) * scale)


def ready(model, x0):
    model(x0.unsqueeze(0))  # materialise LazyLinear
    return model.eval()


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    k=st.sampled_from([(3, 2), (3, 3), (2, 3)]),
    stride=st.sampled_from([1, 2]),
    padding=st.sampled_from([(1, 0), (0, 1)]),
    dilation=st.sampled_from([1, 2]),
    pool=st.booleans(),
    pool_padding=st.sampled_from([0, 1]),
    slope=st.sampled_from([0.0, 0.0, 0.1]),
    include_output=st.booleans(),
    rows=st.booleans(),
)
def test_front_gives_the_dense_engines_answer_on_random_cnns(seed, k, stride, padding, dilation, pool, pool_padding,
                                                             slope, include_output, rows):
    """Same breakpoints (to rounding), same packed patterns, same uncertain flags as the dense
    engine, and consistent with dense sampling of the independent hook key; every convolution
    sparse, or a third one handed over as dense rows after a sparse one (`rows`)."""
    _front._SPARSE_RECORD_COST, saved = 0.0, _front._SPARSE_RECORD_COST
    _front.FORCED = {1: "rows"} if rows else {}
    try:
        model = cnn(seed, k=k, stride=stride, padding=padding, dilation=dilation, pool=pool, pool_padding=pool_padding,
                    slope=slope, third=rows)
        x0, x1 = endpoints(seed, (2, 12, 12))
        ready(model, x0)
        got, took = used_front(model, x0, x1, include_output=include_output)
        assert took
        assert_same(got, dense(model, x0, x1, include_output=include_output))
        check_traversal(got, model, x0, x1, n=3000, include_output=include_output)
    finally:
        _front._SPARSE_RECORD_COST, _front.FORCED = saved, {}


@pytest.mark.parametrize("seed", [0, 1])
def test_grouped_convolution_and_unfolded_batchnorm(seed, handover):
    """groups > 1, and a BatchNorm after a convolution on the front's path."""
    model = cnn(seed, widths=(4, 4), groups=2, batchnorm=True, third=handover == "rows")
    x0, x1 = endpoints(seed, (2, 12, 12))
    assert_front_matches(ready(model, x0), x0, x1)


def test_channel_affine_between_convolution_and_relu(always_sparse):
    """An unfolded per-channel affine (`ChannelAffine`) is applied to every record."""
    torch.manual_seed(4)
    c1 = nn.Conv2d(1, 3, 3)
    c2 = nn.Conv2d(3, 2, 2)
    lin = nn.Linear(2 * 5 * 5, 2)
    net = Network.chain([
        Conv2d("c1", c1.weight.double(), c1.bias.double()), ReLU("r1"),
        Conv2d("c2", c2.weight.double(), c2.bias.double()),
        ChannelAffine("bn", torch.tensor([1.5, -0.7], dtype=torch.float64), torch.tensor([0.2, -0.1], dtype=torch.float64)),
        ReLU("r2"), Flatten("flat"), Linear("fc", lin.weight.double(), lin.bias.double()), ReLU("r3"),
    ], input_shape=(1, 8, 8))
    x0, x1 = endpoints(4, (1, 8, 8))
    got, took = used_front(net, x0, x1)
    assert took
    assert_same(got, dense(net, x0, x1))


def test_zero_pixels_make_exact_ties_in_the_pools(always_sparse):
    """Images that are zero on a border (as MNIST's): units there are identical along the segment,
    so max-pool windows tie exactly (not a rounding decision, the first position wins)."""
    model = cnn(7, c=1, widths=(3, 3))
    x0, x1 = endpoints(7, (1, 12, 12))
    x0[:, :4], x1[:, :4] = 0.0, 0.0
    assert_front_matches(ready(model, x0), x0, x1)


def test_segment_from_a_point_on_a_boundary(always_sparse):
    """x0 on a first-layer unit's zero: the first piece takes the open piece's pattern."""
    model = cnn(3)
    x0, x1 = endpoints(3, (2, 12, 12))
    ready(model, x0)
    conv = model[0]
    z = conv(x0[None])[0, 0, 2, 2] - conv.bias[0]  # move the bias so unit (0, 2, 2) is exactly 0 at x0
    with torch.no_grad():
        conv.bias[0] = -z
    got, _ = used_front(model, x0, x1)
    assert_same(got, dense(model, x0, x1))


def test_many_segments_and_a_small_memory_budget(handover):
    """Several segments, and chunks of a few pieces (the rows' running sums carry over)."""
    model = cnn(11, third=handover == "rows")
    x0, _ = endpoints(11, (2, 12, 12))
    ready(model, x0)
    g = torch.Generator().manual_seed(5)
    a, b = torch.randn(3, 2, 12, 12, generator=g, dtype=torch.float64), torch.randn(3, 2, 12, 12, generator=g, dtype=torch.float64)
    many = traverse_many(model, a, b)
    small = traverse_many(model, a, b, memory_budget=200_000)
    for i in range(3):
        ref = dense(model, a[i], b[i])
        assert_same(many[i], ref)
        assert_same(small[i], ref)


def test_mnist_segment_of_the_tangent_cnn():
    """The paper's CNN shape (width 4) on an MNIST-like 1 -> 4 style segment with zero borders,
    at the default cost setting: the front runs and gives the dense engine's answer."""
    from reluscope.experiments.tangent import tangent_cnn

    model = tangent_cnn((1, 28, 28), width=4, seed=0).double().eval()
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.zeros(2, 1, 28, 28, dtype=torch.float64)
    x0[0, 6:22, 12:16] = torch.rand(16, 4, generator=g, dtype=torch.float64)
    x1[0, 8:20, 6:22] = torch.rand(12, 16, generator=g, dtype=torch.float64)
    x1 = x0 + 0.3 * (x1 - x0)
    got, took = used_front(model, x0, x1)
    assert took and got.n_pieces > 50
    assert_same(got, dense(model, x0, x1))


@pytest.mark.parametrize("modes, taken", [({1: "rows"}, ["sparse", "rows"]), ({2: "rows"}, ["sparse", "sparse", "rows"]),
                                          ({0: "rows"}, ["dense"])])
def test_tangent_cnn_with_a_convolution_handed_over_as_rows(modes, taken, monkeypatch):
    """The paper's CNN shape (width 4): the third or fourth convolution handed over as dense rows
    after sparse ones; the dense engine's answer. Rows right after the first activation are not
    taken (review, tangent CNN seed 108: the front's first-layer values round otherwise than the
    dense engine's, and a tie at the segment's end came out as an extra uncertain sliver)."""
    from reluscope.experiments.tangent import tangent_cnn

    monkeypatch.setattr(_front, "_SPARSE_RECORD_COST", 0.0)
    monkeypatch.setattr(_front, "FORCED", modes)
    model = tangent_cnn((1, 28, 28), width=4, seed=1).double().eval()
    g = torch.Generator().manual_seed(1)
    x0, x1 = torch.rand(2, 1, 28, 28, generator=g, dtype=torch.float64)
    x1 = x0 + 0.05 * (x1 - x0)
    _front.TRACE = []
    try:
        got = traverse(model, x0, x1)
        trace = _front.TRACE
    finally:
        _front.TRACE = None
    assert [mode for *_, mode in trace] == taken
    assert_same(got, dense(model, x0, x1))
    check_traversal(got, model, x0, x1, n=2000)


@pytest.mark.parametrize("groups, stride, padding, dilation", [(1, 1, 1, 1), (2, 2, 0, 1), (2, 1, 2, 2)])
def test_rows_are_the_dense_convolution_of_the_front_values(groups, stride, padding, dilation):
    """`conv_rows` (running sums over the inputs' changes, chunk after chunk) against torch's
    convolution of the values `materialize` gives at the same times: equal to rounding."""
    nb = _front._kernels()
    torch.manual_seed(groups + stride)
    first = nn.Conv2d(2, 4, 3, padding=1).double()
    conv = nn.Conv2d(4, 6, 3, stride=stride, padding=padding, dilation=dilation, groups=groups).double()
    net = to_network(nn.Sequential(first, nn.ReLU(), conv, nn.ReLU()).eval()).with_input_shape((2, 9, 9))
    x0, x1 = endpoints(groups, (2, 9, 9))
    with torch.no_grad():
        h, dh = first(x0[None])[0], first((x1 - x0)[None])[0] - first.bias[:, None, None]
    n = h.numel()
    lists = _front._Lists(np.arange(n), np.ones(n, np.int64), np.zeros(n), h.reshape(-1).numpy().copy(),
                          dh.reshape(-1).numpy().copy(), tuple(h.shape))
    out, _, _ = _front._act(lists, 0.0)
    layer = net.nodes[2].layer
    geometry = _front._conv_geometry(out, layer)
    tm = torch.sort(torch.rand(40, dtype=torch.float64)).values.numpy()
    t, unit, slot = _front._changes_in_time_order(out)
    vals, dvals = np.empty((40, n)), np.empty((40, n))
    nb.materialize(out.start, out.count, out.T, out.A, out.B, t, unit, slot, tm, vals, dvals)
    with torch.no_grad():
        ref = layer.forward(torch.from_numpy(vals).reshape((40,) + out.shape)).reshape(40, -1)
        dref = layer.linear(torch.from_numpy(dvals).reshape((40,) + out.shape)).reshape(40, -1)
    shape = _front._conv_out_shape(geometry)
    weight, bias = _front._weights(layer)
    weight = weight.transpose(1, 2, 3, 0).copy()
    sums = [np.empty(ref.shape[1]) for _ in range(4)]
    live, nxt = np.empty((2, shape[1] * shape[2], groups), np.int64), np.zeros(2, np.int64)  # two blocks of channels
    nb.conv_start(out.start, out.A, out.B, *_front._conv_at_start(out, layer), *geometry, *sums, live)
    got, dgot = torch.empty_like(ref), torch.empty_like(dref)
    for a, b in [(0, 7), (7, 8), (8, 40)]:  # chunks: the sums carry over
        h_, dh_ = got[a:b].numpy().copy(), dgot[a:b].numpy().copy()
        nb.conv_rows(out.A, out.B, t, unit, slot, weight, bias, *geometry[:6], *geometry[8:], *sums, live, nxt,
                     tm[a:b], h_, dh_)
        got[a:b], dgot[a:b] = torch.from_numpy(h_), torch.from_numpy(dh_)
    assert int(out.count.sum()) > n  # the ReLU changed units along the segment
    assert torch.allclose(got, ref, rtol=0, atol=1e-13) and torch.allclose(dgot, dref, rtol=0, atol=1e-13)


def test_front_is_not_used_where_it_cannot_help():
    """MLPs, float32 analysis and graphs go to the dense engine (nothing traced)."""
    mlp = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).double().eval()
    x0, x1 = endpoints(0, (4,))
    assert not used_front(mlp, x0, x1)[1]
    model = cnn(2)
    x0, x1 = endpoints(2, (2, 12, 12))
    ready(model, x0)
    assert not used_front(model.float(), x0.float(), x1.float(), dtype="model")[1]
    assert to_network(model.double()).is_chain


@pytest.mark.parametrize("pool", [False, True])
def test_rounding_decisions_are_flagged_as_the_dense_engine_flags_them(pool, always_sparse):
    """Two first-layer channels equal up to rounding (weights 1 + 2e-15 apart) and a second layer
    taking their difference: that unit stays within rounding of zero where both are on, so its
    bit (or a window's tie, after a max-pool) follows rounding. The front finds these pieces
    (`act_candidates`, `pool_candidates`) and flags them, as the dense engine does. Where a bit
    follows rounding the two engines may cut differently (each rounds its own way), so the check
    is: both flag, and away from those near-zero bits the front agrees with sampling."""
    torch.manual_seed(1)
    c1 = nn.Conv2d(1, 2, 3, dtype=torch.float64)
    with torch.no_grad():
        c1.bias[0] = -2.0  # off at x0 = 0: exact zeros there, no rounding decision on the first pieces
        c1.weight[1] = c1.weight[0] * (1 + 2e-15)
        c1.bias[1] = c1.bias[0] * (1 + 2e-15)
    c2 = nn.Conv2d(2, 2, 1, dtype=torch.float64)
    with torch.no_grad():
        c2.weight.zero_()
        c2.bias.zero_()
        c2.weight[0, 0], c2.weight[0, 1] = 1.0, -1.0  # the difference: zero up to rounding
        c2.weight[1, 0] = 1.0  # and the channel itself, so a pool sees a near tie
    layers = [c1, nn.ReLU(), c2, nn.ReLU()] + ([nn.MaxPool2d((1, 2), stride=(1, 2))] if pool else [])
    model = nn.Sequential(*layers, nn.Flatten(), nn.LazyLinear(3)).double()
    x0, x1 = torch.zeros(1, 6, 6, dtype=torch.float64), 3 * endpoints(1, (1, 6, 6))[1]
    ready(model, x0)
    got, took = used_front(model, x0, x1)
    ref = dense(model, x0, x1)
    assert took and ref.n_uncertain > 0 and got.n_uncertain > 0
    # where both engines are certain, they agree: the midpoints of the front's certain pieces
    mid = ((got.t[1:] + got.t[:-1]) / 2)[~got.uncertain]
    at = torch.searchsorted(ref.t, mid, right=True) - 1
    sure = ~ref.uncertain[at]
    assert int(sure.sum()) > 0
    assert torch.equal(got.patterns[~got.uncertain][sure], ref.patterns[at[sure]])
    if not pool:  # sign bits within rounding are what the hook key's zero_tol leaves out
        check_traversal(got, model, x0, x1, n=3000, zero_tol=1e-12)


def test_progress_bar_reaches_its_total_through_the_front(always_sparse, capsys):
    """traverse(progress=True) on a convolutional chain: the bar counts the plan's steps (the
    front's at once, the rest chunk by chunk) and ends full, not stuck at 0."""
    model = cnn(5)
    x0, x1 = endpoints(5, (2, 12, 12))
    ready(model, x0)
    got, took = used_front(model, x0, x1, progress=True, memory_budget=400_000)
    assert took
    err = capsys.readouterr().err
    last = err.replace("\r", "\n").strip().splitlines()[-1]
    done, total = last.split("|")[2].split()[0].split("/")
    assert float(done) == pytest.approx(float(total)) and float(total) > 0


@pytest.mark.parametrize("last", ["relu", "pool"])
def test_output_signs_after_a_front_that_computed_the_last_node(last, always_sparse):
    """Regression (review): with include_output=True on a network the front computes to its last
    node (fully convolutional, ending in a ReLU or a max-pool), the output signs were skipped:
    the patterns lacked the output bits."""
    torch.manual_seed(0)
    layers = [nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 3), nn.ReLU()] + ([nn.MaxPool2d(2)] if last == "pool" else [])
    model = nn.Sequential(*layers).double().eval()
    x0, x1 = torch.randn(1, 8, 8, dtype=torch.float64), torch.randn(1, 8, 8, dtype=torch.float64)
    assert_front_matches(model, x0, x1, n=2000, include_output=True)


@pytest.mark.parametrize("engine", ["front", "dense"])
def test_max_pool_window_reading_only_padding_is_refused(engine, always_sparse):
    """Regression (review): a window that reads only padding (torch returns -inf there) crashed
    the front's compiled pool (it read an empty window) and made the dense engine's compiled pool
    write another window's bit. Both engines now refuse it in one line naming the layer."""
    torch.manual_seed(0)
    pool = nn.MaxPool2d((3, 2), stride=2, padding=(0, 1), dilation=(1, 2))
    model = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU(), pool, nn.Conv2d(2, 2, 1), nn.ReLU()).double().eval()
    x0, x1 = torch.randn(1, 4, 1, dtype=torch.float64), torch.randn(1, 4, 1, dtype=torch.float64)
    run = dense if engine == "dense" else traverse
    with pytest.raises(ValueError, match=r"layer '2': the max-pool window of output column 0 reads only padding"):
        run(model, x0, x1)


def test_a_conv_whose_inputs_all_switch_off_is_exactly_its_bias(handover):
    """Regression (review): a convolution's running sums kept a ~1e-17 residue when all its
    inputs switched off, where the dense engine computes exactly the bias (0 here): the next ReLU
    got bit 1 and a spurious breakpoint, not flagged. Outputs with no live input restart at the bias."""
    c1, c2 = nn.Conv2d(1, 1, 1, dtype=torch.float64), nn.Conv2d(1, 1, (1, 3), bias=False, dtype=torch.float64)
    with torch.no_grad():
        c1.weight.fill_(1.0)
        c1.bias.zero_()
        c2.weight.copy_(torch.tensor([0.9, 0.8, 0.4], dtype=torch.float64).reshape(1, 1, 1, 3))
    model = nn.Sequential(c1, nn.ReLU(), c2, nn.ReLU())
    if handover == "rows":  # the same sums as rows: a bias-free 1x1 convolution after a sparse one
        c0 = nn.Conv2d(1, 1, 1, bias=False, dtype=torch.float64)
        with torch.no_grad():
            c0.weight.fill_(1.0)
        model = nn.Sequential(c0, nn.ReLU(), *model)
    model.eval()
    x0 = torch.tensor([[[1.0, 0.7, 0.3]]], dtype=torch.float64)
    x1 = torch.tensor([[[-0.9, -1.3, -0.2]]], dtype=torch.float64)
    got, took = used_front(model, x0, x1)
    assert took and got.n_pieces == 4 and not bool(got.patterns[-1].any())
    assert_same(got, dense(model, x0, x1))


def test_window_elements_equal_up_to_rounding_tie_as_in_the_dense_engine(handover):
    """Regression (review's fuzz, seed 84): two max-pool elements that the dense engine computes
    as the same number (one direct, one after its inputs settled on the same constant) came out
    1 ulp apart from the front's sums, so the front's argmax differed, unflagged. Elements within
    a few ulps are one line (`_sparse_nb._same_line`): the first position keeps it. With a
    convolution handed over as rows, the same kind of 1-ulp difference made the dense engine
    flag pieces uncertain and pick another argmax (fuzz of the rows, seed 84): a chunk with a
    piece decided within rounding runs again from the input (`_front._chunks`)."""
    case = torch.load(Path(__file__).parent / "data" / "front_same_line_tie.pt", weights_only=True)
    model = nn.Sequential(
        nn.Conv2d(2, 2, (3, 2), padding=(1, 2), dilation=(2, 1)), nn.ReLU(), nn.MaxPool2d((1, 2), stride=1),
        nn.Conv2d(2, 1, (1, 2), padding=(2, 2)), nn.LeakyReLU(0.01), nn.MaxPool2d((2, 1), stride=(2, 1), padding=(1, 0), dilation=(1, 2)),
        nn.Conv2d(1, 1, (1, 3), stride=(2, 1), padding=(1, 2), dilation=(1, 2)), nn.LeakyReLU(-0.2),
        nn.Flatten(), nn.Linear(44, 3)).double().eval()
    model.load_state_dict(case["state"])
    got, took = used_front(model, case["x0"], case["x1"])
    assert took
    assert_same(got, dense(model, case["x0"], case["x1"]))


def test_a_decision_within_rounding_that_differs_sends_the_segment_to_the_dense_engine(always_sparse):
    """Regression (review's fuzz, seed 704; about 1% of random chains with every convolution
    sparse): two pool elements equal in the dense engine's arithmetic came out apart in the
    front's (a bias-free convolution after a ReLU, padding and dilation), beyond the one-line rule.
    The rounding check recomputes these pieces densely anyway: where its bits differ from the
    front's, the segment goes to the dense engine, so the answer is the dense engine's."""
    case = torch.load(Path(__file__).parent / "data" / "front_rounding_fallback.pt", weights_only=True)
    model = nn.Sequential(
        nn.Conv2d(2, 2, (1, 3), stride=(1, 2), padding=(2, 0)), nn.ReLU(),
        nn.MaxPool2d((2, 2), stride=(2, 1), padding=(1, 1), dilation=(2, 2)),
        nn.Conv2d(2, 3, (2, 1), stride=(2, 1), padding=(0, 2), bias=False), nn.LeakyReLU(-0.2),
        nn.MaxPool2d((2, 2), stride=(1, 2), padding=(1, 1), dilation=(1, 2)), nn.Flatten(), nn.Linear(48, 3)).double().eval()
    model.load_state_dict(case["state"])
    assert_same(traverse(model, case["x0"], case["x1"]), dense(model, case["x0"], case["x1"]))


@pytest.mark.parametrize("budget", [None, 200_000, 50_000])
def test_a_chunk_from_rows_decided_within_rounding_runs_again_from_the_input(budget, monkeypatch):
    """Regression (fuzz of the rows hand-over, seed 390): a convolution run as rows after a sparse
    one; its running sums put a BatchNorm'd max-pool window 1 ulp off the dense convolution's
    exact tie, so the dense engine flagged ten pieces uncertain that it does not flag on its own.
    Such a chunk runs again from the input (`_front._chunks`' redo): the dense engine's answer.
    With small budgets (review) the redo kept 16-27 flags of the discarded run: the walk ORs
    flags into the chunk's in place, and the chunk's were a view of the front's."""
    case = torch.load(Path(__file__).parent / "data" / "front_rows_redo.pt", weights_only=True)
    model = nn.Sequential(
        nn.Conv2d(2, 3, (3, 2), stride=(1, 2), padding=(2, 0), dilation=(2, 1), bias=False), nn.ReLU(),
        nn.MaxPool2d(1, dilation=2), nn.Conv2d(3, 3, (3, 2), stride=(2, 1), padding=(2, 2)), nn.LeakyReLU(0.01),
        nn.MaxPool2d(3, stride=1, padding=1), nn.BatchNorm2d(3), nn.Conv2d(3, 1, (1, 2), stride=(1, 2), padding=(0, 1), bias=False),
        nn.ReLU(), nn.MaxPool2d((2, 3), stride=(1, 2))).double().eval()
    model.load_state_dict(case["state"])
    monkeypatch.setattr(_front, "_SPARSE_RECORD_COST", 0.0)
    monkeypatch.setattr(_front, "FORCED", {1: "rows"})
    options = {} if budget is None else {"memory_budget": budget}
    got, took = used_front(model, case["x0"], case["x1"], **options)
    assert took
    assert_same(got, dense(model, case["x0"], case["x1"], **options))


def test_a_piece_decided_within_rounding_after_the_front_is_the_dense_engines():
    """Regression (review, tangent CNN width 4, seed 224 of its fuzz, default settings): from the
    front's values the last five pieces got other max-pool argmax bits than the dense engine's,
    flagged uncertain, and dense sampling of the hook key disagreed with them (153 of 3,482
    samples); the dense engine flags nothing there. A chunk with a piece flagged after the
    hand-over now runs again from the input, in the dense engine's own arithmetic."""
    from reluscope.experiments.tangent import tangent_cnn

    case = torch.load(Path(__file__).parent / "data" / "front_tangent_redo.pt", weights_only=True)
    model = tangent_cnn((1, 28, 28), width=case["width"], seed=0).double().eval()
    model.load_state_dict(case["state_dict"])
    got, took = used_front(model, case["x0"], case["x1"], include_output=case["include_output"])
    assert took
    assert_same(got, dense(model, case["x0"], case["x1"], include_output=case["include_output"]))
    check_traversal(got, model, case["x0"], case["x1"], n=3000, include_output=case["include_output"])
