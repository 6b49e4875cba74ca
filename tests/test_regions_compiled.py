"""The compiled (numba) cut of regions_2d (`regions/_cut_nb.py`): the same complex as the numpy and
torch engines and the grid, per unit and per layer (`_walk.walk_chain`, chains); the numpy fallback
when numba is missing; the fx-free conversion of plain nn.Sequential models and the float64 MLP
fast path (`regions/_mlp.py`) it relies on for small nets."""

import copy
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

import reluscope.regions.partition as partition
from reluscope.network import to_network
from reluscope.regions import regions_2d
from reluscope.testing.regions import check_against_grid, check_region_map

_EXACT = ("vertices", "edges", "edge_faces", "face_vertices", "face_offsets", "areas", "patterns")


def _mlp(widths, seed, act=nn.ReLU):
    torch.manual_seed(seed)
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), act()]
    return nn.Sequential(*layers[:-1]).double()


def _run(engine, net, box, monkeypatch, **kw):
    """engine: "chain" (compiled, one call per layer), "numba" (compiled, one call per unit),
    "numpy", "torch"."""
    monkeypatch.setattr(partition, "_COMPILED_ON_CPU", engine in ("chain", "numba"))
    monkeypatch.setattr(partition, "_COMPILED_CHAIN", engine == "chain")
    monkeypatch.setattr(partition, "_NUMPY_ON_CPU", engine != "torch")
    monkeypatch.setattr(partition, "_NUMPY_MAX_EDGES", 10**9)
    return regions_2d(net, box=box, **kw)


def _same(a, b, exact: bool):
    """The same complex: bit for bit (numba vs numpy: same arithmetic), or up to rounding and
    face order (torch's kernels)."""
    if exact:
        for k in _EXACT:
            np.testing.assert_array_equal(getattr(a, k), getattr(b, k), err_msg=k)
    else:
        assert (a.n_regions, a.n_vertices, a.n_edges) == (b.n_regions, b.n_vertices, b.n_edges)
        ka, kb = np.argsort(a.pattern_keys()), np.argsort(b.pattern_keys())
        np.testing.assert_array_equal(a.patterns[ka], b.patterns[kb])
        np.testing.assert_allclose(a.areas[ka], b.areas[kb], rtol=1e-9, atol=1e-14)
        a, b = type("P", (), {"A": a.A[ka], "c": a.c[ka]}), type("P", (), {"A": b.A[kb], "c": b.c[kb]})
    np.testing.assert_allclose(a.A, b.A, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(a.c, b.c, rtol=1e-8, atol=1e-10)


@settings(max_examples=25, deadline=None)
@given(
    widths=st.lists(st.integers(1, 10), min_size=1, max_size=3),
    out=st.integers(1, 3),
    seed=st.integers(0, 10_000),
    leaky=st.booleans(),
    box=st.tuples(st.floats(-3, 0.5), st.floats(0.1, 3), st.floats(-3, 0.5), st.floats(0.1, 3)),
)
def test_compiled_engine_equals_numpy_torch_and_the_grid(widths, out, seed, leaky, box):
    pytest.importorskip("numba")
    act = (lambda: nn.LeakyReLU(0.2)) if leaky else nn.ReLU
    net = _mlp([2, *widths, out], seed, act)
    x0, w, y0, h = box
    box = (x0, x0 + w, y0, y0 + h)
    with pytest.MonkeyPatch.context() as mp:
        chain = _run("chain", net, box, mp)
        nb = _run("numba", net, box, mp)
        npy = _run("numpy", net, box, mp)
        tch = _run("torch", net, box, mp)
    for k in ("A", "c"):  # per layer and per unit: the same fit on the same vertices
        np.testing.assert_array_equal(getattr(chain, k), getattr(nb, k), err_msg=k)
    _same(chain, nb, exact=True)
    _same(chain, npy, exact=True)
    _same(chain, tch, exact=False)
    check_region_map(chain)
    check_against_grid(chain, net, n=60)


@pytest.mark.parametrize("box", [(-1, 1, -1, 1), (0, 1, 0, 1), (-1, 0.5, -0.5, 1)])
def test_compiled_engine_on_lines_through_vertices(box, monkeypatch):
    # lines through box corners and through one common point take the cut's general path
    pytest.importorskip("numba")
    lin = nn.Linear(2, 4).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, -1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]]))
        lin.bias.zero_()
    net = nn.Sequential(lin, nn.ReLU(), nn.Linear(4, 3).double(), nn.ReLU(), nn.Linear(3, 1).double())
    nb, npy = _run("chain", net, box, monkeypatch), _run("numpy", net, box, monkeypatch)
    _same(nb, npy, exact=True)
    _same(nb, _run("numba", net, box, monkeypatch), exact=True)
    check_region_map(nb)
    if box[0] < 0 and box[2] < 0:  # else grid points on the box edge lie exactly on x = 0 or y = 0
        check_against_grid(nb, net, n=90)


def test_compiled_engine_grows_its_buffers_mid_layer(monkeypatch):
    # a wide layer on a fresh complex: every cut outgrows the arrays at least once at the start
    pytest.importorskip("numba")
    net = _mlp([2, 48, 1], 5)
    npy = _run("numpy", net, (-2, 2, -2, 2), monkeypatch)
    for engine in ("numba", "chain"):
        nb = _run(engine, net, (-2, 2, -2, 2), monkeypatch)
        _same(nb, npy, exact=True)
    assert nb.n_regions > 500


def test_degenerate_face_is_refused_by_the_compiled_cut():
    pytest.importorskip("numba")
    from reluscope.regions._cut import Buf
    from reluscope.regions._cut_nb import NbComplex

    # a "face" whose boundary the line crosses four times (not convex): both engines refuse it
    cx = NbComplex((0.0, 1.0, 0.0, 1.0))
    cx.start_layer(np.array([[1.0], [-1.0], [1.0], [-1.0]]))
    with pytest.raises(FloatingPointError, match="two boundary points"):
        cx.cut(0, 0.0, Buf(np.arange(2)))


def test_without_numba_the_numpy_engine_runs(monkeypatch):
    # numba is optional: with its import failing, regions_2d falls back to the numpy engine
    from reluscope.regions._cut_np import NpComplex

    monkeypatch.setitem(sys.modules, "numba", None)  # makes `import numba` raise ImportError
    monkeypatch.delitem(sys.modules, "reluscope.regions._cut_nb", raising=False)
    monkeypatch.setattr(partition, "_compiled", None)
    calls = []
    cut = NpComplex.cut
    monkeypatch.setattr(NpComplex, "cut", lambda self, *a: calls.append(a) or cut(self, *a))
    net = _mlp([2, 6, 5, 1], 2)
    rm = regions_2d(net, box=(-1, 1, -1, 1))
    assert partition._compiled is False and len(calls) == 11
    check_region_map(rm)
    check_against_grid(rm, net, n=60)


def test_numba_unable_to_cache_falls_back_to_numpy(monkeypatch):
    # numba raises RuntimeError ("cannot cache function ...") at import time when no folder is
    # writable for its cache: regions_2d and KCHA must then run their numpy engines
    import types

    import reluscope.hull.kcha as kcha

    def njit(*args, **kwargs):
        raise RuntimeError("cannot cache function 'cut': no locator available for file")

    monkeypatch.setitem(sys.modules, "numba", types.SimpleNamespace(njit=njit))
    monkeypatch.delitem(sys.modules, "reluscope.regions._cut_nb", raising=False)
    monkeypatch.delitem(sys.modules, "reluscope.hull._kcha_nb", raising=False)
    monkeypatch.setattr(partition, "_compiled", None)
    net = _mlp([2, 5, 4, 1], 3)
    rm = regions_2d(net, box=(-1, 1, -1, 1))
    assert partition._compiled is False
    check_region_map(rm)
    assert kcha._kernels() == (kcha._first_step_np, kcha._gather_np, kcha._compact_np, kcha._step_np)


def _layers(net):
    return [(type(n.layer).__name__, n.layer.name, n.inputs, sorted(n.layer._tensors())) for n in net.nodes]


@pytest.mark.parametrize("make", [
    lambda: nn.Sequential(nn.Linear(2, 5), nn.ReLU(), nn.Dropout(0.1), nn.Linear(5, 3), nn.LeakyReLU(0.3), nn.Identity(), nn.Linear(3, 2)),
    lambda: nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 1)),
    lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(2 * 3 * 3, 2)),
    lambda: nn.Sequential(),
])
def test_plain_sequential_converts_as_fx_does(make, monkeypatch):
    # to_network builds plain nn.Sequential chains without tracing: the same Network as fx's
    import reluscope.network.convert as convert

    torch.manual_seed(0)
    model = make().eval()
    if len(model) > 1 and isinstance(model[1], nn.BatchNorm1d):
        with torch.no_grad():
            model[1].running_mean.uniform_(-1, 1)
            model[1].running_var.uniform_(0.5, 2)
    assert convert._plain_sequential(model) is not None
    fast = to_network(model)
    monkeypatch.setattr(convert, "_plain_sequential", lambda m: None)
    traced = to_network(model)
    assert _layers(fast) == _layers(traced) and fast.input_shape == traced.input_shape
    for a, b in zip(fast.nodes, traced.nodes):
        for k, v in a.layer._tensors().items():
            torch.testing.assert_close(v, getattr(b.layer, k), rtol=0, atol=0)


def test_nested_shared_or_custom_sequentials_go_through_fx():
    import reluscope.network.convert as convert

    relu = nn.ReLU()
    shared = nn.Sequential(nn.Linear(2, 3), relu, nn.Linear(3, 3), relu, nn.Linear(3, 1))
    nested = nn.Sequential(nn.Sequential(nn.Linear(2, 3), nn.ReLU()), nn.Linear(3, 1))

    class Twice(nn.Sequential):
        def forward(self, x):
            return super().forward(x) * 2

    custom = Twice(nn.Linear(2, 1))
    for model in (shared, nested, custom):
        assert convert._plain_sequential(model) is None
    assert [n.name for n in to_network(shared).nodes] == ["0", "1", "2", "1#2", "4"]
    assert len(to_network(custom).nodes) == 2  # the scaling is traced


def test_network_to_returns_itself_when_nothing_moves():
    net = to_network(_mlp([2, 3, 1], 0))
    assert net.to(dtype=torch.float64) is net and net.to(device="cpu") is net
    single = net.to(dtype=torch.float32)
    assert single is not net and single.nodes[0].layer.weight.dtype == torch.float32
    assert net.nodes[0].layer.weight.dtype == torch.float64


# ---------------------------------------------------------------- chains in one call per layer


def test_explorer_sized_net_maps_as_the_numpy_engine(monkeypatch):
    # the browser explorer's 2-16-16-2 (float32, as trained there): per layer == numpy bit for bit
    pytest.importorskip("numba")
    net = _mlp([2, 16, 16, 2], 0).float().eval()
    chain = _run("chain", net, (-1.5, 1.5, -1.5, 1.5), monkeypatch)
    _same(chain, _run("numpy", net, (-1.5, 1.5, -1.5, 1.5), monkeypatch), exact=True)
    assert chain.n_regions > 100
    check_region_map(chain)
    check_against_grid(chain, net, n=120)


def test_chain_on_a_plane_and_a_chain_starting_with_an_activation(monkeypatch):
    pytest.importorskip("numba")
    from reluscope import Plane

    torch.manual_seed(1)
    anchors = torch.randn(3, 8, dtype=torch.float64)
    plane = Plane.through_points(*anchors)
    models = [_mlp([8, 6, 5, 2], 4), nn.Sequential(nn.LeakyReLU(0.1), nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1)).double()]
    for net, pl in zip(models, (plane, None)):
        chain = _run("chain", net, (-2, 2, -1.5, 1.5), monkeypatch, plane=pl)
        _same(chain, _run("numpy", net, (-2, 2, -1.5, 1.5), monkeypatch, plane=pl), exact=True)
        check_region_map(chain)
        check_against_grid(chain, net, n=60)


def test_convolutional_chain_maps_as_the_numpy_engine(monkeypatch):
    # conv, avg-pool, flatten: affine nodes of a chain run in torch between the compiled layer calls
    pytest.importorskip("numba")
    from reluscope import Plane

    torch.manual_seed(2)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(2 * 2 * 2, 3),
                        nn.LeakyReLU(0.1), nn.Linear(3, 2)).double().eval()
    plane = Plane.through_points(*torch.randn(3, 1, 6, 6, dtype=torch.float64))
    chain = _run("chain", net, (-3, 3, -3, 3), monkeypatch, plane=plane)
    _same(chain, _run("numpy", net, (-3, 3, -3, 3), monkeypatch, plane=plane), exact=True)
    assert chain.n_regions > 20
    check_region_map(chain)
    check_against_grid(chain, net, n=60)


def test_chain_refuses_over_budget_as_the_unit_sweep_does(monkeypatch):
    pytest.importorskip("numba")
    net = _mlp([2, 40, 40, 1], 0)
    errors = []
    for engine in ("chain", "numba"):
        with pytest.raises(partition.RegionBudgetError) as err:
            _run(engine, net, (-2, 2, -2, 2), monkeypatch, memory_budget=700_000)  # over the grid estimate
        errors.append(str(err.value))
    assert errors[0] == errors[1] and "layer '3' is on course for about" in errors[0]


def test_degenerate_face_is_refused_by_the_layer_kernel():
    pytest.importorskip("numba")
    from reluscope.regions._cut_nb import cut_layer

    E = np.array([[0, 1, 1, 0], [1, 2, 1, 0], [2, 3, 1, 0], [3, 0, 1, 0]], dtype=np.int64)
    xy = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    status = cut_layer(np.array([[1.0], [-1.0], [1.0], [-1.0]]), xy, E, 4, 1, np.zeros((2, 0), bool), 0.0, 1.0, 1e9)[0]
    assert status == 1


def test_maps_follow_weights_changed_in_place():
    # a training callback maps regions every step: nothing may be kept from an earlier call
    net = _mlp([2, 8, 8, 1], 3).float()
    before = regions_2d(net, box=(-1, 1, -1, 1))
    with torch.no_grad():
        for p in net.parameters():
            p.data.mul_(-1.5)  # in place through .data: no version counter moves
    after = regions_2d(net, box=(-1, 1, -1, 1))
    fresh = regions_2d(copy.deepcopy(net), box=(-1, 1, -1, 1))
    _same(after, fresh, exact=True)
    assert not np.array_equal(before.c, after.c)


@pytest.mark.parametrize("make", [
    lambda: nn.Sequential(nn.Linear(2, 5), nn.ReLU(), nn.Linear(5, 3), nn.LeakyReLU(0.3), nn.Linear(3, 2)),
    lambda: nn.Sequential(nn.Linear(2, 4, bias=False), nn.ReLU(inplace=True), nn.Linear(4, 1)).double(),
    lambda: nn.Sequential(nn.ReLU(), nn.Linear(2, 1)),
    lambda: nn.Sequential(nn.Linear(3, 1)),
])
def test_float64_mlp_equals_to_network_in_float64(make):
    from reluscope.regions._mlp import chain_sizes, float64_mlp

    torch.manual_seed(0)
    model = make()
    fast, ref = float64_mlp(model), to_network(model).to(dtype=torch.float64)
    assert _layers(fast) == _layers(ref) and fast.input_shape == ref.input_shape
    for a, b in zip(fast.nodes, ref.nodes):
        assert vars(a.layer).keys() == vars(b.layer).keys()
        for k, v in vars(a.layer).items():
            if isinstance(v, torch.Tensor):
                assert v.dtype == torch.float64 and torch.equal(v, getattr(b.layer, k))
                assert all(v.data_ptr() != p.data_ptr() for p in model.parameters())  # a snapshot
            else:
                assert v == getattr(b.layer, k)
    shaped = ref.with_input_shape((2,)) if ref.input_shape is None else ref
    assert chain_sizes(shaped) == partition._sizes(shaped, torch.device("cpu"))


def test_float64_mlp_leaves_the_rest_to_to_network():
    from reluscope.regions._mlp import float64_mlp

    relu = nn.ReLU()
    others = [
        nn.Sequential(nn.Linear(2, 3), relu, nn.Linear(3, 3), relu, nn.Linear(3, 1)),  # shared module
        nn.Sequential(nn.Linear(2, 3), nn.Dropout(0.0), nn.Linear(3, 1)),
        nn.Sequential(nn.Sequential(nn.Linear(2, 3)), nn.ReLU()),
        nn.Sequential(nn.Linear(2, 3).half(), nn.ReLU()),
        nn.Sequential(),
        nn.Linear(2, 3),
    ]
    assert all(float64_mlp(m) is None for m in others)
    bad = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    with torch.no_grad():
        bad[2].weight[0, 1] = float("nan")
    assert float64_mlp(bad) is None
    with pytest.raises(ValueError, match="layer '2' has 1 NaN/inf entries in its weight"):
        regions_2d(bad)
    hooked = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    hooked[1].register_forward_hook(lambda *a: None)
    with pytest.raises(ValueError, match="hooks"):
        regions_2d(hooked)
