"""Models written the usual ways, through every method: the converted forward against the model's
own, activation patterns and exact traversal against the region key read from the user's forward
(`function_patterns`: signs of every activation input, argmax of every max-pool window), regions_2d
areas against a grid keyed the same way, save/load; and forms reluscope refuses, each in one line
naming the node and what to change."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import torch
import torch.nn as nn
import torch.nn.functional as F

from reluscope import activation_patterns, load_model, save_model, traverse
from reluscope.network import layers as L
from reluscope.network import to_network
from reluscope.regions import Plane, regions_2d
from reluscope.testing.models import linear_with_forward
from reluscope.testing.regions import check_areas_against_key, check_region_map
from reluscope.testing.sampling import check_traversal, function_patterns


def every_method(model: nn.Module, shape: tuple[int, ...], tmp_path=None, *, seed: int = 0, n: int = 400, grid: int = 50):
    """Run `model` through conversion, patterns, traversal and regions_2d against the references."""
    torch.manual_seed(seed)
    model = model.double().eval()
    x = torch.randn(6, *shape, dtype=torch.float64)
    net = to_network(model, input_shape=shape)
    with torch.no_grad():
        torch.testing.assert_close(net(x), model(x.clone()), rtol=1e-12, atol=1e-12)
    assert torch.equal(activation_patterns(model, x), function_patterns(model, x))
    tr = traverse(model, x[0], x[1])
    check_traversal(tr, model, x[0], x[1], n=n, key="functions")
    rm = regions_2d(model, plane=Plane.through_points(x[2], x[3], x[4]))
    check_region_map(rm)
    assert check_areas_against_key(rm, model, n=grid) > 1
    if tmp_path is not None:
        save_model(model, tmp_path / "m")
        loaded = load_model(tmp_path / "m").double()
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), model(x), rtol=1e-12, atol=1e-12)
    return net


class PaddedCnn(nn.Module):
    """A convolution with a padding mode or a padding layer / F.pad before the next one."""

    def __init__(self, pad: str):
        super().__init__()
        self.pad = pad
        mode = pad if pad in ("reflect", "replicate", "circular") else "zeros"
        self.conv1 = nn.Conv2d(1, 2, 3, padding="same" if pad == "circular" else 1, padding_mode=mode)
        self.padding = {"ZeroPad2d": nn.ZeroPad2d((1, 0, 2, 0)), "ConstantPad2d": nn.ConstantPad2d(1, 0.5),
                        "ReflectionPad2d": nn.ReflectionPad2d(1), "ReplicationPad2d": nn.ReplicationPad2d((0, 1, 1, 0)),
                        "CircularPad2d": nn.CircularPad2d(1)}.get(pad, nn.Identity())
        self.conv2 = nn.Conv2d(2, 2, 3)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        h = F.relu(self.conv1(x))
        if self.pad == "F.pad":
            h = F.pad(h, (1, 0, 0, 1), value=-0.25)
        elif self.pad == "F.pad reflect":
            h = F.pad(h, [1, 1, 1, 1], mode="reflect")
        h = F.relu(self.conv2(self.padding(h)))
        return self.fc(F.adaptive_avg_pool2d(h, 2).flatten(1))


@pytest.mark.parametrize("pad", [
    "reflect", "replicate", "circular", "ZeroPad2d", "ConstantPad2d", "ReflectionPad2d", "ReplicationPad2d",
    "CircularPad2d", "F.pad", "F.pad reflect",
])
def test_padding_modes_and_padding_layers_work_with_every_method(pad, tmp_path):
    # regression: padding_mode='reflect'/'replicate'/'circular', nn.*Pad2d and F.pad were refused
    net = every_method(PaddedCnn(pad), (1, 5, 5), tmp_path)
    assert sum(isinstance(node.layer, L.Pad) for node in net.nodes) == 1


def test_pad_reaching_the_batch_is_refused_at_run_time():
    net = to_network(nn.Sequential(nn.Linear(3, 3), nn.ZeroPad2d(1)))  # 4 padded dims of a [B, 3] value
    with pytest.raises(ValueError, match=r"layer '1': padding 2 dimensions reaches the batch dimension"):
        net(torch.randn(2, 3))


def _mlp(*middle: nn.Module) -> nn.Module:
    return nn.Sequential(nn.Linear(4, 4), *middle, nn.Linear(4, 2))


def _cnn(*middle: nn.Module) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), *middle, nn.Flatten(), nn.Linear(8, 2))


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
@pytest.mark.parametrize("make, message", [
    (lambda: _cnn(nn.MaxPool2d(2, ceil_mode=True)), r"module '2': MaxPool2d\(ceil_mode=True\) .* use ceil_mode=False"),
    (lambda: _cnn(nn.MaxPool2d(2, return_indices=True)), r"MaxPool2d\(return_indices=True\) .* use return_indices=False"),
    (lambda: _cnn(nn.AdaptiveMaxPool2d(2)), r"module '2' of type AdaptiveMaxPool2d .*use nn.MaxPool2d / nn.MaxPool1d\(kernel_size=k, stride=k\)"),
    (lambda: _mlp(nn.LayerNorm(4)), r"module '1' of type LayerNorm .*statistics of each input.*BatchNorm in eval mode"),
    (lambda: _cnn(nn.GroupNorm(1, 2)), r"module '2' of type GroupNorm .*not piecewise linear"),
    (lambda: nn.Sequential(_mlp(), nn.Softmax(dim=1)), r"module '1' of type Softmax .*return the logits"),
    (lambda: nn.Sequential(nn.Conv3d(1, 2, 3), nn.ReLU()), r"module '0' of type Conv3d .*3-D ones are not"),
    (lambda: _mlp(nn.ELU()), r"module '1' of type ELU .*not piecewise linear.*ReLU, LeakyReLU"),
    (lambda: torch.jit.script(_mlp(nn.ReLU())), r"TorchScript module .* pass the original nn.Module"),
    (lambda: torch.jit.trace(_mlp(nn.ReLU()), torch.randn(2, 4)), r"TorchScript module .* pass the original nn.Module"),
    (lambda: nn.DataParallel(_mlp(nn.ReLU())), r"DataParallel only spreads batches over devices; pass .* model.module"),
])
def test_refused_models_get_one_line_naming_the_module_and_the_fix(make, message):
    # regression: these said only "not supported" (or, for TorchScript, an fx AssertionError)
    with pytest.raises(TypeError, match=message) as info:
        to_network(make())
    assert "\n" not in str(info.value)


def test_uninitialized_lazy_modules_are_refused_with_the_fix():
    # regression: an uninitialized LazyLinear was refused for "forward hooks" (its sizing pre-hook)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.LazyLinear(2))
    with pytest.raises(ValueError, match=r"module '2' \(LazyLinear\) has uninitialized parameters; run the model once"):
        to_network(model)
    model(torch.randn(1, 3))  # now an nn.Linear
    assert isinstance(to_network(model).layers[-1], L.Linear)


@pytest.mark.parametrize("module", [nn.BatchNorm1d(4), nn.Dropout(0.5)])
def test_activations_refuse_a_model_in_training_mode(module):
    # regression: activations() (and the hull functions by layer name) ran a train-mode model as is:
    # BatchNorm used the batch's statistics and overwrote its running ones, dropout drew at random
    from reluscope import activations

    model = _mlp(module, nn.ReLU()).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"module '1' \(\w+\) is in training mode.*call model.eval\(\) first"):
        activations(model, torch.randn(8, 4), layer="2")
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert activations(model.eval(), torch.randn(8, 4), layer="2").value.shape == (8, 4)


class Forms(nn.Module):
    """Global pooling and activations written the other usual ways."""

    def __init__(self, form: str):
        super().__init__()
        self.form = form
        self.conv, self.act, self.fc = nn.Conv2d(1, 2, 3, padding=1), nn.PReLU(init=0.2), nn.Linear(2, 2)

    def forward(self, x):
        h = self.conv(x)
        form = self.form
        if form == "squeeze(-1).squeeze(-1)":
            h = F.adaptive_avg_pool2d(F.relu(h), 1).squeeze(-1).squeeze(-1)
        elif form == "squeeze()":
            h = torch.squeeze(F.adaptive_avg_pool2d(h.relu(), (1, 1)))
        elif form == "unsqueeze, permute, transpose":
            h = F.relu(h).unsqueeze(1).permute(0, 1, 3, 4, 2).transpose(2, 3).squeeze(1).mean((1, 2))
        elif form == "sum":
            h = torch.sum(F.relu(h), dim=(2, 3), keepdim=True) / 16 + h.sum(-1, keepdim=True).sum(-2, keepdim=True)
            h = h.sum(-1).sum(-1)
        elif form == "PReLU":
            h = self.act(h).mean((2, 3))
        elif form == "clamp_min, clamp_max":
            h = torch.clamp_max(h.clamp_min(-0.2), 0.5).mean((2, 3))
        return self.fc(h)


@pytest.mark.parametrize("form", [
    "squeeze(-1).squeeze(-1)", "squeeze()", "unsqueeze, permute, transpose", "sum", "PReLU", "clamp_min, clamp_max",
])
def test_pooling_and_activation_forms_work_with_every_method(form, tmp_path):
    # regression: x.squeeze(), unsqueeze, permute, transpose, x.sum(dims), nn.PReLU and
    # clamp_min/clamp_max were refused as "not on the whitelist"
    every_method(Forms(form), (1, 4, 4), tmp_path)


@pytest.mark.parametrize("forward, message", [
    (lambda self, x: self.fc(x).unsqueeze(0), r"unsqueeze\(0\) reaches the batch dimension"),
    (lambda self, x: self.fc(x).squeeze(0), r"squeeze\(0\) reaches the batch dimension"),
    (lambda self, x: self.fc(x)[:, None].permute(1, 0, 2), r"permute\(1, 0, 2\) moves the batch dimension"),
    (lambda self, x: self.fc(x).transpose(0, 1), "transposing dim 0 moves the batch"),
    (lambda self, x: self.fc(x).sum(), "a sum needs constant integer dims"),
    (lambda self, x: self.fc(x).sum(0), "a sum over dim 0 sums over the batch"),
])
def test_shape_forms_that_reach_the_batch_are_refused(forward, message):
    with pytest.raises(TypeError, match=message):
        to_network(linear_with_forward(forward))


def test_prelu_with_a_slope_per_channel_is_refused():
    with pytest.raises(TypeError, match=r"module '1': PReLU\(num_parameters=4\) has one slope per channel.*nn.PReLU\(\)"):
        to_network(_mlp(nn.PReLU(4)))


def test_terms_that_broadcast_across_the_batch_are_refused():
    # regression: h - h.mean(1) ([B, 3] - [B]) aligns the batch of one term with the features of the
    # other; the converted graph did the same, so a batch of 3 gave other patterns than one input at a
    # time (and traversal went on with them), silently
    class Net(nn.Module):
        def __init__(self, keepdim):
            super().__init__()
            self.fc, self.out, self.keepdim = nn.Linear(2, 3), nn.Linear(3, 2), keepdim

        def forward(self, x):
            h = F.relu(self.fc(x))
            return self.out(F.relu(h - h.mean(1, keepdim=self.keepdim)))

    model = Net(False).double()
    x = torch.randn(3, 2, dtype=torch.float64)
    for run in (lambda: activation_patterns(model, x), lambda: traverse(model, x[:1], x[1:2])):
        with pytest.raises(ValueError, match=r"layer 'sub': the terms have shapes \[\[\d, 3\], \[\d\]\].*keepdim=True"):
            run()
    every_method(Net(True), (2,))


class Normalized(nn.Module):
    """Input normalisation inside the model with buffers (RobustBench-style), then a network."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.5]).view(1, 1, 1))
        self.register_buffer("std", torch.tensor([0.25]).view(1, 1, 1, 1))
        self.inner = inner

    def forward(self, x):
        return self.inner((x - self.mean) / self.std)


class MaskedLinear(nn.Linear):
    """A pruned layer: F.linear with the weight times a 0/1 mask buffer."""

    def __init__(self, *args):
        super().__init__(*args)
        self.register_buffer("mask", (torch.rand_like(self.weight) > 0.3).to(self.weight.dtype))

    def forward(self, x):
        return F.linear(x, self.weight * self.mask, self.bias)


class HalfConv(nn.Conv2d):
    """A subclass that calls the parent's forward (F.pad + F.conv2d for padding_mode='reflect')."""

    def forward(self, x):
        return super().forward(x) * 0.5


class StandardizedConv(nn.Conv2d):
    """Weight standardisation: the weight is normalised in forward, from parameters alone."""

    def forward(self, x):
        w = self.weight
        w = (w - w.mean(dim=(1, 2, 3), keepdim=True)) / (w.std(dim=(1, 2, 3), keepdim=True) + 1e-5)
        return F.conv2d(x, w, self.bias, self.stride, self.padding, self.dilation, self.groups)


class ParamsInForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.w, self.b, self.scale = nn.Parameter(torch.randn(2, 5)), nn.Parameter(torch.randn(5)), nn.Parameter(torch.tensor(1.5))
        self.out = nn.Linear(5, 2)

    def forward(self, x):
        return self.out(F.relu(x @ self.w + self.b) * self.scale - self.b)


class CosineHead(nn.Module):
    """A classifier with normalised class weights, computed in forward from parameters alone."""

    def __init__(self):
        super().__init__()
        self.fc, self.w = nn.Linear(2, 4), nn.Parameter(torch.randn(3, 4))

    def forward(self, x):
        return 10.0 * F.linear(F.relu(self.fc(x)), F.normalize(self.w, dim=1))


def _tiny_resnet():
    from reluscope.testing.models import tiny_resnet

    return tiny_resnet(layers=(1,), width=2, in_channels=1)


CONSTANT_MODELS = {
    "normalised resnet": (lambda: Normalized(_tiny_resnet()), (1, 5, 5)),
    "masked linear": (lambda: nn.Sequential(MaskedLinear(2, 6), nn.ReLU(), MaskedLinear(6, 2)), (2,)),
    "subclass calling super().forward": (lambda: nn.Sequential(
        HalfConv(1, 2, 3, padding=1), nn.ReLU(), HalfConv(2, 2, 3, padding=1, padding_mode="reflect"), nn.ReLU(),
        nn.Flatten(), nn.Linear(32, 2)), (1, 4, 4)),
    "weight standardisation": (lambda: nn.Sequential(StandardizedConv(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(),
                                                     nn.Linear(32, 2)), (1, 4, 4)),
    "x @ W + b with parameters": (ParamsInForward, (2,)),
    "F.normalize of a weight (cosine head)": (lambda: CosineHead(), (2,)),
}


@pytest.mark.parametrize("name", list(CONSTANT_MODELS))
def test_parameters_and_buffers_read_in_forward_work_with_every_method(name, tmp_path):
    # regression: every get_attr was refused ("forward reads the tensor 'mean' directly"): input
    # normalisation with buffers, masks, F.linear/F.conv2d in a custom layer or a subclass's super().forward
    make, shape = CONSTANT_MODELS[name]
    torch.manual_seed(1)
    every_method(make(), shape)
    with pytest.raises(TypeError, match="forward reads the tensor .* directly, which the architecture file cannot describe"):
        save_model(make(), tmp_path / "m")


def test_constant_reaching_into_the_batch_is_refused_at_run_time():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)
            self.register_buffer("c", torch.ones(4, 3))  # broadcasts against a batch of 4 only

        def forward(self, x):
            return self.fc(x) * self.c

    with pytest.raises(ValueError, match=r"layer 'mul': the constant of shape \[4, 3\] reaches the batch dimension"):
        to_network(Net())(torch.randn(4, 3))


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_every_method_refuses_torchscript_naming_the_fix():
    # regression: tangent_features said "the model cannot take inputs of shape [4]" for a scripted model
    from reluscope import tangent_features

    scripted = torch.jit.script(_mlp(nn.ReLU()))
    x = torch.randn(3, 4)
    for run in (lambda: activation_patterns(scripted, x), lambda: traverse(scripted, x[:1], x[1:2]),
                lambda: tangent_features(scripted, x)):
        with pytest.raises(TypeError, match="TorchScript module .* pass the original nn.Module"):
            run()


def test_batchnorm_without_running_statistics_is_refused_in_eval_mode_too():
    from reluscope import activations

    model = _mlp(nn.BatchNorm1d(4, track_running_stats=False), nn.ReLU()).eval()
    for run in (lambda: to_network(model), lambda: activations(model, torch.randn(5, 4), layer="2")):
        with pytest.raises(ValueError, match=r"module '1' \(BatchNorm1d\) has no running statistics .*each batch's statistics"):
            run()


class WithFlags(nn.Module):
    """forward(x, return_features=False, ...) as feature extractors are usually written."""

    def __init__(self):
        super().__init__()
        self.fc, self.out = nn.Linear(2, 5), nn.Linear(5, 2)

    def forward(self, x, return_features=False, scale=None, *, temperature=2.0):
        h = F.relu(self.fc(x))
        if return_features:
            return h
        if scale is not None:
            h = h * scale
        return self.out(h) / temperature


def test_forward_arguments_with_defaults_are_traced_at_their_defaults(tmp_path):
    # regression: forward(x, return_features=False) was refused (fx cannot branch on a traced flag);
    # reluscope calls model(x), so the defaults are what it analyses
    net = every_method(WithFlags(), (2,), tmp_path)
    assert [type(n.layer).__name__ for n in net.nodes] == ["Linear", "LeakyReLU", "Linear", "Sum"]

    class TwoInputs(nn.Module):
        def forward(self, x, y):
            return x + y

    class TupleDefault(nn.Module):
        def forward(self, x, keep=(0, 2)):
            return x[:, keep[0]:keep[1]]

    with pytest.raises(TypeError, match="forward must take exactly one input tensor"):
        to_network(TwoInputs())
    # regression: fx flattens a container default, and the error said "must return one tensor"
    with pytest.raises(TypeError, match=r"forward argument 'keep' has a default reluscope cannot trace \(\(0, 2\)\); give it"):
        to_network(TupleDefault())


@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    ops=st.lists(st.sampled_from(["pad", "reflect", "normalise", "mask", "squeeze", "permute", "sum", "prelu", "clamp_min"]),
                 min_size=1, max_size=3),
)
def test_random_cnns_with_the_new_forms_match_the_region_key(seed, ops):
    torch.manual_seed(seed)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = nn.ModuleList(nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect" if op == "reflect" else "zeros")
                                       for op in ops)
            self.inp, self.act, self.out = nn.Conv2d(1, 2, 3, padding=1), nn.PReLU(init=0.3), nn.Linear(2 * 16, 2)
            self.register_buffer("shift", torch.randn(2, 1, 1))
            self.register_buffer("mask", (torch.rand(2, 4, 4) > 0.3).double())

        def forward(self, x):
            h = self.inp(x)
            for op, conv in zip(ops, self.convs):
                if op == "pad":
                    h = F.pad(F.relu(h), (1, 0, 0, 1))[..., 1:, :-1]
                elif op == "normalise":
                    h = F.relu((h - self.shift) / 0.5)
                elif op == "mask":
                    h = F.relu(h) * self.mask
                elif op == "squeeze":
                    h = F.relu(h.unsqueeze(2)).squeeze(2)
                elif op == "permute":
                    h = F.relu(h.permute(0, 2, 3, 1)).transpose(1, 3).transpose(2, 3)
                elif op == "sum":
                    h = F.relu(h) + h.sum(1, keepdim=True) / 4
                elif op == "prelu":
                    h = self.act(h)
                elif op == "clamp_min":
                    h = h.clamp_min(-0.1).clamp_max(1.0)
                else:
                    h = F.relu(h)
                h = conv(h)
            return self.out(F.relu(h).flatten(1))

    model = Net().double().eval()
    x = torch.randn(32, 1, 4, 4, dtype=torch.float64)
    torch.testing.assert_close(to_network(model)(x), model(x), rtol=1e-12, atol=1e-12)
    assert torch.equal(activation_patterns(model, x), function_patterns(model, x))
    check_traversal(traverse(model, x[0:1], x[1:2]), model, x[0], x[1], n=300, key="functions")


class Maxima(nn.Module):
    """torch.maximum / torch.max / torch.minimum of two tensors (maxout-style, a hand-written leaky ReLU)."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c, self.out = nn.Linear(2, 4), nn.Linear(2, 4), nn.Linear(2, 1), nn.Linear(4, 2)

    def forward(self, x):
        h = torch.maximum(self.a(x), self.b(x))  # maxout of two pieces
        h = torch.max(h, 0.1 * h)  # a leaky ReLU written as a max
        return self.out(torch.minimum(h, self.c(x)) - torch.min(self.b(x), self.a(x)))


def test_maximum_and_minimum_of_two_tensors_work_with_every_method(tmp_path):
    # regression: torch.maximum(a, b) / torch.max(a, b) were refused; max(a, b) = b + relu(a - b)
    torch.manual_seed(0)
    net = every_method(Maxima(), (2,), tmp_path)
    assert [u.name for u in net.unit_layout()] == ["maximum#cmp", "max#cmp", "minimum#cmp", "min#cmp"]

    class GlobalMax(nn.Module):
        def forward(self, x):
            return torch.max(x, 1)[0]

    with pytest.raises(TypeError, match=r"torch.max of one tensor or over a dimension .* nn.MaxPool2d"):
        to_network(GlobalMax())


@pytest.mark.filterwarnings("ignore:.*weight_norm:FutureWarning", "ignore:.*weight_norm:DeprecationWarning")
def test_weight_norm_and_spectral_norm_parametrizations_work_and_old_style_hooks_say_what_to_use():
    from torch.nn.utils import parametrizations

    torch.manual_seed(0)
    model = _mlp(nn.ReLU(), nn.Linear(4, 4), nn.ReLU())
    parametrizations.weight_norm(model[0])
    parametrizations.spectral_norm(model[2])
    every_method(model, (4,))  # ParametrizedLinear runs nn.Linear.forward with the computed weight
    old = _mlp(nn.ReLU())
    torch.nn.utils.weight_norm(old[0])
    with pytest.raises(ValueError, match=r"module '0' \(Linear\) has forward hooks .*old torch.nn.utils.weight_norm: use "
                                         r"torch.nn.utils.parametrizations.weight_norm"):
        to_network(old)


def test_one_dimensional_convolutions_and_pools_work_with_every_method(tmp_path):
    # regression: Conv1d, MaxPool1d, AvgPool1d and AdaptiveAvgPool1d were refused; each is its 2-D
    # form on an input of height 1 (BatchNorm1d on [B, C, L] stays a per-channel affine node)
    from reluscope.testing.models import randomise_batchnorm

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv1d(2, 3, 3, padding=1), nn.BatchNorm1d(3), nn.ReLU(), nn.MaxPool1d(2),
        nn.Conv1d(3, 3, 2, padding="same", padding_mode="reflect"), nn.ReLU(), nn.MaxPool1d(3, stride=1, padding=1),
        nn.AvgPool1d(2, padding=1, ceil_mode=True, count_include_pad=False), nn.Conv1d(3, 2, 2, stride=2), nn.ReLU(),
        nn.AdaptiveAvgPool1d(2), nn.Flatten(), nn.Linear(4, 2),
    )
    every_method(randomise_batchnorm(model), (2, 9), tmp_path)
    with pytest.raises(ValueError, match=r"layer '0#2d': a 1-D layer needs inputs \[B, C, L\], got shape \[1, 1, 2, 9\]"):
        traverse(model, torch.randn(1, 2, 9, dtype=torch.float64), torch.randn(1, 2, 9, dtype=torch.float64))


def test_pruned_layers_are_refused_until_the_pruning_is_made_permanent():
    from torch.nn.utils import prune

    model = _mlp(nn.ReLU())
    prune.l1_unstructured(model[0], "weight", 0.5)
    with pytest.raises(ValueError, match=r"module '0' .*pruned with torch.nn.utils.prune.*prune.remove\(module, 'weight'\)"):
        to_network(model)
    prune.remove(model[0], "weight")  # the masked weight becomes the parameter
    torch.testing.assert_close(to_network(model)(torch.ones(2, 4)), model(torch.ones(2, 4)))


def test_functional_dropouts_are_identities_in_eval_and_refused_when_active():
    class Net(nn.Module):
        def __init__(self, training_flag: bool):
            super().__init__()
            self.conv, self.fc, self.flag = nn.Conv2d(1, 2, 3, padding=1), nn.Linear(32, 2), training_flag

        def forward(self, x):
            h = F.dropout2d(F.relu(self.conv(x)), 0.2, training=self.training if self.flag else True)
            return self.fc(F.alpha_dropout(h.flatten(1), 0.1))  # alpha_dropout's training defaults to False

    net = to_network(Net(True).eval(), input_shape=(1, 4, 4))
    assert [type(n.layer).__name__ for n in net.nodes] == ["Conv2d", "LeakyReLU", "Flatten", "Linear"]
    with pytest.raises(TypeError, match=r"F.dropout2d is active \(training=True\); pass training=self.training"):
        to_network(Net(False).eval())


class Decoder(nn.Module):
    """Upsampling as autoencoders and U-Nets write it: nn.Upsample and F.interpolate (linear in x)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.up = nn.Conv2d(1, 2, 3, stride=2, padding=1), nn.Upsample(scale_factor=2, mode="nearest")
        self.conv2, self.fc = nn.Conv2d(2, 2, 3, padding=1), nn.Linear(2 * 16, 2)

    def forward(self, x):
        h = F.relu(self.conv1(x))
        h = F.relu(self.conv2(self.up(h))) + F.interpolate(h, size=(4, 4), mode="bilinear", align_corners=False)
        return self.fc(F.relu(h).flatten(1))


def test_upsampling_works_with_every_method(tmp_path):
    # regression: nn.Upsample and F.interpolate were refused
    torch.manual_seed(0)
    every_method(Decoder(), (1, 4, 4), tmp_path)
