"""Networks as graphs: residual blocks, functional forwards, cat, constant scalings, views,
adaptive pooling, Unflatten, BatchNorm wherever it stands; patterns against an independent region
key read from the user's own forward; the exact-forward whitelist and hook refusal."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from reluscope.network import Network, to_network
from reluscope.network import layers as L
from reluscope.patterns import activation_patterns
from reluscope.testing.models import (
    BasicBlock,
    Bottleneck,
    LeNetFunctional,
    linear_with_forward,
    ResidualMLP,
    randomise_batchnorm,
    tiny_resnet,
    tiny_vgg,
)
from reluscope.testing.sampling import function_patterns

MODELS = {
    "resnet-basic": (lambda: tiny_resnet(BasicBlock, layers=(2, 1)), (3, 8, 8)),
    "resnet-bottleneck": (lambda: tiny_resnet(Bottleneck, layers=(1, 1), width=2), (3, 8, 8)),
    "vgg": (lambda: tiny_vgg(), (3, 8, 8)),
    "lenet-functional": (lambda: LeNetFunctional(), (1, 12, 12)),
    "residual-mlp": (lambda: randomise_batchnorm(ResidualMLP()).eval(), (3,)),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_graph_models_reproduce_torch_and_the_independent_region_key(name):
    make, shape = MODELS[name]
    torch.manual_seed(5)
    model = make().double()
    x = torch.randn(16, *shape, dtype=torch.float64)
    net = to_network(model, input_shape=shape)
    torch.testing.assert_close(net(x), model(x), rtol=1e-10, atol=1e-10)
    bits = activation_patterns(model, x)
    assert torch.equal(bits, function_patterns(model, x))
    layout = net.unit_layout()
    assert layout[-1].stop == bits.shape[1] and all(u.size > 0 for u in layout)
    assert [u.node for u in layout] == sorted(u.node for u in layout)  # topological order


@pytest.mark.parametrize("block, layers", [
    (BasicBlock, ["conv1", "bn1", "conv2", "bn2", "downsample"]),
    (Bottleneck, ["conv1", "bn1", "conv2", "bn2", "conv3", "bn3", "downsample"]),
])
def test_residual_blocks_register_the_shortcut_last_like_torchvision(block, layers):
    # regression: the shared residual base once registered `downsample` first, which reordered the state
    # dict and made randomise_batchnorm draw other statistics for the same seed (other test models)
    down = nn.Sequential(nn.Conv2d(4, 8 * block.expansion, 1, bias=False), nn.BatchNorm2d(8 * block.expansion))
    keys = list(block(4, 8, 2, down).state_dict())
    assert list(dict.fromkeys(k.split(".")[0] for k in keys)) == layers


def test_resnet_structure_folds_batchnorm_and_names_reused_relu_calls():
    net = to_network(tiny_resnet(BasicBlock, layers=(1, 1)), input_shape=(3, 8, 8))
    kinds = [type(n.layer).__name__ for n in net.nodes]
    assert "ChannelAffine" not in kinds  # every BatchNorm follows a conv read by nothing else
    assert kinds.count("Sum") == 2 and kinds[-3:] == ["AdaptiveAvgPool2d", "Flatten", "Linear"]
    names = [u.name for u in net.unit_layout()]
    assert names == ["relu", "maxpool", "layer1.0.relu", "layer1.0.relu#2", "layer2.0.relu", "layer2.0.relu#2"]
    down = next(n for n in net.nodes if n.name == "layer2.0.downsample.0")
    assert down.inputs[0] == next(i for i, n in enumerate(net.nodes) if n.name == "layer1.0.relu#2")


def test_batchnorm_after_an_addition_stays_a_channel_affine():
    net = to_network(ResidualMLP().eval())
    bn = [n for n in net.nodes if isinstance(n.layer, L.ChannelAffine)]
    assert [n.name for n in bn] == ["bn"] and isinstance(net.nodes[bn[0].inputs[0]].layer, L.Sum)
    # and one read twice (by the relu and the shortcut) cannot be folded either
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.bn = nn.Linear(3, 3), nn.BatchNorm1d(3)

        def forward(self, x):
            h = self.fc(x)
            return self.bn(h) + h

    model = randomise_batchnorm(Twice()).double().eval()
    x = torch.randn(4, 3, dtype=torch.float64)
    net = to_network(model)
    assert [type(n.layer).__name__ for n in net.nodes] == ["Linear", "ChannelAffine", "Sum"]
    torch.testing.assert_close(net(x), model(x))


class Views(nn.Module):
    def __init__(self):
        super().__init__()
        self.unflat = nn.Unflatten(1, (1, 6, 6))
        self.conv = nn.Conv2d(1, 2, 3)
        self.pool = nn.AdaptiveAvgPool2d(3)
        self.fc = nn.Linear(18, 2)

    def forward(self, x):
        h = F.avg_pool2d(self.conv(self.unflat(x)), 1, 1)
        h = self.pool(F.relu(h)).reshape(-1, 2, 9)
        h = h.view(h.shape[0], 18)
        return self.fc(-h + 1.0).relu()


def test_unflatten_reshape_view_shape0_neg_and_constant_offsets():
    torch.manual_seed(6)
    model = Views().double().eval()
    x = torch.randn(5, 36, dtype=torch.float64)
    net = to_network(model, input_shape=(36,))
    assert net.is_chain
    assert [type(layer).__name__ for layer in net.layers] == [
        "Unflatten", "Conv2d", "AvgPool2d", "LeakyReLU", "AdaptiveAvgPool2d", "Reshape", "Reshape", "Sum", "Sum",
        "Linear", "LeakyReLU",
    ]
    torch.testing.assert_close(net(x), model(x))
    assert torch.equal(net.bits(x), function_patterns(model, x))


@pytest.mark.parametrize("forward, message", [
    (lambda self, x: self.fc(x) * self.fc(x), "product of two tensors"),
    (lambda self, x: self.fc(x).view(-1), "may not keep the batch"),
    (lambda self, x: self.fc(x).view(x.size(1), -1), "only x.size\\(0\\)"),
    (lambda self, x: torch.flatten(self.fc(x)), "merges the batch"),
    (lambda self, x: torch.cat([self.fc(x), x], dim=0), "mixes the batch"),
    (lambda self, x: self.fc(x).abs(), "node 'abs.*' \\(call_method abs\\).*not on the whitelist"),
    (lambda self, x: torch.exp(self.fc(x)), "node 'exp'"),
    (lambda self, x: self.fc(x) if x.sum() > 0 else x, "could not be traced with torch.fx at .*test_network_graph.py"),
    (lambda self, x: (self.fc(x), x), "must return one tensor"),
    (lambda self, x: F.dropout(self.fc(x), 0.5), "training=self.training"),
    (lambda self, x: self.fc.weight.T @ x, "right operand must be a parameter or buffer .*got a value computed from the input"),
    (lambda self, x: torch.cat([self.fc(x), self.fc.bias], 1), "uses 'fc.bias', a tensor of the model's parameters or buffers"),
    (lambda self, x: self.fc.bias / self.fc(x), "dividing by values computed from the input is not piecewise linear"),
    (lambda self, x: 1.0 / self.fc(x), "arithmetic on tensors must be"),
    (lambda self, x: self.fc(x) + torch.randn(3), "forward creates a tensor at each call .*register_buffer"),
    (lambda self, x: self.fc(x) + torch.randn_like(self.fc.bias), "randn_like draws random numbers"),
])
def test_unsupported_graph_operations_name_the_node_and_the_fix(forward, message):
    with pytest.raises(TypeError, match=message):
        to_network(linear_with_forward(forward))


def test_torch_modules_off_the_whitelist_are_refused_by_name_not_traced_into():
    model = nn.Sequential(nn.Linear(3, 3), nn.Sequential(nn.ReLU(), nn.LayerNorm(3)))
    with pytest.raises(TypeError, match="module '1.1' of type LayerNorm is not supported"):
        to_network(model)


class MyLinear(nn.Linear):
    def forward(self, x):  # a subclass that changes what the layer computes
        return F.linear(x, 2 * self.weight, self.bias)


class ReLUOfLinear(nn.Linear):
    def forward(self, x):  # F.linear reads x, not a parameter, as its weight
        return F.linear(self.weight, x)


class ShiftedReLU(nn.ReLU):
    def forward(self, x):
        return F.relu(x - 1.0)


class PlainSubclass(nn.Linear):
    """Subclass that keeps nn.Linear.forward: accepted as a Linear."""


def test_whitelist_is_by_exact_forward():
    with pytest.raises(TypeError, match="'0' is a subclass of nn.Linear that overrides forward"):
        to_network(nn.Sequential(ReLUOfLinear(3, 3), nn.ReLU()))
    # F.linear with the layer's own (scaled) weight is traced and computed as written, never trusted
    model = nn.Sequential(MyLinear(3, 3), nn.ReLU()).double()
    x = torch.randn(6, 3, dtype=torch.float64)
    torch.testing.assert_close(to_network(model)(x), model(x), rtol=1e-12, atol=1e-12)
    # a subclass whose forward is made of supported operations is traced and computed as written
    model = nn.Sequential(nn.Linear(3, 3), ShiftedReLU()).double()
    x = torch.randn(6, 3, dtype=torch.float64)
    net = to_network(model)
    assert [type(layer).__name__ for layer in net.layers] == ["Linear", "Sum", "LeakyReLU"]
    torch.testing.assert_close(net(x), model(x))
    assert torch.equal(net.bits(x), model[0](x) > 1.0)
    net = to_network(nn.Sequential(PlainSubclass(3, 2)))
    assert isinstance(net.layers[0], L.Linear)


def test_hooks_are_refused_module_level_and_global():
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    for register in (model[1].register_forward_hook, model[0].register_forward_pre_hook):
        handle = register(lambda *a: None)
        try:
            with pytest.raises(ValueError, match="module '[01]' .* has forward hooks"):
                to_network(model)
        finally:
            handle.remove()
    handle = torch.nn.modules.module.register_module_forward_hook(lambda *a: None)
    try:
        with pytest.raises(ValueError, match="global forward hooks"):
            to_network(model)
    finally:
        handle.remove()
    to_network(model)  # fine once removed


def test_chain_interface_and_graph_refusals():
    net = to_network(ResidualMLP(d=2).eval())
    assert not net.is_chain
    with pytest.raises(TypeError, match="chains of layers only.*node 'add'"):
        net.layers
    from reluscope import regions_2d

    assert regions_2d(net).n_regions > 1  # regions_2d handles graphs (tests/test_regions_graph.py)
    assert Network.chain(list(to_network(nn.Sequential(nn.Linear(2, 2), nn.ReLU())).layers)).is_chain


def test_schedule_frees_each_value_once_after_its_last_reader():
    """Network.schedule serves forward, regions_2d's sweep and its sizing: every node output but the
    network's is freed exactly once, at its last reader (or at once when nobody reads it)."""
    net = to_network(ResidualMLP(d=3).eval())
    freed = {j: step.index for step in net.schedule() for j in step.free}
    assert sorted(freed) == list(range(len(net.nodes) - 1))
    for j in range(len(net.nodes) - 1):
        readers = [i for i, node in enumerate(net.nodes) if j in node.inputs]
        assert freed[j] == max(readers, default=j)
    x = torch.randn(4, 3)
    live = {-1: x}
    for step in net.schedule():  # a walk that frees as scheduled never reads a freed value
        live[step.index] = step.layer.forward(*[live[j] for j in step.inputs])
        for j in step.free:
            del live[j]
    assert set(live) == {-1, len(net.nodes) - 1}
    torch.testing.assert_close(live[len(net.nodes) - 1], net.values(x)[-1])
    # the nodes a traversal needs (up to the last activation): its ancestors only, freed among them
    last_act = max(i for i, n in enumerate(net.nodes) if isinstance(n.layer, L.AbstractActivation))

    def ancestors(i):
        return {i}.union(*[ancestors(j) for j in net.nodes[i].inputs if j >= 0])

    part = net.schedule([last_act])
    assert [step.index for step in part] == sorted(ancestors(last_act)) and last_act < len(net.nodes) - 1
    assert sorted(j for step in part for j in step.free) == [step.index for step in part]


@pytest.mark.parametrize("targets", [[99], [-1], [1.0], [True]])
def test_schedule_refuses_targets_that_are_not_node_indices(targets):
    # regression: an index past the end raised a bare IndexError from inside, and -1 (the input's
    # marker) gave a schedule with a step for node -1
    net = to_network(ResidualMLP(d=3).eval())
    with pytest.raises(ValueError, match=r"targets: expected node indices in \[0, "):
        net.schedule(targets)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    width=st.integers(1, 5),
    depth=st.integers(1, 3),
    slope=st.sampled_from([0.0, 0.1]),
    scale=st.floats(-2, 2, allow_nan=False),
)
def test_random_residual_mlps_match_the_region_key(seed, width, depth, slope, scale):
    torch.manual_seed(seed)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = nn.Linear(2, width)
            self.blocks = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
            self.out = nn.Linear(2 * width, 2)

        def forward(self, x):
            h = self.inp(x)
            for block in self.blocks:
                h = h + scale * F.leaky_relu(block(h), slope)
            return self.out(torch.cat([F.relu(h), h], 1))

    model = Net().double().eval()
    x = torch.randn(64, 2, dtype=torch.float64)
    torch.testing.assert_close(to_network(model)(x), model(x), rtol=1e-12, atol=1e-12)
    assert torch.equal(activation_patterns(model, x), function_patterns(model, x))


@pytest.mark.parametrize("name", ["resnet-bottleneck", "residual-mlp"])
def test_tangent_features_of_graph_models_match_an_autograd_loop(name):
    from reluscope.tangent import tangent_features

    make, shape = MODELS[name]
    model = make().double()
    torch.manual_seed(7)
    x = torch.randn(3, *shape, dtype=torch.float64)
    g = tangent_features(model, x, normalize=False).reshape(3, -1)
    params = [p for p in model.parameters() if p.requires_grad]
    for i in range(3):
        ref = torch.autograd.grad(model(x[i : i + 1]).sum(), params)
        torch.testing.assert_close(g[i], torch.cat([r.reshape(-1) for r in ref]), rtol=1e-10, atol=1e-12)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), channels=st.integers(1, 3), pool=st.sampled_from(["max", "avg", "adaptive"]),
       downsample=st.booleans())
def test_random_residual_cnns_match_the_region_key(seed, channels, pool, downsample):
    torch.manual_seed(seed)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(1, channels, 3, padding=1)
            self.bn = nn.BatchNorm2d(channels)
            self.conv = nn.Conv2d(channels, channels, 3, padding=1)
            self.short = nn.Conv2d(channels, channels, 1) if downsample else nn.Identity()
            self.fc = nn.Linear(channels * 4, 2)

        def forward(self, x):
            h = F.relu(self.stem(x))
            h = F.relu(self.bn(self.conv(h) + self.short(h)))
            if pool == "max":
                h = F.max_pool2d(h, 3, 2, 1)
            elif pool == "avg":
                h = F.avg_pool2d(h, 2)
            else:
                h = F.adaptive_avg_pool2d(h, 2)
            return self.fc(h.view(h.size(0), -1))

    model = randomise_batchnorm(Net()).double().eval()
    x = torch.randn(8, 1, 4, 4, dtype=torch.float64)
    net = to_network(model, input_shape=(1, 4, 4))
    assert any(isinstance(n.layer, L.ChannelAffine) for n in net.nodes)  # BN after the addition
    torch.testing.assert_close(net(x), model(x), rtol=1e-12, atol=1e-12)
    assert torch.equal(activation_patterns(model, x), function_patterns(model, x))
