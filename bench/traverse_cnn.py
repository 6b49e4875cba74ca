"""Benchmark: exact traversal of the tangent paper's CNN (random init) on one MNIST digit 1 -> 4
segment, against 1,000-point sampling of the same segment, in the same run.

For each width: parameters, pieces, traversal time (float64, within `--memory-budget`), peak RSS
growth of the traversal (in a forked child), and the time of sampling the segment at 1,000
points with `Network.bits` in the model's float32 (the cheap way a user would do it).
Target (issue 11.5): the paper's width 64 within the default memory budget, in no more time than
the sampling. Run: python bench/traverse_cnn.py [--widths 4 8 16 32 64] [--memory-budget BYTES]
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import torch

from reluscope._checks import DEFAULT_MEMORY_BUDGET
from reluscope.data import load_mnist
from reluscope.experiments.tangent import tangent_cnn
from reluscope.network import to_network
from reluscope.traversal import traverse


def _rss_kib():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def in_child(fn):
    """(seconds, pieces, peak RSS growth MiB) of fn() run in a forked child."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        base = _rss_kib()
        start = time.perf_counter()
        pieces = fn()
        sec = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        os.write(w, f"{sec} {pieces} {max(peak - base, 0)}".encode())
        os._exit(0)
    os.close(w)
    data = os.read(r, 256).decode().split()
    os.waitpid(pid, 0)
    if len(data) != 3:
        return float("nan"), -1, float("nan")
    return float(data[0]), int(data[1]), int(data[2]) / 1024


def sample_time(net, x0, x1, n_points: int) -> tuple[float, int]:
    t = torch.linspace(0, 1, n_points, dtype=x0.dtype)
    start = time.perf_counter()
    with torch.no_grad():
        bits = net.bits(x0[None] + t.reshape(-1, 1, 1, 1) * (x1 - x0)[None])
    runs = 1 + int((bits[1:] != bits[:-1]).any(dim=1).sum())
    return time.perf_counter() - start, runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--memory-budget", type=float, default=DEFAULT_MEMORY_BUDGET)
    args = ap.parse_args()
    x, y = load_mnist("test")
    x0, x1 = x[y == 1][0], x[y == 4][0]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, memory_budget {args.memory_budget / 2**30:.1f} GiB; "
          f"one test digit 1 -> 4 segment; sampling in float32 at {args.points} points")
    print(f"{'width':>5} {'params':>8} {'pieces':>7} {'exact s':>8} {'peak MiB':>9} {'sample s':>9} {'runs':>5} {'exact/sample':>13}")
    for width in args.widths:
        model = tangent_cnn((1, 28, 28), width=width, seed=0).eval()
        params = sum(p.numel() for p in model.parameters())
        net32 = to_network(model).with_input_shape((1, 28, 28))
        sample_time(net32, x0, x1, 10)  # warm-up
        ts, runs = sample_time(net32, x0, x1, args.points)
        sec, pieces, peak = in_child(lambda: traverse(model, x0, x1, memory_budget=int(args.memory_budget)).n_pieces)
        print(f"{width:5d} {params:8d} {pieces:7d} {sec:8.2f} {peak:9.0f} {ts:9.3f} {runs:5d} {sec / ts:13.1f}", flush=True)
    print("exact/sample = traversal time / sampling time (target <= 1); runs = pattern changes the samples see")


if __name__ == "__main__":
    main()
