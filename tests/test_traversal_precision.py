"""Precision honesty of exact traversal: which dtype was analysed, warnings, dtype="model", and
pieces whose bits were decided within rounding (checked against rational arithmetic)."""

from __future__ import annotations

import copy
import warnings
from fractions import Fraction

import pytest
import torch
import torch.nn as nn

from reluscope.folding.cantor import cantor_path, cantornet, cantornet_spec, rational_walk
from reluscope.network import to_network
from reluscope.traversal import Precision, PrecisionWarning, traverse, traverse_many


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 2))


def test_float64_is_the_default_and_said_so():
    net = _net()
    x0, x1 = torch.randn(2, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a float32 model analysed in float64 is the normal case: no warning
        tr = traverse(net, x0, x1)
    assert tr.dtype == "float64" and tr.n_uncertain == 0
    assert tr.uncertain.shape == (tr.n_pieces,)
    same = traverse(net.double(), x0, x1, dtype=Precision.MODEL)
    assert torch.equal(same.t, tr.t) and torch.equal(same.patterns, tr.patterns)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_model_warns_and_model_mode_runs_in_its_dtype(dtype):
    net = copy.deepcopy(_net(1)).to(dtype)
    x0, x1 = torch.randn(2, 6, generator=torch.Generator().manual_seed(1)).to(dtype)
    with pytest.warns(PrecisionWarning, match="analysed in float64"):
        tr64 = traverse(net, x0, x1)
    with pytest.warns(PrecisionWarning, match="analysed in float64"):
        traverse_many(net, x0[None], x1[None])
    assert tr64.dtype == "float64"
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*analysed in float64")
        trm = traverse(net, x0, x1, dtype="model")
    assert trm.dtype == str(dtype).removeprefix("torch.")
    assert trm.tolerance == torch.finfo(dtype).eps
    assert bool((trm.t[1:] > trm.t[:-1]).all()) and trm.t[0] == 0 and trm.t[-1] == 1
    # independent check: the model itself, run in its dtype at the middle of each long piece
    # (short pieces sit within the rounding of the input itself)
    N = to_network(net)
    mid = (trm.t[1:] + trm.t[:-1]) / 2
    long = (trm.t[1:] - trm.t[:-1]) > 0.02
    xs = (x0.double() + mid[:, None] * (x1.double() - x0.double())).to(dtype)
    with torch.no_grad():
        bits = N.bits(xs)
    ok = (bits == trm.patterns).all(1) | trm.uncertain
    assert bool(ok[long].all())


def test_bad_dtype_is_refused():
    with pytest.raises(ValueError, match="dtype: expected"):
        traverse(_net(), torch.zeros(6), torch.ones(6), dtype="float32")


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_uncertain_pieces_cover_every_disagreement_with_rationals(k):
    """CantorNet C has units exactly zero by cancellation: float64 decides their bits by
    rounding. Every piece whose float64 pattern differs from exact rational arithmetic must be
    marked uncertain, and a PrecisionWarning raised."""
    spec = cantornet_spec(k, "C")
    ts, pats = rational_walk(spec, (0, Fraction(3, 4)), (1, Fraction(3, 4)))
    x0, x1 = cantor_path()
    with pytest.warns(PrecisionWarning, match="within rounding"):
        tr = traverse(cantornet(k, "C", dtype=torch.float64), x0, x1, include_output=True)
    torch.testing.assert_close(tr.t, torch.tensor([float(t) for t in ts], dtype=torch.float64))
    differs = (tr.patterns != torch.tensor(pats)).any(1)
    assert bool(differs.any())  # the case this test is about
    assert bool(tr.uncertain[differs].all())


def test_random_nets_have_no_uncertain_pieces():
    net = _net(3).double()
    x0, x1 = torch.randn(2, 20, 6, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = traverse_many(net, x0, x1)
    assert sum(t.n_uncertain for t in out) == 0


def test_leaky_relu_slope_stays_float64_so_breakpoints_are_exact():
    """Regression (found by dtype="float32-checked"): the LeakyReLU jvp built its slope with
    torch.where(on, 1.0, 0.1), a float32 tensor, so 0.1 became 0.100000001 and every root past a
    leaky layer moved by up to ~1e-8 in t (a unit 5e-9 from its breakpoint, not 1e-16). The
    slopes of `LeakyReLU.jvp`, the traversal's in-place jvp and regions' affine maps now stay in
    the computing dtype."""
    from reluscope.network.layers import LeakyReLU

    z = torch.tensor([-1.0, 2.0], dtype=torch.float64)
    assert LeakyReLU("a", 0.1).jvp(z, torch.ones(2, dtype=torch.float64))[1].tolist() == [0.1, 1.0]
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(2, 8), nn.LeakyReLU(0.1), nn.Linear(8, 8), nn.LeakyReLU(0.1)).double()
    x0, x1 = torch.tensor([-4.0, -3.0], dtype=torch.float64), torch.tensor([3.0, 4.0], dtype=torch.float64)
    tr = traverse(model, x0, x1)
    assert tr.n_pieces > 5
    x = x0 + tr.t[1:-1, None] * (x1 - x0)
    with torch.no_grad():
        z = torch.cat([model[0](x), model[2](model[1](model[0](x)))], 1)
    flips = tr.patterns[1:] != tr.patterns[:-1]  # the units that cross at each breakpoint
    assert float(z.abs().masked_select(flips).max()) < 1e-13
