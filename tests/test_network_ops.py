"""Slicing, split/chunk, stack, mean, ReLU6 and Hardtanh in the graph converter: each in a small
model written the usual way, through activation patterns, traversal and regions_2d, against the
region key read from the user's own forward (reluscope.testing: signs of every activation input,
for ReLU6/Hardtanh z > min_val and z > max_val); the converted forward equals the model's."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from reluscope import activation_patterns, activations, load_model, save_model, traverse
from reluscope.network import layers as L
from reluscope.network import to_network
from reluscope.regions import Plane, regions_2d
from reluscope.testing.models import linear_with_forward
from reluscope.testing.regions import check_against_grid, check_areas_against_key, check_region_map
from reluscope.testing.sampling import check_traversal, function_patterns


class Slicing(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(2, 8), nn.Linear(9, 2)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        z = h[:, :4] - h[..., 4:]  # the usual halves
        return self.fc2(torch.cat([F.relu(z), h[:, ::3], h[:, None, 5], -h[..., 1:2]], 1))


class Stacking(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.out = nn.Linear(2, 4), nn.Linear(2, 4), nn.Linear(8, 2)

    def forward(self, x):
        s = torch.stack([F.relu(self.a(x)), self.b(x)], dim=1)  # [B, 2, 4]
        return self.out(F.relu(torch.stack([s[:, 0] - s[:, 1], s[:, 1]], dim=-1)).flatten(1))


class Splitting(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(2, 8), nn.Linear(9, 2)

    def forward(self, x):
        h = self.fc1(x)
        a, b = h.chunk(2, dim=1)
        c, _ = torch.split(h, [3, 5], dim=1)
        e = h.split(3, dim=1)[-1]  # the last, shorter part
        return self.fc2(torch.cat([F.relu(a) - F.relu(b), F.relu(c), e.relu()], 1))


class GlobalAveragePool(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 3, 3, padding=1), nn.Linear(4, 2)

    def forward(self, x):
        h = F.relu(self.conv(x))
        c = F.relu(torch.mean(h, dim=1, keepdim=True) - 0.2)  # [B, 1, H, W]
        return self.fc(torch.cat([h.mean((2, 3)), c.mean(dim=(-1, -2)).flatten(1)], 1))


class Relu6Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.act, self.fc2, self.fc3 = nn.Linear(2, 5), nn.ReLU6(inplace=True), nn.Linear(5, 4), nn.Linear(4, 2)

    def forward(self, x):
        return self.fc3(F.relu6(self.fc2(self.act(self.fc1(x)))))


class HardtanhNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.act, self.fc2, self.fc3 = nn.Linear(2, 5), nn.Hardtanh(-0.5, 1.5), nn.Linear(5, 4), nn.Linear(4, 2)

    def forward(self, x):
        return self.fc3(F.hardtanh(self.fc2(self.act(self.fc1(x))), -1.0, 0.25))


class ClampNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(2, 5), nn.Linear(5, 4), nn.Linear(8, 2)

    def forward(self, x):
        h = self.fc1(x).clamp(min=0)  # a ReLU written as a clamp
        g = torch.clamp(self.fc2(h), -1.0, 2.0)
        return self.fc3(torch.cat([g, g.clip(max=0.5)], 1))


def _scaled(model, gain):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                m.weight.mul_(gain)
    return model


# name: (model, input shape, input scale); ReLU6 nets get large weights so units pass 6
CASES = {
    "slicing": (Slicing, (2,), 3.0),
    "stack": (Stacking, (2,), 3.0),
    "split-chunk": (Splitting, (2,), 3.0),
    "mean": (GlobalAveragePool, (1, 4, 4), 1.0),
    "relu6": (lambda: _scaled(Relu6Net(), 4.0), (2,), 4.0),
    "hardtanh": (HardtanhNet, (2,), 2.0),
    "clamp": (ClampNet, (2,), 2.0),
}


def _make(name):
    torch.manual_seed(sorted(CASES).index(name))
    make, shape, scale = CASES[name]
    return make().double().eval(), shape, scale


@pytest.mark.parametrize("name", list(CASES))
def test_op_models_traverse_and_regions_match_the_independent_key(name):
    model, shape, scale = _make(name)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(200, *shape, dtype=torch.float64, generator=g) * scale
    net = to_network(model, input_shape=shape)
    torch.testing.assert_close(net(x), model(x), rtol=1e-12, atol=1e-12)
    assert torch.equal(activation_patterns(model, x), function_patterns(model, x))

    # 2-D inputs: the box's diagonal, which crosses many regions
    x0, x1 = (x[0], x[1]) if len(shape) > 1 else (torch.tensor([-scale, -0.8 * scale]), torch.tensor([scale, 0.9 * scale]))
    tr = traverse(model, x0[None], x1[None])
    check_traversal(tr, model, x0, x1, n=2000, key="functions")
    assert tr.n_pieces > 2

    plane = None if len(shape) == 1 else Plane.through_points(*x[2:5])
    box = (-scale, scale, -scale, scale) if plane is None else None
    rm = regions_2d(model, plane=plane, box=box)
    check_region_map(rm)
    assert check_areas_against_key(rm, model, n=120) > 3
    check_against_grid(rm, model, n=60)


def test_op_layers_and_relu6_names_in_the_layout():
    net = to_network(Splitting().eval(), input_shape=(2,))
    kinds = {type(n.layer).__name__ for n in net.nodes}
    assert {"Split", "Cat"} <= kinds and "Index" not in kinds
    assert [n.name for n in net.nodes if isinstance(n.layer, L.Split)] == ["chunk[0]", "chunk[1]", "split[0]", "split[-1]"]
    assert sum(isinstance(n.layer, L.Index) for n in to_network(Slicing()).nodes) == 5
    assert any(isinstance(n.layer, L.Stack) for n in to_network(Stacking()).nodes)
    assert sum(isinstance(n.layer, L.Mean) for n in to_network(GlobalAveragePool()).nodes) == 3
    layout = to_network(ClampNet(), input_shape=(2,)).unit_layout()  # one bit per bound given
    assert [(u.name, u.size) for u in layout] == [("clamp#lo", 5), ("clamp_1#lo", 4), ("clamp_1#hi", 4), ("clip#hi", 4)]

    model, _, _ = _make("relu6")
    net = to_network(model)
    layout = net.unit_layout()
    assert [(u.name, u.size) for u in layout] == [("act#lo", 5), ("act#hi", 5), ("relu6#lo", 4), ("relu6#hi", 4)]
    x = torch.randn(50, 2, dtype=torch.float64) * 4
    h = model.fc1(x)
    bits = activation_patterns(model, x, layers=["act"])  # both bits of every unit: z > 0, then z > 6
    assert torch.equal(bits, torch.cat([h > 0, h > 6], 1))
    assert activation_patterns(model, x, layers=["act#hi"]).shape == (50, 5)
    got = activations(model, x, layer=["act", "act#lo", "act#hi"])
    torch.testing.assert_close(got[0], F.relu6(h))
    torch.testing.assert_close(got[1], F.relu(h))
    torch.testing.assert_close(got[2], F.relu(h - 6))
    assert got.points == ("act output", "act#lo", "act#hi")


def test_hardtanh_bits_are_the_comparisons_and_a_plain_sequential_converts():
    model = nn.Sequential(nn.Linear(2, 4), nn.Hardtanh(-0.5, 0.7), nn.Linear(4, 3), nn.ReLU6(), nn.Linear(3, 1)).double().eval()
    x = torch.randn(300, 2, dtype=torch.float64) * 3
    net = to_network(model)
    torch.testing.assert_close(net(x), model(x), rtol=1e-12, atol=1e-12)
    z = model[0](x)
    assert torch.equal(net.bits(x)[:, :8], torch.cat([z > -0.5, z > 0.7], 1))
    assert torch.equal(net.bits(x), function_patterns(model, x))
    alone = to_network(nn.ReLU6(), input_shape=(3,))  # a single leaf module
    torch.testing.assert_close(alone(x[:, :2]), F.relu6(x[:, :2]))


@pytest.mark.parametrize("name", ["split-chunk", "slicing", "relu6", "mean", "clamp"])
def test_op_models_save_and_load_as_graphs(tmp_path, name):
    model, shape, scale = _make(name)
    save_model(model, tmp_path / name)
    loaded = load_model(tmp_path / name).double()
    x = torch.randn(20, *shape, dtype=torch.float64) * scale
    assert torch.equal(loaded(x), model(x))
    assert torch.equal(activation_patterns(loaded, x), activation_patterns(model, x))


def test_folding_and_tangent_features_on_op_models():
    from reluscope.folding import path_folding
    from reluscope.testing.folding import dedupe_walk
    from reluscope.tangent import tangent_features

    model, _, _ = _make("hardtanh")
    x0, x1 = torch.tensor([-2.0, 1.5], dtype=torch.float64), torch.tensor([2.5, -1.0], dtype=torch.float64)
    res = path_folding(model, x0, x1)
    t = torch.linspace(0, 1, 4001, dtype=torch.float64)[:, None]
    assert res.exact and float(torch.as_tensor(res.t).diff().min()) > 2 / 4000  # the grid sees every region
    assert torch.equal(res.walk, dedupe_walk(function_patterns(model, x0 + t * (x1 - x0), include_output=True)))

    model, _, _ = _make("split-chunk")
    x = torch.randn(3, 2, dtype=torch.float64)
    g = tangent_features(model, x, normalize=False).reshape(3, -1)
    params = [p for p in model.parameters() if p.requires_grad]
    for i in range(3):
        ref = torch.autograd.grad(model(x[i : i + 1]).sum(), params)
        torch.testing.assert_close(g[i], torch.cat([r.reshape(-1) for r in ref]), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("forward, message", [
    (lambda self, x: self.fc(x)[:2], "node 'getitem' .*reaches the batch dimension"),
    (lambda self, x: self.fc(x)[None, :, 1], "reaches the batch dimension"),
    (lambda self, x: self.fc(x)[:, torch.tensor([0, 2])], "advanced indexing"),
    (lambda self, x: self.fc(x)[:, [0, 2]], "advanced indexing"),
    (lambda self, x: self.fc(x)[self.fc(x) > 0], "node .getitem. .*advanced indexing .*the value .gt."),
    (lambda self, x: self.fc(x)[:, ::-1], "step must be a positive integer"),
    (lambda self, x: self.fc(x)[..., 1, ...], "one Ellipsis"),
    (lambda self, x: self.fc(x).chunk(2)[0], "along dim 0 \\(the default\\) splits the batch.*dim=1"),
    (lambda self, x: torch.split(self.fc(x), 2.5, 1)[0], "sizes must be constant positive integers"),
    (lambda self, x: torch.cat(self.fc(x).chunk(2, 1), 1), "expected a list of tensors"),
    (lambda self, x: self.fc(x).chunk(2, 1)[1:][0], "parts of a chunk must be read by a constant integer index"),
    (lambda self, x: torch.stack([self.fc(x), x]), "stacking along dim 0 mixes the batch"),
    (lambda self, x: self.fc(x).mean(), "constant integer dims.*averages over the batch"),
    (lambda self, x: torch.mean(self.fc(x), 0), "mean over dim 0"),
    (lambda self, x: self.fc(x).mean(1, dtype=torch.float32), "dtype"),
    (lambda self, x: F.hardtanh(self.fc(x), 1.0, -1.0), "min_val 1.0 is above max_val -1.0"),
    (lambda self, x: self.fc(x).clamp(min=x), "min must be a finite constant number"),
    (lambda self, x: torch.clamp(self.fc(x), 2, 1), "min 2.0 is above max 1.0"),
])
def test_fancy_indexing_and_batch_mixing_are_refused_naming_the_node(forward, message):
    with pytest.raises(TypeError, match=message) as info:
        to_network(linear_with_forward(forward, features=4))
    assert "\n" not in str(info.value)


def test_index_reaching_the_batch_through_an_ellipsis_is_refused_at_run_time():
    # x[..., 0] on a [B] value would index the batch: the shape is only known when it runs
    net = to_network(linear_with_forward(lambda self, x: self.fc(x)[..., 0:2][..., 1][..., None], features=4))
    assert net(torch.randn(3, 4)).shape == (3, 1)
    index = next(n.layer for n in net.nodes if isinstance(n.layer, L.Index))
    with pytest.raises(ValueError, match="reaches the batch dimension"):
        index.forward(torch.randn(3))


@pytest.mark.parametrize("layer, inputs", [
    (L.Split("s", 2, -2, 0), 1),
    (L.Split("c", 2, 0, 0, chunks=True), 1),
    (L.Mean("m", (1, -2)), 1),
    (L.Cat("cat", -2), 2),
    (L.Stack("stack", -3), 2),  # the stacked result has 3 dims: -3 is its batch
])
def test_layers_built_by_hand_refuse_the_batch_dimension_at_run_time(layer, inputs):
    # the converter refuses these forms; the layers' own check (one helper) guards hand-built graphs
    x = torch.randn(3, 4)
    with pytest.raises(ValueError, match=rf"layer '{layer.name}': .* reaches the batch dimension of an input of shape \[3, 4\]"):
        layer.forward(*[x] * inputs)
    # the same layers along a non-batch dimension compute what torch does
    ok, expected = {
        L.Split: (L.Split("s", 2, -1, 0), torch.split(x, 2, -1)[0]), L.Mean: (L.Mean("m", (-1,)), x.mean(-1)),
        L.Cat: (L.Cat("cat", -1), torch.cat([x, x], -1)), L.Stack: (L.Stack("stack", -2), torch.stack([x, x], -2)),
    }[type(layer)]
    assert torch.equal(ok.forward(*[x] * inputs), expected)


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    width=st.sampled_from([2, 4, 6]),
    ops=st.lists(st.sampled_from(["slice", "chunk", "split", "stack", "mean", "relu6", "hardtanh", "clamp", "relu"]), min_size=1, max_size=3),
    lo=st.floats(-1, 0.5), span=st.floats(0.1, 2),
)
def test_random_nets_with_the_new_ops_match_the_region_key(seed, width, ops, lo, span):
    torch.manual_seed(seed)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = nn.Linear(2, width)
            self.mix = nn.ModuleList(nn.Linear(width, width) for _ in ops)
            self.out = nn.Linear(width, 2)

        def forward(self, x):
            h = self.inp(x)
            for op, mix in zip(ops, self.mix):
                if op == "slice":
                    h = torch.cat([F.relu(h[:, : width // 2]), h[..., width // 2 :]], 1)
                elif op == "chunk":
                    a, b = h.chunk(2, dim=1)
                    h = torch.cat([b, F.relu(a)], dim=1)
                elif op == "split":
                    parts = torch.split(h, [1, width - 1], dim=1)
                    h = torch.cat([F.relu(parts[1]), parts[0]], 1)
                elif op == "stack":
                    h = torch.stack([h, F.relu(-h)], dim=2).mean(2) * 2
                elif op == "mean":
                    pooled = torch.mean(h.view(h.size(0), 2, -1), dim=-1)  # [B, 2]
                    h = F.relu(h - h.mean(1, keepdim=True)) + torch.cat([pooled] * (width // 2), 1)
                elif op == "relu6":
                    h = F.relu6(3 * h)
                elif op == "hardtanh":
                    h = F.hardtanh(h, lo, lo + span)
                elif op == "clamp":
                    h = torch.clamp(h, max=lo + span) if seed % 2 else h.clamp(min=lo)
                else:
                    h = F.relu(h)
                h = mix(h)
            return self.out(h)

    model = Net().double().eval()
    x = torch.randn(64, 2, dtype=torch.float64) * 2
    torch.testing.assert_close(to_network(model)(x), model(x), rtol=1e-12, atol=1e-12)
    assert torch.equal(activation_patterns(model, x), function_patterns(model, x))
    tr = traverse(model, x[0:1], x[1:2])
    check_traversal(tr, model, x[0], x[1], n=400, key="functions")


class _InPlace(nn.Module):
    def __init__(self, forward):
        super().__init__()
        self.fc, self.act, self.fc2 = nn.Linear(4, 4), nn.ReLU(inplace=True), nn.Linear(4, 4)
        self._forward = forward

    def forward(self, x):
        return self._forward(self, x)


def _keep_then(f):
    return lambda self, x: f(self, self.fc(x))


@pytest.mark.parametrize("name, forward", [
    # nn.ReLU(inplace=True) overwrote h, which forward read again: the graph read the old h (0.34 off)
    ("module inplace, input read again", _keep_then(lambda self, h: self.act(h) + h)),
    ("F.relu_ result unused", _keep_then(lambda self, h: (F.relu_(h), self.fc2(h))[1])),
    ("F.relu(inplace=True)", _keep_then(lambda self, h: F.relu(h, inplace=True) - 2 * h)),
    ("method relu_", _keep_then(lambda self, h: h.relu_() + self.fc2(h))),
    ("chained in place, h read after", _keep_then(lambda self, h: (h.mul_(2).add_(1), self.fc2(h))[1])),
    ("one split part in place", lambda self, x: (lambda p: torch.cat([F.relu_(p[0]), p[1]], 1) - torch.cat([p[1], p[0]], 1))(
        self.fc(x).split(2, 1))),
])
def test_inplace_operations_are_followed_where_forward_reads_the_tensor_again(name, forward):
    torch.manual_seed(3)
    model = _InPlace(forward).double().eval()
    x = torch.randn(30, 4, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(to_network(model)(x), model(x.clone()), rtol=1e-12, atol=1e-12)
    assert torch.equal(activation_patterns(model, x), function_patterns(model, x.clone()))


def test_augmented_assignment_changes_every_name_of_the_tensor():
    # fx traces `h += 1` as h = h + 1; the tensor `ident` also names changed too (regression)
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            h = self.fc(x)
            ident = h
            h += 1.0
            h *= 2.0
            return F.relu(ident) - h / 4

    model = Net().double().eval()
    x = torch.randn(20, 3, dtype=torch.float64)
    torch.testing.assert_close(to_network(model)(x), model(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("forward", [
    _keep_then(lambda self, h: F.relu_(h[:, :2]).sum(1, keepdim=True) + h),
    _keep_then(lambda self, h: torch.cat([F.relu(h.view(h.size(0), 2, 2), inplace=True).flatten(1), h], 1)),
])
def test_inplace_on_a_view_of_a_tensor_read_again_is_refused(forward):
    with pytest.raises(TypeError, match="overwrites .* in place, which shares memory with 'fc', read again by"):
        to_network(_InPlace(forward))


@pytest.mark.parametrize("forward", [
    _keep_then(lambda self, h: (F.relu_(h[:, :2]), self.fc2(h))[1]),
    _keep_then(lambda self, h: (F.relu_(h.chunk(2, 1)[0]), self.fc2(h))[1]),
    _keep_then(lambda self, h: (lambda a, b: (F.relu_(a), self.fc2(torch.cat([b, b], 1)))[1])(h[:, 1:3], h[:, 2:4])),
])
def test_inplace_on_a_view_whose_result_is_unused_is_refused_not_dropped(forward):
    # regression: the view was not live, so the in-place call on it was dropped with it and the
    # graph read the old h (0.9 off), although forward saw the overwritten memory
    with pytest.raises(TypeError, match="overwrites .* in place, which shares memory with"):
        to_network(_InPlace(forward))


@pytest.mark.parametrize("forward", [
    _keep_then(lambda self, h: (lambda y: (F.relu_(h[:, :2]), y)[1])(self.fc2(h))),
    # regression (this round): an in-place call after forward's last read of h made it live, and
    # to_network refused with "forward returns its input or an intermediate value"
    _keep_then(lambda self, h: (lambda y: (F.relu_(h), y)[1])(self.fc2(h))),
])
def test_inplace_on_a_tensor_not_read_again_is_still_accepted(forward):
    model = _InPlace(forward).double().eval()
    x = torch.randn(10, 4, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(to_network(model)(x), model(x.clone()), rtol=1e-12, atol=1e-12)


def _live_fixpoint(conv):
    """The converter's live set as first written (quadratic: one rescan of the graph per round)."""
    from reluscope.network.inplace import _storage_group

    def overwrites(n, live):
        src = conv._inplace_input(n)
        return src is not None and any(
            u in live and conv._order[u] > conv._order[n]
            for name in conv._names(src) for v in _storage_group(name, conv._submodule) for u in v.users)

    live, stack = set(), [n for n in conv.graph.nodes if n.op == "output"]
    while stack:
        while stack:
            n = stack.pop()
            if n not in live:
                live.add(n)
                stack.extend(n.all_input_nodes)
        stack = [n for n in conv.graph.nodes if n not in live and overwrites(n, live)]
    return live


def test_live_nodes_of_a_long_chain_of_inplace_calls_in_one_walk():
    # regression: `_live` rescanned the graph per round and `_names` scanned it per in-place call,
    # O(N^2) in the node count (8.5 s for 400 blocks); one walk gives the same set
    from reluscope.network.convert import _Converter, trace_graph

    class Chain(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.fcs = nn.ModuleList(nn.Linear(3, 3) for _ in range(n))
            self.act = nn.ReLU(inplace=True)

        def forward(self, x):
            for i, fc in enumerate(self.fcs):
                h = fc(x)
                if i % 3 == 0:
                    F.relu_(h)  # result unused, h read after: live
                    x = h + x
                elif i % 3 == 1:
                    h.mul_(0.5).add_(1.0)
                    x = self.act(h)
                else:
                    a, b = h.chunk(3, dim=1)[0], h.chunk(3, dim=1)[0]  # one part read twice
                    torch.cat([a, b, h[:, :1]], 1).mul_(2.0)  # overwrites nothing forward reads: dropped
                    x = torch.cat([F.relu(a), b, h[:, 1:2]], 1)
            return x

    model = Chain(60).double().eval()
    conv = _Converter(model, trace_graph(model))
    assert conv._live() == _live_fixpoint(conv)
    x = torch.randn(5, 3, dtype=torch.float64)
    torch.testing.assert_close(to_network(model)(x), model(x.clone()), rtol=1e-12, atol=1e-12)
    assert torch.equal(activation_patterns(model, x), function_patterns(model, x.clone()))
