"""Benchmark: hull membership per kind of query against scipy's HiGHS LP, and KCHA / RGE on the
paper's toy sets against the plain KCHA iteration, each baseline measured in the same run.

Membership: N Gaussian points in D dimensions, d <= 1e-6 * hull radius (decision mode, `eps`).
Query kinds (the hard case is the dense interior: every point carries weight):
  dense-interior   Dirichlet(1) weights over all N points
  sparse-interior  Dirichlet weights over 10 random points
  near-boundary    Dirichlet over 3 random points (a face: on the boundary), scaled about the
                   centroid by 0.99 (inside) or 1.01 (outside), half each
  outside          fresh Gaussian samples scaled by 1.5
The LP runs on a few queries per kind (it takes seconds each), extrapolated; decisions are
compared on those. Then exact distances (tol 1e-6 * radius) for the outside queries.
KCHA: ours (blocked, pruned, float32 products) on 1 thread and on all cores vs the plain dense
float64 iteration on 1 thread (torch, denormals flushed so that they do not slow the baseline;
the flush is per thread, so the baseline runs on one):
wall and CPU seconds (on a shared machine, 1-thread CPU time is what an idle machine's wall time
would be; the all-cores wall time needs an idle machine), steps, the largest relative difference
of diag(C), and whether the N/20 seeds agree; RGE error vs the paper's Table 1. The table at the
end is the README's.
Run: python bench/hulls.py [--quick] [--n=2000] [--dims=256] [--toy-only] [--no-toy]
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import torch

from reluscope.data import load_hull_toy
from reluscope.hull import hull_distance_bounds, kcha_scores, revised_greedy_expansion
from reluscope.hull.kcha import _kcha, _plain
from reluscope.testing.hull import lp_in_hull


def _arg(name, default):
    return next((a.split("=", 1)[1] for a in sys.argv if a.startswith(f"--{name}=")), default)


QUICK = "--quick" in sys.argv
N = int(_arg("n", 2000))
DIMS = tuple(int(v) for v in _arg("dims", "256").split(","))
PER_KIND = 8 if QUICK else 40
LP_PER_KIND = 2 if QUICK else 4
PAPER = {"Center": 0.000, "Circles": 0.053, "Moons": 0.039, "Centers": 0.038}


def queries(x, kind, m, rng):
    n, d = x.shape
    if kind == "dense-interior":
        return rng.dirichlet(np.ones(n), size=m) @ x
    if kind == "sparse-interior":
        return np.stack([rng.dirichlet(np.ones(10)) @ x[rng.choice(n, 10, replace=False)] for _ in range(m)])
    if kind == "near-boundary":
        c = x.mean(0)
        face = np.stack([rng.dirichlet(np.ones(3)) @ x[rng.choice(n, 3, replace=False)] for _ in range(m)])
        scale = np.where(np.arange(m) % 2 == 0, 0.99, 1.01)[:, None]
        return c + (face - c) * scale
    return rng.normal(size=(m, d)) * 1.5


def membership(d):
    rng = np.random.default_rng(d)
    x = rng.normal(size=(N, d))
    eps = 1e-6 * np.linalg.norm(x - x.mean(0), axis=1).max()
    print(f"membership, N={N} points in D={d}, {PER_KIND} queries per kind, eps = 1e-6 * radius", flush=True)
    print(f"  {'kind':16s} {'ours q/s':>9s} {'LP q/s':>8s} {'ratio':>7s}  agree  inside")
    for kind in ("dense-interior", "sparse-interior", "near-boundary", "outside"):
        q = queries(x, kind, PER_KIND, rng)
        t = time.perf_counter()
        res = hull_distance_bounds(x, q, inside_distance=eps)
        ours_s = (time.perf_counter() - t) / PER_KIND
        ours = res.upper <= eps
        sub = np.arange(LP_PER_KIND)
        t = time.perf_counter()
        lp = np.array([lp_in_hull(x, q[i]) for i in sub])
        lp_s = (time.perf_counter() - t) / LP_PER_KIND
        print(f"  {kind:16s} {1 / ours_s:9.1f} {1 / lp_s:8.2f} {lp_s / ours_s:6.1f}x  {bool((ours[sub] == lp).all())!s:5s}  "
              f"{ours.mean():.2f}", flush=True)
    q = queries(x, "outside", PER_KIND, rng)
    t = time.perf_counter()
    exact = hull_distance_bounds(x, q, tol=1e-6)
    print(f"  exact distances (tol 1e-6 * radius), outside: {PER_KIND / (time.perf_counter() - t):.1f} q/s, "
          f"max gap {exact.gap.max():.2e}", flush=True)


def _timed(f, *args):
    t, c = time.perf_counter(), time.process_time()
    out = f(*args)
    return out, time.perf_counter() - t, time.process_time() - c


def toy():
    cores = os.cpu_count() or 1
    print(f"KCHA on all 2,000 points: ours on 1 thread and on {cores}, the plain iteration on 1 (same run; "
          f"load {_load()}); seconds are wall (CPU); ratio = plain / ours, both on 1 thread", flush=True)
    t = time.perf_counter()
    _kcha(load_hull_toy("Moons")[:200], 0.3, 0.01, 500, 1e-6, "float32", 2**31, None)  # numba's kernels: load or compile once
    print(f"  first call in this process (numba kernels loaded or compiled): {time.perf_counter() - t:.2f} s", flush=True)
    rows = []
    for name, paper_err in PAPER.items():
        pts = load_hull_toy(name)
        torch.set_num_threads(1)
        (one, one_steps), one_s, one_cpu = _timed(_kcha, pts, 0.3, 0.01, 500, 1e-6, "float32", 2**31, None)
        torch.set_num_threads(cores)
        (ours, ours_steps), ours_s, ours_cpu = _timed(_kcha, pts, 0.3, 0.01, 500, 1e-6, "float32", 2**31, None)
        line = (f"  {name:8s} ours 1 thread {one_s:5.2f} ({one_cpu:5.2f}) s, {cores} threads {ours_s:5.2f} ({ours_cpu:5.2f}) s, "
                f"{ours_steps} steps, same as 1 thread: {bool(np.array_equal(one, ours)) and one_steps == ours_steps}")
        row = [name, f"{one_s:.2f} ({one_cpu:.2f})", f"{ours_s:.2f} ({ours_cpu:.2f})"]
        if not QUICK:
            x = torch.as_tensor(np.asarray(pts), dtype=torch.float64)
            # one thread: flushing denormals is per thread (torch's other threads would still hit
            # them, which made the 2-thread baseline 4-5x slower in CPU time, flattering us)
            torch.set_num_threads(1)
            torch.set_flush_denormal(True)  # the plain iteration runs into denormals: do not let them slow the baseline
            t, c = time.perf_counter(), time.process_time()
            k = torch.exp(-torch.cdist(x, x).square() / 0.3**2)
            plain, plain_steps = _plain(k, 0.01, 500)
            plain_s, plain_cpu = time.perf_counter() - t, time.process_time() - c
            torch.set_flush_denormal(False)
            top = len(pts) // 20
            same = set(np.argsort(ours)[-top:]) == set(np.argsort(plain)[-top:])
            diff = np.abs(ours / plain - 1).max()
            line += (f"; plain {plain_s:6.2f} ({plain_cpu:5.2f}) s, {plain_steps} steps; ratio {plain_s / one_s:5.1f}x; "
                     f"max rel diff {diff:.1e}; same {top} seeds: {same}")
            row += [f"{plain_s:.2f} ({plain_cpu:.2f})", f"{plain_s / one_s:.1f}x", f"{ours_steps} = {plain_steps}", f"{diff:.1e}",
                    "same" if same else "DIFFERENT"]
        print(line, flush=True)
        torch.set_num_threads(cores)
        r = revised_greedy_expansion(pts)
        print(f"           RGE (KCHA on all points): |E|={r.size:3d} error={r.error:.3f} (paper {paper_err:.3f}, "
              f"stop 0.06) {r.seconds:.2f} s, stopped by {r.stopped_by.value}", flush=True)
        rows.append(row)
    print(f"  load after: {_load()}\n", flush=True)
    head = ["set", "ours 1 thread", f"ours {cores} threads", "plain 1 thread", "ratio (1 thread)", "steps", "max rel diff", "seeds"]
    print("| " + " | ".join(head[: len(rows[0])]) + " |\n|" + "---|" * len(rows[0]))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def _load() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def main():
    torch.set_num_threads(int(_arg("threads", 1)))
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}", flush=True)
    if "--toy-only" not in sys.argv:
        for d in DIMS:
            membership(d)
    if "--no-toy" not in sys.argv:
        toy()


if __name__ == "__main__":
    main()
