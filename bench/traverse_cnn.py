"""Benchmark: exact traversal of the tangent paper's CNN (random init) on one MNIST digit 1 -> 4
segment, against 1,000-point sampling of the same segment, in the same run.

For each width, in a fresh (spawned) process: parameters, pieces, traversal time (float64,
within `--memory-budget`), peak RSS growth during the traversal (VmHWM after resetting it; it includes
the result), the result's packed patterns, and
the time of sampling the segment's patterns at 1,000 points with `Network.bits` in the model's
float32 (the cheap way a user would do it; best of 3). A width whose traversal runs past
`--timeout` seconds is reported as such. Then the dense engine alone (the sparse front of
`traversal._front` switched off: the engine before it) on the same segment in the same process,
its time, peak and whether both give the same pieces and patterns (skip it with --no-dense).
Last, sampling at as many points as the traversal found pieces (one run): its time, and for both
samplings the share of the exact pieces a sample lands in (a piece no sample lands in is a region
sampling cannot report).
Target (issue 11.5): the paper's width 64 within the default memory budget, in no more time than
the sampling. Run: python bench/traverse_cnn.py [--widths 4 8 16 32 64] [--memory-budget BYTES]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time
import warnings

import torch

from reluscope._checks import DEFAULT_MEMORY_BUDGET


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key):
                return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    """Reset VmHWM (Linux: writing 5 to clear_refs), so the peak is the traversal's own."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def sample_time(net, x0, x1, n_points: int) -> tuple[float, int]:
    t = torch.linspace(0, 1, n_points, dtype=x0.dtype)
    start = time.perf_counter()
    with torch.no_grad():
        bits = net.bits(x0[None] + t.reshape(-1, 1, 1, 1) * (x1 - x0)[None])
    runs = 1 + int((bits[1:] != bits[:-1]).any(dim=1).sum())
    return time.perf_counter() - start, runs


def pieces_hit(tr, n_points: int) -> int:
    """How many of the traversal's pieces contain at least one of `n_points` equally spaced samples."""
    t = torch.linspace(0, 1, n_points, dtype=torch.float64)
    return int(torch.unique(torch.searchsorted(tr.t[1:-1].contiguous(), t, right=True)).numel())


def _agreement(a, b) -> str:
    """'same' when both traversals have the same pieces (breakpoints within 1e-9) and patterns;
    otherwise how they differ (the dense engine's rounding slivers flagged uncertain are listed)."""
    if a.n_pieces == b.n_pieces and float((a.t - b.t).abs().max()) < 1e-9 and torch.equal(a.packed.words, b.packed.words):
        return f"same (|dt| <= {float((a.t - b.t).abs().max()):.0e})"
    mid = (b.t[1:] + b.t[:-1]) / 2
    at = torch.searchsorted(a.t, mid, right=True) - 1
    differ = (a.packed.words.index_select(0, at) != b.packed.words).any(dim=1)
    flagged = int((differ & b.uncertain).sum()) if b.uncertain is not None else 0
    return (f"{a.n_pieces} vs {b.n_pieces} pieces; {int(differ.sum())} dense pieces differ, "
            f"{flagged} of them flagged uncertain by the dense engine")


def one_width(width: int, points: int, budget: int, fraction: float, queue, dense: bool = True) -> None:
    from reluscope.data import load_mnist
    from reluscope.experiments.tangent import tangent_cnn
    from reluscope.network import to_network
    from reluscope.traversal import traverse

    x, y = load_mnist("test", flatten=False)
    x0, x1 = x[y == 1][0], x[y == 4][0]
    x1 = x0 + fraction * (x1 - x0)  # the first part of the segment only, when fraction < 1
    model = tangent_cnn((1, 28, 28), width=width, seed=0).eval()
    params = sum(p.numel() for p in model.parameters())
    queue.put(("params", params))
    net32 = to_network(model).with_input_shape((1, 28, 28))
    sample_time(net32, x0, x1, 10)  # warm-up
    from reluscope.traversal import _front

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cost, _front._SPARSE_RECORD_COST = _front._SPARSE_RECORD_COST, 0.0  # the front's kernels load (numba cache)
        traverse(model, x0, x0 + 1e-3 * (x1 - x0), memory_budget=budget)  # warm-up (short)
        _front._SPARSE_RECORD_COST, _front.ENABLED = cost, False  # and the dense engine's (its max-pool kernels)
        traverse(model, x0, x0 + 1e-2 * (x1 - x0), memory_budget=budget)
        _front.ENABLED = True
    base = _status_kib("VmRSS:")
    _reset_peak()
    start = time.perf_counter()
    _front.TRACE = []
    tr = traverse(model, x0, x1, memory_budget=budget)
    sec = time.perf_counter() - start
    peak = max(_status_kib("VmHWM:") - base, 0) / 1024
    taken = [f"{name}:{mode}" for name, *_, mode in _front.TRACE]
    _front.TRACE = None
    queue.put(("exact", sec, tr.n_pieces, peak, tr.packed.words.numel() / 2**20))
    queue.put(("front", " ".join(taken) or "not used"))
    if dense:  # the dense engine alone (the engine before the sparse front), same segment, same process
        _front.ENABLED = False
        base = _status_kib("VmRSS:")
        _reset_peak()
        start = time.perf_counter()
        ref = traverse(model, x0, x1, memory_budget=budget)
        dsec = time.perf_counter() - start
        dpeak = max(_status_kib("VmHWM:") - base, 0) / 1024
        _front.ENABLED = True
        queue.put(("dense", dsec, dpeak, _agreement(tr, ref)))
        del ref
    hit, n_pieces = pieces_hit(tr, points), tr.n_pieces
    hit_equal = pieces_hit(tr, n_pieces)
    del tr
    te, _ = sample_time(net32, x0, x1, n_pieces)
    queue.put(("equal", te, hit, hit_equal))
    ts, runs = min(sample_time(net32, x0, x1, points) for _ in range(3))
    queue.put(("sample", ts, runs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--memory-budget", type=float, default=DEFAULT_MEMORY_BUDGET)
    ap.add_argument("--fraction", type=float, default=1.0, help="traverse (and sample) x0 -> x0 + f (x1 - x0) only")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per width")
    ap.add_argument("--no-dense", action="store_true", help="skip the dense engine's run (the baseline before the front)")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, memory_budget {args.memory_budget / 2**30:.1f} GiB; "
          f"one test digit 1 -> 4 segment{'' if args.fraction == 1 else f' (its first {args.fraction:g} only)'}; sampling in float32 at {args.points} points (best of 3); "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'width':>5} {'params':>8} {'pieces':>7} {'exact s':>8} {'peak MiB':>9} {'result MiB':>10} {'sample s':>9} {'runs':>5} "
          f"{'exact/sample':>13} {'hit %':>6} {'sample@pieces s':>15} {'hit %':>6} {'dense s':>8} {'dense MiB':>9} {'dense/exact':>11}  agreement")
    ctx = mp.get_context("spawn")  # a forked child of a process that ran torch can hang in OpenMP
    for width in args.widths:
        queue = ctx.Queue()
        proc = ctx.Process(target=one_width, args=(width, args.points, int(args.memory_budget), args.fraction, queue, not args.no_dense))
        start = time.perf_counter()
        proc.start()
        got = {}
        while proc.is_alive() or not queue.empty():
            try:
                item = queue.get(timeout=1.0)
                got[item[0]] = item[1:]
            except Exception:
                pass
            if "sample" in got:
                break
            if time.perf_counter() - start > args.timeout:
                proc.terminate()
                break
        proc.join(5)
        params = got.get("params", (-1,))[0]
        if "exact" not in got:
            why = "timeout" if time.perf_counter() - start > args.timeout else f"failed (exit {proc.exitcode})"
            print(f"{width:5d} {params:8d} {'-':>7} {why:>8}", flush=True)
            continue
        sec, pieces, peak, result = got["exact"]
        ts, runs = got.get("sample", (float("nan"), -1))
        dsec, dpeak, agree = got.get("dense", (float("nan"), float("nan"), "-"))
        te, hit, hit_equal = got.get("equal", (float("nan"), 0, 0))
        agree = f"{agree}; front convolutions {got.get('front', ('?',))[0]}"
        print(f"{width:5d} {params:8d} {pieces:7d} {sec:8.2f} {peak:9.0f} {result:10.1f} {ts:9.3f} {runs:5d} {sec / ts:13.1f} "
              f"{100 * hit / pieces:6.1f} {te:15.3f} {100 * hit_equal / pieces:6.1f} {dsec:8.2f} {dpeak:9.0f} {dsec / sec:11.1f}  {agree}", flush=True)
    print(f"exact/sample = traversal time / sampling time (target <= 1); dense = the dense engine alone (no sparse front), "
          f"same segment and process; result = the packed patterns (8 bits a byte); "
          f"runs = pattern changes the samples see; hit % = share of the exact pieces a sample lands in "
          f"(1,000 points, then as many points as pieces: sample@pieces, one run); "
          f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
