"""Benchmark: hull membership for 1,000 queries against 5,000 points (64-D and 1,024-D), ours vs
scipy's HiGHS LP (on a subset of the queries, extrapolated), same decisions; RGE on the toy sets.

Points: standard Gaussian. Queries: half inside (Dirichlet combinations of 10 random points), half
outside (fresh Gaussian samples scaled by 1.5). Membership: d <= 1e-6 * hull radius.
Run: python bench/hulls.py [--quick] [--dims=64,1024] [--toy-only]
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from reluscope.data import load_hull_toy
from reluscope.hull import hull_distance_bounds, revised_greedy_expansion
from reluscope.testing.hull import lp_in_hull

QUICK = "--quick" in sys.argv
DIMS = next((tuple(int(v) for v in a.split("=")[1].split(",")) for a in sys.argv if a.startswith("--dims=")), (64, 1024))
TOY_ONLY = "--toy-only" in sys.argv
N, M = 5000, (200 if QUICK else 1000)
LP_SUBSET = {64: 20, 1024: 2}  # one 1024-D LP takes minutes


def queries(x, m, rng):
    n, d = x.shape
    inside = np.stack([rng.dirichlet(np.ones(10)) @ x[rng.choice(n, 10, replace=False)] for _ in range(m // 2)])
    outside = rng.normal(size=(m - m // 2, d)) * 1.5
    return np.vstack([inside, outside]), np.r_[np.ones(m // 2, bool), np.zeros(m - m // 2, bool)]


def main():
    torch.set_num_threads(2)
    print(f"torch threads: {torch.get_num_threads()}; N={N} points, M={M} queries")
    for d in () if TOY_ONLY else DIMS:
        rng = np.random.default_rng(d)
        x = rng.normal(size=(N, d))
        q, truth = queries(x, M, rng)
        radius = np.linalg.norm(x - x.mean(0), axis=1).max()
        eps = 1e-6 * radius
        t = time.perf_counter()
        res = hull_distance_bounds(x, q, eps=eps)
        ours_s = time.perf_counter() - t
        ours = res.upper <= eps
        print(f"D={d:5d}: ours {M / ours_s:.1f} queries/s; running the LP reference...", flush=True)
        sub = np.r_[np.arange(LP_SUBSET[d] // 2), M // 2 + np.arange(LP_SUBSET[d] // 2)]
        t = time.perf_counter()
        lp = np.array([lp_in_hull(x, q[i]) for i in sub])
        lp_s = (time.perf_counter() - t) / len(sub)
        agree = (ours[sub] == lp).all()
        print(
            f"D={d:5d}: ours {M / ours_s:9.1f} queries/s ({ours_s:.2f} s for {M}); "
            f"HiGHS LP {1 / lp_s:7.2f} queries/s (measured on {len(sub)} queries, extrapolated); "
            f"speed-up {lp_s * M / ours_s:7.1f}x; decisions agree with LP on the subset: {agree}; "
            f"agree with construction on all {M}: {(ours == truth).mean():.3f}"
        )
        t = time.perf_counter()
        exact = hull_distance_bounds(x, q[M // 2 : M // 2 + 100], tol=1e-6)
        print(f"          exact distances (tol 1e-6 * radius) for 100 outside queries: {100 / (time.perf_counter() - t):.1f} queries/s, max gap {exact.gap.max():.2e}")
    paper = {"Center": 0.000, "Circles": 0.053, "Moons": 0.039, "Centers": 0.038}
    print("RGE on the toy sets (paper: 9-46 s per set):")
    for name, perr in paper.items():
        pts = load_hull_toy(name)
        r = revised_greedy_expansion(pts)
        print(f"  {name:8s} |E|={r.size:3d} error={r.error:.3f} (paper {perr:.3f}, bound 0.06) time={r.seconds:.2f} s")


if __name__ == "__main__":
    main()
