"""Memory budgets (issue 10.6): each call streams within `memory_budget` bytes or refuses up front
with its estimate; the streaming ones are also run under resource.setrlimit in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from reluscope._checks import MemoryBudgetError
from reluscope.patterns import pairwise_hamming
from reluscope.tangent import tangent_features
from reluscope.traversal import traverse, traverse_many

SRC = Path(__file__).resolve().parents[1] / "src"
resource = pytest.importorskip("resource")  # POSIX only


def _mlp(*widths, seed=0):
    torch.manual_seed(seed)
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1]).double().eval()


# ------------------------------------------------------------------ traverse_many


def test_traverse_many_sizes_batches_from_the_budget(monkeypatch):
    import reluscope.traversal.exact as exact

    net = _mlp(4, 16, 16, 2)
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(20, 4, generator=g, dtype=torch.float64), torch.randn(20, 4, generator=g, dtype=torch.float64)
    reference = traverse_many(net, x0, x1)
    sizes = []
    real = exact._traverse_chunk
    monkeypatch.setattr(exact, "_traverse_chunk", lambda net, a, b, inc, *rest: sizes.append(len(a)) or real(net, a, b, inc, *rest))
    per_piece = exact._bytes_per_piece(exact.to_network(net).with_input_shape((4,)), x0[:1], False)
    most = max(len(t) for t in reference)
    got = traverse_many(net, x0, x1, memory_budget=3 * per_piece * most)
    # the batch is estimated from the pieces seen so far and at most doubles: 3 fit, 6 at worst
    assert sizes[0] == 1 and sum(sizes) == 20 and max(sizes) <= 6
    assert all(b <= 2 * a for a, b in zip(sizes, sizes[1:]))
    for a, b in zip(got, reference):  # batching changes rounding only (see test_traversal)
        torch.testing.assert_close(a.t, b.t, rtol=0, atol=1e-12)
        assert torch.equal(a.patterns, b.patterns)


def test_traverse_many_refuses_a_budget_below_one_piece():
    net = _mlp(4, 16, 2)
    with pytest.raises(MemoryBudgetError, match="one piece of a segment needs about"):
        traverse_many(net, torch.zeros(2, 4), torch.ones(2, 4), memory_budget=100)


def test_traverse_many_within_budget_under_setrlimit():
    """784-16384-10 (float64): the default batch of 64 short segments needs ~0.6 GB; with
    memory_budget=32 MB it runs in a process limited to 150 MB above its start."""
    script = textwrap.dedent("""
        import resource, torch
        from reluscope.traversal import traverse_many
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(784, 16384), torch.nn.ReLU(), torch.nn.Linear(16384, 10)).double()
        x0 = torch.rand(24, 784, dtype=torch.float64)
        x1 = x0 + 0.003 * torch.rand(24, 784, dtype=torch.float64)
        pages = int(open("/proc/self/statm").read().split()[0])
        resource.setrlimit(resource.RLIMIT_AS, (pages * resource.getpagesize() + 150 * 2**20, resource.RLIM_INFINITY))
        out = traverse_many(net, x0, x1, memory_budget=32 * 2**20)
        print(len(out), sum(len(t) for t in out))
    """)
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[0] == "24"


def test_folding_passes_the_budget_on():
    from reluscope.folding import global_folding

    net = _mlp(2, 8, 2)
    x = torch.randn(40, 2, dtype=torch.float64)
    y = torch.arange(40) % 2
    with pytest.raises(MemoryBudgetError, match="memory_budget"):
        global_folding(net, x, y, classes=(0, 1), budget=4, memory_budget=10)


# ------------------------------------------------------------------ tangent_features


def test_tangent_features_refuses_an_output_over_the_budget_up_front():
    net = _mlp(784, 800, 10).float()
    x = torch.zeros(3000, 784)
    with pytest.raises(MemoryBudgetError, match=r"the result \[3000, 636010\] .* needs 7279 MiB"):
        tangent_features(net, x)  # used to run 23 s and fail in the allocator (8 GB)
    assert tangent_features(net, x[:2], projection_dim=16).shape == (2, 16)  # a projection fits


def test_tangent_features_keeps_within_the_budget():
    net = _mlp(6, 8, 3)
    x = torch.randn(10, 6, dtype=torch.float64)
    full = tangent_features(net, x, memory_budget=2**30)
    need = full.numel() * 8
    torch.testing.assert_close(tangent_features(net, x, memory_budget=need + 500), full)  # chunks of one
    with pytest.raises(MemoryBudgetError, match="over memory_budget"):
        tangent_features(net, x, memory_budget=need - 1)


def test_tangent_features_asks_for_eval_mode():
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"BatchNorm1d '1' is in training mode; call model.eval\(\)"):
        tangent_features(net, torch.randn(4, 3))
    net2 = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Dropout(0.5), torch.nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"Dropout '1' is in training mode"):
        tangent_features(net2, torch.randn(4, 3))
    assert tangent_features(net2.eval(), torch.randn(4, 3)).shape == (4, 26)


# ------------------------------------------------------------------ pairwise_hamming


@pytest.mark.parametrize("units,dtype", [(10, torch.int16), (32767, torch.int16), (32768, torch.int32)])
def test_pairwise_hamming_uses_the_smallest_integer_type(units, dtype):
    a = torch.zeros(2, units, dtype=torch.bool)
    b = torch.ones(3, units, dtype=torch.bool)
    d = pairwise_hamming(a, b)
    assert d.dtype == dtype and int(d.max()) == units


def test_pairwise_hamming_refuses_an_output_over_the_budget():
    a = torch.zeros(1000, 8, dtype=torch.bool)
    with pytest.raises(MemoryBudgetError, match=r"the result \[1000, 1000\] \(torch.int16\) needs 2 MiB"):
        pairwise_hamming(a, memory_budget=10**6)


def test_pairwise_hamming_peak_stays_near_its_output_under_setrlimit():
    """6000 x 6000 distances of 300 units: int16 result 69 MB; was int64 (275 MB) built from
    float32 blocks and concatenated (2.1x the output at the peak)."""
    script = textwrap.dedent("""
        import resource, torch
        from reluscope.patterns import pairwise_hamming
        g = torch.Generator().manual_seed(0)
        a = torch.rand(6000, 300, generator=g) > 0.5
        pages = int(open("/proc/self/statm").read().split()[0])
        resource.setrlimit(resource.RLIMIT_AS, (pages * resource.getpagesize() + 160 * 2**20, resource.RLIM_INFINITY))
        d = pairwise_hamming(a, memory_budget=100 * 2**20)
        print(d.shape[0], d.dtype, int(d[0, 0]))
    """)
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["6000", "torch.int16", "0"]


# ------------------------------------------------------------------ extreme endpoints (10.12)


@pytest.mark.parametrize("scale", [1e308, 1e150])
def test_traverse_refuses_endpoints_beyond_float64(scale):
    net = _mlp(2, 4, 2)
    with pytest.raises(ValueError, match="beyond what exact traversal resolves in float64"):
        traverse(net, torch.tensor([-scale, 0.0], dtype=torch.float64), torch.tensor([scale, 0.0], dtype=torch.float64))


def test_traverse_large_but_finite_endpoints_are_exact():
    net = _mlp(2, 4, 2)
    far = traverse(net, torch.tensor([-1e50, 0.0], dtype=torch.float64), torch.tensor([1e50, 0.0], dtype=torch.float64))
    assert far.n_pieces >= 2  # every unit crosses zero somewhere on a line this long
