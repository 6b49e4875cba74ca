"""Activation patterns against the hook-based reference; packed storage and Hamming distances."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from reluscope.network import to_network
from reluscope.patterns import (
    HammingMethod,
    PackedPatterns,
    activation_patterns,
    hamming,
    pack_patterns,
    pairwise_hamming,
    unpack_patterns,
    walk_distances,
    walk_extents,
)
from reluscope.testing.sampling import module_patterns

ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky": lambda: nn.LeakyReLU(0.1),
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


def random_mlp(seed: int, in_dim: int, widths, act: str, out_dim: int = 3) -> nn.Sequential:
    torch.manual_seed(seed)
    layers, d = [], in_dim
    for w in widths:
        layers += [nn.Linear(d, w), ACTIVATIONS[act]()]
        d = w
    layers.append(nn.Linear(d, out_dim))
    return nn.Sequential(*layers).double().eval()


def small_cnn(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2, padding=1),
        nn.Conv2d(4, 3, 2), nn.LeakyReLU(0.2), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(3, 4),
    ).double()
    bn = model[1]
    bn.running_mean.uniform_(-0.5, 0.5)
    bn.running_var.uniform_(0.5, 2.0)
    return model.eval()


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    in_dim=st.integers(2, 12),
    widths=st.lists(st.integers(1, 10), min_size=1, max_size=3),
    act=st.sampled_from(sorted(ACTIVATIONS)),
    include_output=st.booleans(),
)
def test_patterns_match_hook_reference(seed, in_dim, widths, act, include_output):
    model = random_mlp(seed, in_dim, widths, act)
    x = torch.randn(17, in_dim, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    bits = activation_patterns(model, x, include_output=include_output)
    assert bits.dtype == torch.bool
    assert bits.shape == (17, sum(widths) + (3 if include_output else 0))
    assert torch.equal(bits, module_patterns(model, x, include_output=include_output))


def test_cnn_patterns_match_hook_reference():
    model = small_cnn(0)
    x = torch.randn(20, 2, 7, 7, dtype=torch.float64)
    for include_output in (False, True):
        expected = module_patterns(model, x, include_output=include_output)
        assert torch.equal(activation_patterns(model, x, include_output=include_output), expected)


def test_patterns_of_network_and_chunks_agree():
    model = random_mlp(1, 6, [8, 8], "relu")
    x = torch.randn(50, 6, dtype=torch.float64)
    whole = activation_patterns(model, x)
    assert torch.equal(activation_patterns(to_network(model), x), whole)
    assert torch.equal(activation_patterns(model, x, memory_budget=7 * 300), whole)  # ~7 rows per chunk
    with pytest.raises(MemoryError, match=r"memory_budget: one input needs about .* pass memory_budget >= "):
        activation_patterns(model, x, memory_budget=16)
    assert whole.device == x.device


def test_float32_model_is_evaluated_in_dtype_of_x():
    model = random_mlp(2, 4, [6], "relu").float()
    x = torch.randn(10, 4, dtype=torch.float64)
    assert torch.equal(activation_patterns(model, x), module_patterns(model, x))
    assert activation_patterns(model, x.float()).shape == (10, 6)


def test_bad_inputs_name_the_argument():
    model = random_mlp(0, 4, [5], "relu")
    with pytest.raises(ValueError, match=r"x: expected shape \[N, 4\], got \[3, 5\]"):
        activation_patterns(model, torch.randn(3, 5))
    with pytest.raises(ValueError, match="unsqueeze"):
        activation_patterns(model, torch.randn(4))
    with pytest.raises(ValueError, match="NaN"):
        activation_patterns(model, torch.tensor([[0.0, float("nan"), 0.0, 0.0]]))
    with pytest.raises(TypeError, match="bool"):
        activation_patterns(model, torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="memory_budget"):
        activation_patterns(model, torch.randn(2, 4), memory_budget=0)
    dropout = nn.Sequential(nn.Linear(4, 5), nn.Dropout(0.5), nn.ReLU())
    with pytest.raises(ValueError, match="training mode.*eval"):
        activation_patterns(dropout, torch.randn(2, 4))


# ---------------------------------------------------------------- packing and Hamming


@settings(max_examples=30, deadline=None)
@given(n=st.integers(0, 20), units=st.integers(0, 150), seed=st.integers(0, 1000))
def test_pack_roundtrip(n, units, seed):
    bits = torch.rand(n, units, generator=torch.Generator().manual_seed(seed)) > 0.5
    packed = pack_patterns(bits)
    assert isinstance(packed, PackedPatterns)
    assert packed.words.dtype == torch.uint8 and packed.words.shape == (n, (units + 7) // 8)
    assert packed.shape == (n, units) and len(packed) == n
    assert torch.equal(unpack_patterns(packed), bits)
    # same bit order as numpy's little-endian packbits, so files can be shared
    np.testing.assert_array_equal(packed.words.numpy(), np.packbits(bits.numpy(), axis=1, bitorder="little"))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 12), m=st.integers(1, 12), units=st.integers(1, 200), seed=st.integers(0, 1000))
def test_hamming_matches_numpy(n, m, units, seed):
    g = torch.Generator().manual_seed(seed)
    a, b = torch.rand(n, units, generator=g) > 0.5, torch.rand(m, units, generator=g) > 0.3
    ref = (a.numpy()[:, None, :] != b.numpy()[None, :, :]).sum(axis=2)
    for method in HammingMethod:
        for left, right in ((a, b), (pack_patterns(a), pack_patterns(b)), (a, pack_patterns(b))):
            got = pairwise_hamming(left, right, method=method, memory_budget=n * m * 2 + 5 * 4 * (units + 2 * m))
            assert got.dtype == torch.int16  # the smallest type that holds the units
            np.testing.assert_array_equal(got.numpy(), ref)
    np.testing.assert_array_equal(pairwise_hamming(a).numpy(), (a.numpy()[:, None] != a.numpy()[None]).sum(2))
    rows = min(n, m)
    np.testing.assert_array_equal(hamming(a[:rows], b[:rows]).numpy(), ref[np.arange(rows), np.arange(rows)])
    np.testing.assert_array_equal(hamming(pack_patterns(a[:1]), b).numpy(), ref[0])


def test_pairwise_hamming_thousands_by_thousands():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(3000, 300, generator=g) > 0.5, torch.rand(2500, 300, generator=g) > 0.5
    d = pairwise_hamming(a, b)
    assert d.shape == (3000, 2500)
    idx = torch.randint(0, 2500, (200,), generator=g)
    np.testing.assert_array_equal(d[idx[:100], idx[100:]].numpy(), (a[idx[:100]] != b[idx[100:]]).sum(1).numpy())
    packed = pairwise_hamming(pack_patterns(a[:300]), pack_patterns(b), method="packed")
    assert torch.equal(packed, d[:300])


def test_hamming_bad_inputs():
    a = torch.zeros(3, 10, dtype=torch.bool)
    with pytest.raises(ValueError, match="10 units"):
        pairwise_hamming(a, torch.zeros(3, 11, dtype=torch.bool))
    with pytest.raises(ValueError, match="3 rows"):
        hamming(a, torch.zeros(2, 10, dtype=torch.bool))
    with pytest.raises(TypeError, match="bool tensor"):
        hamming(a.float(), a)
    with pytest.raises(ValueError, match="method"):
        pairwise_hamming(a, method="fast")
    with pytest.raises(ValueError, match="2 bytes per row"):
        PackedPatterns(torch.zeros(3, 1, dtype=torch.uint8), 10)
    with pytest.raises(TypeError, match="uint8"):
        PackedPatterns(torch.zeros(3, 2, dtype=torch.int64), 10)


def test_reference_removes_hooks_even_when_forward_raises(monkeypatch):
    model = random_mlp(0, 4, [5], "relu")
    seen = []
    original = nn.Module.register_forward_hook

    def spy(self, hook, **kwargs):
        handle = original(self, hook, **kwargs)
        seen.append(self)
        return handle

    monkeypatch.setattr(nn.Module, "register_forward_hook", spy)
    with pytest.raises(RuntimeError):
        module_patterns(model, torch.randn(3, 7, dtype=torch.float64))  # wrong width: forward raises
    assert seen and all(not m._forward_hooks for m in seen)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 9), min_size=1, max_size=5), st.integers(1, 19), st.integers(0, 2**31 - 1))
def test_walk_distances_and_extents_agree_with_bool_sums(lengths, units, seed):
    g = torch.Generator().manual_seed(seed)
    walks = [torch.rand(n, units, generator=g) > 0.5 for n in lengths]
    ext = walk_extents(walks)
    for i, w in enumerate(walks):
        d = walk_distances(w)
        to_start = (w != w[:1]).sum(1)
        steps = (w[1:] != w[:-1]).sum(1)
        assert d.to_start.tolist() == to_start.tolist() and d.steps.tolist() == steps.tolist()
        assert (ext.end[i], ext.farthest[i], ext.length[i]) == (d.end, d.farthest, d.length)
        assert (d.end, d.farthest, d.length) == (int(to_start[-1]), int(to_start.max()), int(steps.sum()))


def test_pairwise_hamming_block_is_deprecated_for_memory_budget():
    a = torch.rand(7, 20, generator=torch.Generator().manual_seed(0)) > 0.5
    with pytest.warns(DeprecationWarning, match="memory_budget"):
        old = pairwise_hamming(a, block=2)
    assert torch.equal(old, pairwise_hamming(a))
