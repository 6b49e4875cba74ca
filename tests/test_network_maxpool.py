"""MaxPool2d through torch's pooling indices equals the window-by-window reference (unfold +
first argmax), ties and padding included, and its derivative copies the argmax entry."""

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from reluscope.network.layers import MaxPool2d


def _reference(layer, z, dz):
    w = layer.windows(z)
    idx = w.argmax(dim=2)
    hw = layer.output_hw(*z.shape[-2:])
    out = w.gather(2, idx.unsqueeze(2)).squeeze(2).reshape(z.shape[0], z.shape[1], *hw)
    d = layer.windows(dz, fill=0.0).gather(2, idx.unsqueeze(2)).squeeze(2).reshape(out.shape)
    return idx, out, d


@settings(max_examples=60, deadline=None)
@given(
    k=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    s=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    d=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    pad=st.booleans(),
    ties=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_pooling_indices_equal_the_window_reference(k, s, d, pad, ties, seed):
    p = (k[0] // 2, k[1] // 2) if pad else (0, 0)
    layer = MaxPool2d("pool", k, s, p, d)
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(2, 3, 7, 8, generator=g, dtype=torch.float64)
    if ties:  # few distinct values: many windows have several maxima
        z = torch.round(z)
    dz = torch.randn(z.shape, generator=g, dtype=torch.float64)
    idx, out, d_out = _reference(layer, z, dz)
    assert torch.equal(layer.argmax(z), idx)
    got, got_d = layer.jvp(z, dz)
    assert torch.equal(got, out) and torch.equal(got_d, d_out)
    assert torch.equal(layer.forward(z), F.max_pool2d(z, k, s, p, d))
    assert torch.equal(layer.bits(z), F.one_hot(idx, k[0] * k[1]).bool().flatten(1))


def test_all_equal_window_goes_to_the_first_position():
    layer = MaxPool2d("pool", (2, 2), (2, 2))
    z = torch.zeros(1, 1, 2, 2, dtype=torch.float64)
    assert layer.argmax(z).tolist() == [[[0]]]
