"""Layers by name: `activations`, `activation_patterns(layers=...)`, `pattern_layout`, and
`hidden_features` next to in-place and functional ReLUs (issues 11.4, 10.11, 16.1)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from reluscope import Activations, activation_patterns, activations, hidden_features, pattern_layout, to_network
from reluscope.testing.models import BasicBlock, LeNetFunctional, tiny_resnet


class InPlace(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 8)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(8, 2)
        self.unused = nn.Linear(8, 8)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Functional(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 8)
        self.fc2 = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


def _x(n=50, d=3):
    torch.manual_seed(0)
    return torch.randn(n, d) * 3


def test_in_place_relu_does_not_overwrite_the_captured_pre_activation():
    torch.manual_seed(1)
    model, x = InPlace().eval(), _x()
    pre = model.fc1(x).detach()
    assert pre.min() < 0
    torch.testing.assert_close(activations(model, x, layer="fc1").value, pre)  # used to come back clamped at 0
    torch.testing.assert_close(activations(model, x, layer="fc1 output").value, pre)
    torch.testing.assert_close(activations(model, x, layer="act input").value, pre)
    torch.testing.assert_close(activations(model, x, layer="act").value, pre.clamp(min=0))
    torch.testing.assert_close(hidden_features(model, x, hidden_layer="fc1"), pre)
    torch.testing.assert_close(hidden_features(model, x), pre.clamp(min=0))  # default: input of the last Linear


def test_functional_relu_points_are_graph_nodes():
    torch.manual_seed(2)
    model, x = Functional().eval(), _x()
    pre = model.fc1(x).detach()
    post, before = activations(model, x, layer=["relu", "relu input"])
    torch.testing.assert_close(post, pre.clamp(min=0))
    torch.testing.assert_close(before, pre)
    torch.testing.assert_close(hidden_features(model, x, hidden_layer="relu"), pre.clamp(min=0))
    torch.testing.assert_close(hidden_features(model, x, hidden_layer="fc2 input"), pre.clamp(min=0))


def test_unreached_and_unknown_names_are_errors_naming_them():
    model, x = InPlace().eval(), _x()
    with pytest.raises(ValueError, match="forward never reaches module 'unused'"):
        activations(model, x, layer="unused")
    with pytest.raises(ValueError, match="hidden_layer: forward never reaches module 'unused'"):
        hidden_features(model, x, hidden_layer="unused")  # was an IndexError
    with pytest.raises(ValueError, match="'nope' is not a layer that forward reaches.*'fc1'"):
        activations(model, x, layer="nope")
    with pytest.raises(ValueError, match="'<module> input' or '<module> output'"):
        activations(model, x, layer="fc1 middle")
    with pytest.raises(ValueError, match="is not one of the network's activation layers.*'act'"):
        activation_patterns(model, x, layers=["fc1"])


def test_a_module_run_twice_is_named_by_call():
    model = tiny_resnet(BasicBlock, layers=(1, 1))
    torch.manual_seed(3)
    x = torch.randn(4, 3, 8, 8)
    with pytest.raises(ValueError, match="runs 2 times in forward; name one call: 'layer1.0.relu#1', 'layer1.0.relu#2'"):
        activations(model, x, layer="layer1.0.relu")
    first, second = activations(model, x, layer=["layer1.0.relu#1", "layer1.0.relu#2"])
    net = to_network(model, input_shape=(3, 8, 8))
    values = net.values(x)
    names = [n.name for n in net.nodes]
    torch.testing.assert_close(first, values[names.index("layer1.0.relu")])
    torch.testing.assert_close(second, values[names.index("layer1.0.relu#2")])
    block_out = activations(model, x, layer="layer1").value
    torch.testing.assert_close(block_out, second)


def test_activation_patterns_of_chosen_layers_and_their_layout():
    model = tiny_resnet(BasicBlock, layers=(1, 1))
    torch.manual_seed(4)
    x = torch.randn(6, 3, 8, 8)
    full = activation_patterns(model, x)
    layout = pattern_layout(model, x)
    assert layout[-1].stop == full.shape[1]
    spans = {u.name: u for u in layout}
    chosen = activation_patterns(model, x, layers=["maxpool", "layer1.0.relu#2"])
    expected = torch.cat([full[:, spans[n].start:spans[n].stop] for n in ("maxpool", "layer1.0.relu#2")], dim=1)
    assert torch.equal(chosen, expected)
    # a bare name of a module run twice selects all its calls
    both = activation_patterns(model, x, layers="layer1.0.relu")
    sub = pattern_layout(model, x, layers="layer1.0.relu")
    assert [u.name for u in sub] == ["layer1.0.relu", "layer1.0.relu#2"] and both.shape[1] == sub[-1].stop
    # bits of a layer = signs of its input, from activations
    z = activations(model, x, layer="layer2.0.relu#2 input").value
    assert torch.equal(activation_patterns(model, x, layers="layer2.0.relu#2"), (z > 0).reshape(6, -1))


def test_activations_of_a_functional_lenet_by_graph_name():
    torch.manual_seed(5)
    model = LeNetFunctional().eval()
    x = torch.randn(3, 1, 12, 12)
    pooled = activations(model, x, layer="max_pool2d_1").value
    assert pooled.shape == (3, 4, 1, 1)
    torch.testing.assert_close(activations(model, x, layer="fc1 input").value, pooled.reshape(3, -1))


def test_activations_result_names_what_it_read():
    """One call, a result: values in the order asked, the names as given and the points read."""
    model = tiny_resnet(BasicBlock, layers=(1, 1))
    torch.manual_seed(6)
    x = torch.randn(5, 3, 8, 8)
    got = activations(model, x, layer=["fc input", "layer1.0.relu#2", "layer1.0.add"])
    assert isinstance(got, Activations) and len(got) == 3
    assert got.layers == ("fc input", "layer1.0.relu#2", "layer1.0.add")
    assert got.points == ("fc input", "layer1.0.relu#2 output", "layer1.0.add")
    net = to_network(model, input_shape=(3, 8, 8))
    values, names = net.values(x), [n.name for n in net.nodes]
    torch.testing.assert_close(got["layer1.0.relu#2"], values[names.index("layer1.0.relu#2")])
    torch.testing.assert_close(got["layer1.0.add"], values[names.index("layer1.0.add")])
    assert got.flat().shape == (5, sum(v[0].numel() for v in got))
    with pytest.raises(ValueError, match="3 layers were asked for"):
        got.value
    with pytest.raises(KeyError, match="'nope' is not among"):
        got["nope"]
    # the batch size follows memory_budget (here one input per pass) and does not change the values
    one = activations(model, x, layer="layer1.0.relu#2", memory_budget=40_000)
    torch.testing.assert_close(one.value, got[1])
    with pytest.warns(DeprecationWarning, match="memory_budget"):
        old = activations(model, x, layer="layer1.0.relu#2", batch_size=2)
    torch.testing.assert_close(old.value, got[1])


def test_hull_functions_take_a_layer_name():
    from reluscope import NearestConvexHull, class_geometry

    torch.manual_seed(6)
    model = InPlace().eval()
    x = torch.randn(40, 3)
    y = (x[:, 0] > 0).long().numpy()
    feats = model.fc1(x).detach().double()
    by_name = NearestConvexHull(model=model, layer="fc1").fit(x, y)
    by_hand = NearestConvexHull().fit(feats, y)
    assert (by_name.decision_function(x[:10]) == by_hand.decision_function(feats[:10])).all()
    assert (by_name.predict_train() == by_hand.predict_train()).all()
    g1 = class_geometry(x, y, model=model, layer=["fc1", "act"])
    g2 = class_geometry(torch.cat([feats, feats.clamp(min=0)], 1), y)
    assert (g1.crucial == g2.crucial).all() and (g1.misinclusion_train == g2.misinclusion_train).all()
