"""Revised Greedy Expansion (RGE): a small subset E whose hull eps-approximates the hull of S.

Follows section 4 of PAPERS.md and the authors' code (SamJia/RevisedGE): KCHA start plus the
per-coordinate extremes, clean E, clean R, then greedy minimax additions. Choices we had to make
(all exposed as options):

* KCHA runs on at most `kcha_sample` points drawn at random (the multiplicative update costs N^3
  per step; only its ranking of points is used, as a seed). `kcha_sample=None` runs it on all
  points as the paper does. Kernel exp(-||xi - xj||^2 / sigma^2) as in the authors' code.
* Cleaning E is sequential in index order, as in the authors' code: a point is dropped if it is
  within eps of the hull of the remaining E (checked after earlier drops).
* The minimax search is exact but lazy: for each candidate c a lower bound on
  max_v d(v, E + c) comes from the separating half-space of every v (the hull of E + c lies in
  {z : n.z <= max(n.p_v, n.c)}, n the unit residual of v), so d(v, E + c) >= min(d(v, E),
  n.(v - c)). Candidates are evaluated in bound order until the bound cannot beat the best; rows
  whose upper bound min(d(v, E), ||v - c||) is below the candidate's lower bound are skipped.
* The loop stops when the minimax distance is <= `stop`, when |E| reaches `max_size` (N/10), or
  when R is empty; the reported `error` is max over all of S of d(u, E).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from .._checks import check_positive
from .._checks import check_int, single_thread
from ..results import Result
from .distance import hull_distance_bounds, prepare_points

__all__ = ["RGEResult", "revised_greedy_expansion", "kcha_scores"]


@dataclass(frozen=True)
class RGEResult(Result):
    """indices: sorted indices of E into the points; error: max_u d(u, E) over all points;
    history: one (|E|, |R|, minimax distance) row per greedy step; seconds: wall time."""

    indices: np.ndarray
    error: float
    history: tuple[tuple[int, int, float], ...]
    initial_size: int
    seconds: float
    eps: float
    stop: float
    max_size: int = 0
    reached_stop: bool = True  # False: max_size ended the expansion before `stop` (a warning too)

    @property
    def size(self) -> int:
        return int(self.indices.size)


def kcha_scores(points, *, sigma: float = 0.3, rate: float = 0.01, max_iter: int = 500) -> np.ndarray:
    """diag(C) of the kernel convex-hull approximation (C <- C * sqrt(K / (K C)), C0 = 1/N)."""
    check_positive(float(sigma), "sigma")
    x = prepare_points(points, "points")
    n = x.shape[0]
    k = torch.exp(-torch.cdist(x, x).square() / sigma**2)
    c = torch.full((n, n), 1.0 / n, dtype=x.dtype, device=x.device)
    for _ in range(max_iter):
        c_new = c * torch.sqrt(k / (k @ c).clamp_min(1e-100))
        change = float((c_new - c).abs().sum() / c.abs().sum())
        c = c_new
        if change <= rate:
            break
    return torch.diagonal(c).cpu().numpy().copy()


def _dist(x, queries_idx, allowed_rows, tol):
    """Distances of x[queries_idx] to hulls given by boolean rows (one row per query)."""
    res = hull_distance_bounds(x, x[queries_idx], tol=tol, allowed=allowed_rows)
    return res


def revised_greedy_expansion(
    points,
    *,
    eps: float = 0.03,
    stop: float = 0.06,
    sigma: float = 0.3,
    initial_size: int | None = None,
    max_size: int | None = None,
    kcha_rate: float = 0.01,
    kcha_sample: int | None = 300,
    tol: float = 1e-9,
    seed: int = 0,
    batch: int = 16,
    progress: bool = False,
) -> RGEResult:
    """Select E subset of `points` [N, D] with d(u, E) small for every u; see the module docstring.

    eps: inside tolerance of the cleaning steps (> 0). stop: minimax distance at which to stop.
    initial_size: KCHA seed size (default N // 20). max_size: cap on |E| (default N // 10).
    """
    with single_thread():  # many small solves: one thread avoids hand-off costs
        return _rge(points, eps, stop, sigma, initial_size, max_size, kcha_rate, kcha_sample, tol, seed, batch, progress)


def _rge(points, eps, stop, sigma, initial_size, max_size, kcha_rate, kcha_sample, tol, seed, batch, progress):
    t0 = time.perf_counter()
    check_positive(float(eps), "eps")
    check_positive(float(stop), "stop", allow_zero=True)
    x = prepare_points(points, "points", min_points=2)
    n = x.shape[0]
    xn = x.cpu().numpy()
    initial_size = max(1, n // 20) if initial_size is None else check_int(initial_size, "initial_size")
    max_size = max(2, n // 10) if max_size is None else check_int(max_size, "max_size")
    rng = np.random.default_rng(seed)
    sample = np.arange(n) if kcha_sample is None or n <= kcha_sample else np.sort(rng.choice(n, kcha_sample, replace=False))
    scores = kcha_scores(xn[sample], sigma=sigma, rate=kcha_rate)
    take = max(1, round(initial_size * len(sample) / n))
    start = set(sample[np.argsort(scores)[-take:]].tolist())
    start.update(xn.argmax(axis=0).tolist())
    start.update(xn.argmin(axis=0).tolist())
    in_e = np.zeros(n, dtype=bool)
    in_e[sorted(start)] = True
    _clean_e(x, in_e, eps, tol)
    initial = int(in_e.sum())
    in_r = ~in_e
    history = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_size, desc="RGE |E|", initial=initial)
    while in_r.any() and in_e.sum() < max_size:
        r_idx = np.flatnonzero(in_r)
        res = _dist(x, r_idx, torch.from_numpy(np.broadcast_to(in_e, (r_idx.size, n)).copy()), tol)
        d_e = res.distance
        keep = d_e > eps  # clean R: points within eps of the hull of E are inside
        in_r[r_idx[~keep]] = False
        r_idx, d_e = r_idx[keep], d_e[keep]
        if r_idx.size == 0:
            break
        proj = _hull_points(xn, res.support[keep], res.weights[keep])
        c, value, d_new = _minimax(x, xn, in_e, r_idx, d_e, proj, tol, batch)
        in_e[c] = True
        in_r[c] = False
        in_r[r_idx[d_new <= eps]] = False
        _clean_e(x, in_e, eps, tol)
        history.append((int(in_e.sum()), int(in_r.sum()), float(value)))
        if bar is not None:
            bar.update(int(in_e.sum()) - bar.n)
        if value <= stop:
            break
    if bar is not None:
        bar.close()
    idx = np.flatnonzero(in_e)
    allowed = torch.from_numpy(np.broadcast_to(in_e, (n, n)).copy())
    error = float(hull_distance_bounds(x, x, tol=tol, allowed=allowed).distance.max())
    reached = not in_r.any() or (bool(history) and history[-1][2] <= stop)
    if not reached or idx.size > max_size:
        warnings.warn(
            f"revised_greedy_expansion: |E| = {idx.size} for max_size={max_size}"
            + ("" if reached else f", max distance to the hull of E {error:.3g} above stop={stop}")
            + "; pass a larger max_size (the initial set holds every coordinate's extreme points)",
            RuntimeWarning, stacklevel=3,
        )
    return RGEResult(idx, error, tuple(history), initial, time.perf_counter() - t0, float(eps), float(stop), max_size, reached)


def _hull_points(xn, support, weights):
    safe = np.clip(support, 0, None)
    return np.einsum("mk,mkd->md", weights * (support >= 0), xn[safe])


def _clean_e(x, in_e, eps, tol):
    """Drop points of E within eps of the hull of the rest, sequentially in index order."""
    n = x.shape[0]
    e_idx = np.flatnonzero(in_e)
    if e_idx.size < 2:
        return
    allowed = np.broadcast_to(in_e, (e_idx.size, n)).copy()
    allowed[np.arange(e_idx.size), e_idx] = False
    d = _dist(x, e_idx, torch.from_numpy(allowed), tol).distance
    for i in e_idx[d <= eps]:  # verify one at a time: earlier drops can push later points out
        if in_e.sum() < 2:
            break
        rest = in_e.copy()
        rest[i] = False
        if _dist(x, np.array([i]), torch.from_numpy(rest[None]), tol).distance[0] <= eps:
            in_e[i] = False


def _minimax(x, xn, in_e, r_idx, d_e, proj, tol, batch):
    """argmin over c in R of max over v in R of d(v, E + c), lazily (see module docstring)."""
    n = x.shape[0]
    v = xn[r_idx]
    normal = (v - proj) / d_e[:, None]
    # lower[v, c] = min(d_e[v], n_v . (v - c)) clipped at 0; upper[v, c] = min(d_e[v], ||v - c||)
    slack = (normal * v).sum(1)[:, None] - normal @ v.T
    lower = np.clip(np.minimum(d_e[:, None], slack), 0, None)
    np.fill_diagonal(lower, 0)
    upper = np.minimum(d_e[:, None], np.sqrt(((v[:, None, :] - v[None, :, :]) ** 2).sum(-1)))
    np.fill_diagonal(upper, 0)
    bound = lower.max(axis=0)
    order = np.argsort(bound, kind="stable")
    best, best_c, best_d = np.inf, -1, None
    pos = 0
    while pos < order.size and bound[order[pos]] < best:
        cands = order[pos : pos + batch]
        cands = cands[bound[cands] < best]
        pos += batch
        rows, owners = [], []
        for k, c in enumerate(cands):
            need = np.flatnonzero(upper[:, c] > bound[c])
            rows.append(need)
            owners.append(np.full(need.size, k))
        rows_all = np.concatenate(rows)
        owner = np.concatenate(owners)
        if rows_all.size:
            allowed = np.broadcast_to(in_e, (rows_all.size, n)).copy()
            allowed[np.arange(rows_all.size), r_idx[cands[owner]]] = True
            dist = _dist(x, r_idx[rows_all], torch.from_numpy(allowed), tol).distance
        else:
            dist = np.zeros(0)
        for k, c in enumerate(cands):
            sel = owner == k
            value = max(float(bound[c]), float(dist[sel].max()) if sel.any() else 0.0)
            if value < best:
                d_c = upper[:, c].copy()  # rows not solved have d <= bound <= value
                d_c[rows_all[sel]] = dist[sel]
                best, best_c, best_d = value, int(c), d_c
    return int(r_idx[best_c]), best, best_d
