"""Slow, generic references for the convex-hull code (used by tests and benchmarks only).

* `lp_in_hull`: membership as an LP feasibility problem solved by scipy's HiGHS
  (find a >= 0, sum a = 1, X^T a = v).
* `qp_hull_distance`: the simplex-constrained least squares solved by scipy's SLSQP, started from
  the nearest point; fine for up to a few hundred points.
* `brute_hull_distance`: projections onto the affine spans of all subsets of at most D+1 points,
  keeping those whose barycentric weights are non-negative; exact, only for tiny sets.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import linprog, minimize

if TYPE_CHECKING:
    from .._types import ArrayLike

__all__ = ["lp_in_hull", "qp_hull_distance", "brute_hull_distance", "reference_max_error", "kcha_plain"]


def kcha_plain(points: ArrayLike, *, sigma: float = 0.3, rate: float = 0.01, max_iter: int = 500):
    """(diag(C), steps) of the plain dense KCHA iteration, in numpy: K_ij = exp(-||xi-xj||^2/sigma^2),
    C0 = 1/N, C <- C * sqrt(K / (K C)) until sum|C_new - C| / sum|C| <= rate. N^3 per step."""
    x = np.asarray(points, dtype=np.float64)
    n = x.shape[0]
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    k = np.exp(-d2 / sigma**2)
    c = np.full((n, n), 1.0 / n)
    steps = 0
    for steps in range(1, max_iter + 1):
        new = c * np.sqrt(k / np.maximum(k @ c, 1e-300))
        change = np.abs(new - c).sum() / np.abs(c).sum()
        c = new
        if change <= rate:
            break
    return np.diagonal(c).copy(), steps


def lp_in_hull(points: ArrayLike, query: ArrayLike, *, tol: float = 1e-9) -> bool:
    """True iff `query` is a convex combination of `points` (HiGHS LP feasibility)."""
    x = np.asarray(points, dtype=np.float64)
    v = np.asarray(query, dtype=np.float64)
    n = x.shape[0]
    a_eq = np.vstack([x.T, np.ones((1, n))])
    b_eq = np.concatenate([v, [1.0]])
    res = linprog(
        np.zeros(n), A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs",
        options={"primal_feasibility_tolerance": tol},
    )
    return res.status == 0


def qp_hull_distance(points: ArrayLike, query: ArrayLike) -> float:
    """min ||v - X^T a|| over the simplex, by SLSQP with analytic gradients."""
    x = np.asarray(points, dtype=np.float64)
    v = np.asarray(query, dtype=np.float64)
    n = x.shape[0]
    center = x.mean(axis=0)
    xc, vc = x - center, v - center
    g = xc @ xc.T
    b = xc @ vc

    def f(a):
        return a @ g @ a - 2 * b @ a + vc @ vc

    def jac(a):
        return 2 * (g @ a - b)

    a0 = np.zeros(n)
    a0[np.argmin(((xc - vc) ** 2).sum(axis=1))] = 1.0
    best = a0
    for start in (a0,):
        res = minimize(
            f, start, jac=jac, method="SLSQP", bounds=[(0, 1)] * n,
            constraints=[{"type": "eq", "fun": lambda a: a.sum() - 1, "jac": lambda a: np.ones_like(a)}],
            options={"ftol": 1e-13, "maxiter": 500},
        )
        a = np.clip(res.x, 0, None)
        a = a / a.sum()
        if f(a) < f(best):
            best = a
    return float(np.linalg.norm(vc - xc.T @ best))


def brute_hull_distance(points: ArrayLike, query: ArrayLike) -> float:
    """Exact distance by enumerating faces (subsets of <= D+1 points); exponential, tiny sets only."""
    x = np.asarray(points, dtype=np.float64)
    v = np.asarray(query, dtype=np.float64)
    n, d = x.shape
    best = np.inf
    for k in range(1, min(n, d + 1) + 1):
        for sub in itertools.combinations(range(n), k):
            p = x[list(sub)]
            if k == 1:
                best = min(best, float(np.linalg.norm(v - p[0])))
                continue
            base = p[0]
            m = (p[1:] - base).T  # D x (k-1)
            coef, *_ = np.linalg.lstsq(m, v - base, rcond=None)
            lam = np.concatenate([[1 - coef.sum()], coef])
            if (lam >= -1e-12).all():
                best = min(best, float(np.linalg.norm(v - base - m @ coef)))
    return best


def reference_max_error(points: ArrayLike, subset: ArrayLike) -> float:
    """max over all points of their QP distance to the hull of points[subset] (RGE's error)."""
    x = np.asarray(points, dtype=np.float64)
    e = x[np.asarray(subset)]
    return max(qp_hull_distance(e, u) for u in x)
