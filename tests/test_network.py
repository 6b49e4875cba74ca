"""Conversion of torch modules into `Network`: every whitelisted layer, BatchNorm folding, eval-mode
and unsupported-layer errors, torch.fx tracing of custom modules, max-pool bits."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from reluscope.network import SUPPORTED_MODULES, Network, to_network
from reluscope.network import layers as L
from reluscope.testing.sampling import maxpool_argmax_bits, module_patterns


def randomise_batchnorm(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.3, 3)
            if m.affine:
                m.weight.data.uniform_(-2, 2)
                m.bias.data.uniform_(-1, 1)
    return model


IMAGE_MODELS = {
    "conv-stride-pad-dilation": lambda: nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=2, dilation=2)),
    "conv-groups-same-nobias": lambda: nn.Sequential(nn.Conv2d(4, 6, 3, padding="same", groups=2, bias=False)),
    "conv-bn2d": lambda: nn.Sequential(nn.Conv2d(3, 5, 3), nn.BatchNorm2d(5), nn.ReLU()),
    "bn2d-first-no-affine": lambda: nn.Sequential(nn.BatchNorm2d(3, affine=False), nn.Conv2d(3, 2, 1)),
    "avgpool-variants": lambda: nn.Sequential(
        nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), nn.AvgPool2d(2, divisor_override=3)
    ),
    "maxpool-pad-dilation": lambda: nn.Sequential(nn.MaxPool2d(3, stride=2, padding=1, dilation=2)),
    "leaky-identity-dropout-flatten-linear": lambda: nn.Sequential(
        nn.LeakyReLU(0.3), nn.Identity(), nn.Dropout2d(0.5), nn.Flatten(), nn.Linear(3 * 8 * 8, 4)
    ),
    "nested-sequential": lambda: nn.Sequential(
        nn.Sequential(nn.Conv2d(3, 4, 3), nn.Sequential(nn.ReLU(), nn.MaxPool2d(2))),
        nn.Flatten(), nn.Linear(4 * 3 * 3, 2),
    ),
    "smooth": lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.GELU(), nn.Conv2d(4, 4, 1), nn.SiLU(), nn.Tanh(), nn.Sigmoid()),
}
VECTOR_MODELS = {
    "linear-bn1d-relu": lambda: nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3)),
    "linear-nobias-dropout": lambda: nn.Sequential(nn.Linear(6, 4, bias=False), nn.Dropout(0.2), nn.LeakyReLU(0.05)),
    "bn1d-first": lambda: nn.Sequential(nn.BatchNorm1d(6), nn.Linear(6, 2)),
}


@pytest.mark.parametrize("name", sorted(IMAGE_MODELS))
def test_image_layers_reproduce_torch_in_float64(name):
    torch.manual_seed(0)
    model = randomise_batchnorm(IMAGE_MODELS[name]().double()).eval()
    in_channels = 4 if "groups" in name else 3
    x = torch.randn(5, in_channels, 8, 8, dtype=torch.float64)
    net = to_network(model, input_shape=x.shape[1:])
    torch.testing.assert_close(net(x), model(x), rtol=1e-12, atol=1e-12)
    assert torch.equal(net.bits(x), module_patterns(model, x))


@pytest.mark.parametrize("name", sorted(VECTOR_MODELS))
def test_vector_layers_reproduce_torch_in_float64(name):
    torch.manual_seed(1)
    model = randomise_batchnorm(VECTOR_MODELS[name]().double()).eval()
    x = torch.randn(7, 6, dtype=torch.float64)
    net = to_network(model)
    assert net.input_shape == ((6,) if isinstance(model[0], nn.Linear) else None)
    torch.testing.assert_close(net(x), model(x), rtol=1e-12, atol=1e-12)
    assert torch.equal(net.bits(x, include_output=True), module_patterns(model, x, include_output=True))


def test_batchnorm_is_folded_into_preceding_affine_layer():
    torch.manual_seed(2)
    model = randomise_batchnorm(nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU())).double().eval()
    net = to_network(model)
    assert [type(layer).__name__ for layer in net.layers] == ["Linear", "LeakyReLU"]
    bn = model[1]
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    torch.testing.assert_close(net.layers[0].weight, model[0].weight * scale[:, None])
    first = to_network(randomise_batchnorm(nn.Sequential(nn.BatchNorm1d(4), nn.Linear(4, 2))).eval())
    assert isinstance(first.layers[0], L.ChannelAffine)  # nothing to fold into


@pytest.mark.parametrize(
    "module", [nn.Dropout(0.1), nn.BatchNorm1d(4), nn.AlphaDropout(0.2)], ids=["dropout", "batchnorm", "alphadropout"]
)
def test_training_mode_is_refused(module):
    model = nn.Sequential(nn.Linear(4, 4), module, nn.ReLU())  # modules start in training mode
    with pytest.raises(ValueError, match=r"model: module '1' \(.*\) is in training mode.*model.eval\(\)"):
        to_network(model)
    to_network(model.eval())


def test_dropout_with_p_zero_may_stay_in_training_mode():
    to_network(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.0), nn.ReLU()))


def test_unsupported_layer_names_path_type_and_whitelist():
    model = nn.Sequential(nn.Linear(3, 3), nn.Sequential(nn.ReLU(), nn.ELU()))
    with pytest.raises(TypeError) as err:
        to_network(model)
    message = str(err.value)
    assert "'1.1'" in message and "ELU" in message
    for name in ("Linear", "Conv2d", "MaxPool2d", "BatchNorm"):
        assert name in message
    assert all(isinstance(s, str) for s in SUPPORTED_MODULES)
    with pytest.raises(TypeError, match="model: expected a torch.nn.Module"):
        to_network("not a model")
    with pytest.raises(TypeError, match="ceil_mode"):
        to_network(nn.Sequential(nn.MaxPool2d(2, ceil_mode=True)))


class ChainNet(nn.Module):
    """A custom module that is a straight chain: torch.fx must trace it."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.act = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(3 * 3 * 3, 5)
        self.fc2 = nn.Linear(5, 2)

    def forward(self, x):
        x = self.pool(self.act(self.conv(x)))
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


class ResidualNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return x + torch.relu(self.fc(x))


def test_fx_traced_custom_module():
    torch.manual_seed(3)
    model = ChainNet().double().eval()
    x = torch.randn(6, 1, 8, 8, dtype=torch.float64)
    net = to_network(model, input_shape=(1, 8, 8))
    assert [type(layer).__name__ for layer in net.layers] == [
        "Conv2d", "LeakyReLU", "MaxPool2d", "Flatten", "Linear", "LeakyReLU", "Linear",
    ]
    torch.testing.assert_close(net(x), model(x), rtol=1e-12, atol=1e-12)
    hooked = module_patterns(model, x)  # F.relu is invisible to hooks: add its bits by hand
    fc1 = model.fc1(torch.flatten(model.pool(model.act(model.conv(x))), 1))
    assert torch.equal(net.bits(x), torch.cat([hooked, fc1 > 0], dim=1))
    assert "fc1" in [layer.name for layer in net.layers]


def test_residual_custom_module_is_a_graph_and_chain_only_code_refuses_it():
    net = to_network(ResidualNet().double())
    assert not net.is_chain and [n.inputs for n in net.nodes] == [(-1,), (0,), (-1, 1)]
    with pytest.raises(TypeError, match="chains of layers only.*node 'add' reads the input, 'relu'"):
        net.layers


def test_maxpool_bits_are_one_hot_argmax_with_first_wins_ties():
    pool = nn.MaxPool2d(2)
    x = torch.tensor([[[[1.0, 3.0, 0.0, 0.0], [2.0, 3.0, 0.0, 0.0]]]])  # second window all tied
    bits = to_network(nn.Sequential(pool), input_shape=(1, 2, 4)).bits(x)
    assert bits.tolist() == [[False, True, False, False, True, False, False, False]]
    assert torch.equal(bits, maxpool_argmax_bits(pool, x))
    torch.manual_seed(4)
    z = torch.randn(3, 2, 7, 7, dtype=torch.float64)
    layer = L.MaxPool2d("p", (3, 3), (2, 2), (1, 1), (1, 1))
    b = layer.bits(z).reshape(3, 2, -1, 9)
    assert bool((b.sum(dim=3) == 1).all())  # exactly one argmax per window
    assert torch.equal(layer.bits(z), maxpool_argmax_bits(nn.MaxPool2d(3, 2, 1), z))
    torch.testing.assert_close(layer.forward(z), F.max_pool2d(z, 3, 2, 1))


def test_network_to_dtype_and_unit_layout():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 5), nn.LeakyReLU(0.1), nn.Linear(5, 2))
    net = to_network(model).to(dtype=torch.float64)
    assert isinstance(net, Network) and net.dtype == torch.float64
    layout = net.unit_layout(include_output=True)
    assert [(u.start, u.stop) for u in layout] == [(0, 4), (4, 9), (9, 11)]
    assert net.n_units() == 9 and net.n_units(include_output=True) == 11
    assert net.bits(torch.randn(2, 3, dtype=torch.float64), include_output=True).shape == (2, 11)
