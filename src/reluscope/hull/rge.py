"""Revised Greedy Expansion (RGE): a small subset E whose hull eps-approximates the hull of S.

Follows Jia et al. and the authors' code (SamJia/RevisedGE; docs/methods.md): KCHA start plus the
per-coordinate extremes, clean E, clean R, then greedy minimax additions. Choices we had to make
(all exposed as options):

* KCHA runs on all points by default, as the paper does (fast: see `reluscope.hull.kcha`);
  `kcha_sample=m` runs it on m points drawn at random instead (only its ranking is used, as a
  seed). Kernel exp(-||xi - xj||^2 / sigma^2) as in the authors' code.
* Cleaning E is sequential in index order, as in the authors' code: a point is dropped if it is
  within `inside_distance` of the hull of the remaining E (checked after earlier drops).
* The minimax search is exact but lazy: for each candidate c a lower bound on
  max_v d(v, E + c) comes from the separating half-space of every v (the hull of E + c lies in
  {z : n.z <= max(n.p_v, n.c)}, n the unit residual of v), so d(v, E + c) >= min(d(v, E),
  n.(v - c)). Candidates are evaluated in bound order until the bound cannot beat the best; rows
  whose upper bound min(d(v, E), ||v - c||) is below the candidate's lower bound are skipped.
  The [R, R] bound matrix is never held whole: it is reduced in column chunks sized by
  `memory_budget`, and a candidate's upper bounds are computed when it is evaluated.
* The loop stops when the minimax distance is <= `stop`, when |E| reaches `max_size` (N/10), or
  when R is empty; the reported `error` is max over all of S of d(u, E). A run that ends at
  `max_size` without reaching `stop`, or whose seed is already larger than `max_size`, warns and
  says so in the result (`stopped_by`, `over_max_size`).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

import numpy as np
import torch

from .._checks import DEFAULT_MEMORY_BUDGET, check_int, check_memory_budget, check_positive, rows_within_budget, single_thread
from ..results import Result
from .distance import hull_distance_bounds, prepare_points
from .kcha import kcha_memory, kcha_scores

if TYPE_CHECKING:
    from .._types import ArrayLike

__all__ = ["RGEResult", "RGEStop", "revised_greedy_expansion", "kcha_scores"]


class RGEStop(str, Enum):
    """Why the greedy loop ended: STOP (minimax distance <= stop, the paper's criterion), MAX_SIZE
    (|E| reached max_size first: the stop was missed), EXHAUSTED (no point left outside E's hull)."""

    STOP = "stop"
    MAX_SIZE = "max_size"
    EXHAUSTED = "exhausted"


@dataclass(frozen=True)
class RGEResult(Result):
    """indices: sorted indices of E into the points; error: max_u d(u, E) over all points;
    history: one (|E|, |R|, minimax distance) row per greedy step; seconds: wall time;
    stopped_by: why the loop ended; over_max_size: |E| ended above max_size (the seed was larger);
    kcha_points: how many points KCHA ran on."""

    indices: np.ndarray
    error: float
    history: tuple[tuple[int, int, float], ...]
    initial_size: int
    seconds: float
    inside_distance: float
    stop: float
    max_size: int
    stopped_by: RGEStop
    over_max_size: bool
    kcha_points: int

    @property
    def size(self) -> int:
        return int(self.indices.size)

    @property
    def reached_stop(self) -> bool:
        """False when max_size ended the expansion before the stop distance (a warning too)."""
        return self.stopped_by is not RGEStop.MAX_SIZE


def revised_greedy_expansion(
    points: ArrayLike,
    *,
    inside_distance: float = 0.03,
    stop: float = 0.06,
    sigma: float = 0.3,
    initial_size: int | None = None,
    max_size: int | None = None,
    kcha_rate: float = 0.01,
    kcha_sample: int | None = None,
    tol: float = 1e-9,
    seed: int = 0,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: bool = False,
    batch: int | None = None,
) -> RGEResult:
    """Select E subset of `points` [N, D] with d(u, E) small for every u; see the module docstring.

    inside_distance: inside tolerance of the cleaning steps (> 0, absolute, in the points' units). stop: minimax
    distance at which to stop. initial_size: KCHA seed size (default N // 20). max_size: cap on |E|
    (default N // 10). kcha_sample: run KCHA on this many random points instead of all (None).
    memory_budget: bytes; refuses up front with the estimate when KCHA's N x N work cannot fit, and
    sizes the candidates solved together per greedy round (at most 16). `batch` (candidates per
    round) is deprecated in favour of memory_budget.
    """
    if batch is not None:
        warnings.warn("revised_greedy_expansion(batch=) is deprecated; candidates per round follow memory_budget=",
                      DeprecationWarning, stacklevel=2)
        batch = check_int(batch, "batch")
    check_positive(float(inside_distance), "inside_distance")
    check_positive(float(stop), "stop", allow_zero=True)
    budget = check_memory_budget(memory_budget)
    x = prepare_points(points, "points", min_points=2)
    device = x.device  # KCHA runs there; the greedy loop is many small solves, which the CPU does best
    with single_thread():  # many small solves: one thread avoids hand-off costs
        return _rge(x.cpu(), inside_distance, stop, sigma, initial_size, max_size, kcha_rate, kcha_sample, tol, seed, batch,
                    budget, progress, device)


def _rge(x, eps, stop, sigma, initial_size, max_size, kcha_rate, kcha_sample, tol, seed, batch, budget, progress, device):
    t0 = time.perf_counter()
    n = x.shape[0]
    xn = x.numpy()
    initial_size = max(1, n // 20) if initial_size is None else check_int(initial_size, "initial_size")
    max_size = max(2, n // 10) if max_size is None else check_int(max_size, "max_size")
    if kcha_sample is not None:
        kcha_sample = check_int(kcha_sample, "kcha_sample")
    rng = np.random.default_rng(seed)
    sample = np.arange(n) if kcha_sample is None or n <= kcha_sample else np.sort(rng.choice(n, kcha_sample, replace=False))
    scores = kcha_scores(xn[sample], sigma=sigma, rate=kcha_rate, memory_budget=budget, device=device)
    take = max(1, round(initial_size * len(sample) / n))
    start = set(sample[np.argsort(scores, kind="stable")[-take:]].tolist())
    start.update(xn.argmax(axis=0).tolist())
    start.update(xn.argmin(axis=0).tolist())
    in_e = np.zeros(n, dtype=bool)
    in_e[sorted(start)] = True
    _clean_e(x, in_e, eps, tol)
    initial = int(in_e.sum())
    in_r = ~in_e
    history = []
    stopped_by = RGEStop.EXHAUSTED
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_size, desc="RGE |E|", initial=initial)
    while True:
        if not in_r.any():
            stopped_by = RGEStop.EXHAUSTED
            break
        if in_e.sum() >= max_size:
            stopped_by = RGEStop.MAX_SIZE
            break
        r_idx = np.flatnonzero(in_r)
        e_idx = np.flatnonzero(in_e)
        res = hull_distance_bounds(x[e_idx], x[r_idx], tol=tol)
        d_e = res.distance
        keep = d_e > eps  # clean R: points within eps of the hull of E are inside
        in_r[r_idx[~keep]] = False
        r_idx, d_e = r_idx[keep], d_e[keep]
        if r_idx.size == 0:
            stopped_by = RGEStop.EXHAUSTED
            break
        proj = _hull_points(xn[e_idx], res.support[keep], res.weights[keep])
        c, value, d_new = _minimax(x, xn, in_e, r_idx, d_e, proj, tol, batch, budget)
        in_e[c] = True
        in_r[c] = False
        in_r[r_idx[d_new <= eps]] = False
        _clean_e(x, in_e, eps, tol)
        history.append((int(in_e.sum()), int(in_r.sum()), float(value)))
        if bar is not None:
            bar.update(int(in_e.sum()) - bar.n)
        if value <= stop:
            stopped_by = RGEStop.STOP
            break
    if bar is not None:
        bar.close()
    idx = np.flatnonzero(in_e)
    error = float(hull_distance_bounds(x[idx], x, tol=tol).distance.max())
    over = idx.size > max_size
    if stopped_by is RGEStop.MAX_SIZE or over:
        warnings.warn(
            f"revised_greedy_expansion: |E| = {idx.size} with max_size = {max_size}; "
            + (f"the minimax distance did not reach stop: max distance to the hull of E {error:.3g} above stop={stop}; "
               if stopped_by is RGEStop.MAX_SIZE else "the seed (KCHA + extremes) is already larger; ")
            + "pass a larger max_size, or see RGEResult.stopped_by / over_max_size",
            RuntimeWarning,
            stacklevel=3,
        )
    return RGEResult(idx, error, tuple(history), initial, time.perf_counter() - t0, float(eps), float(stop),
                     int(max_size), stopped_by, bool(over), int(len(sample)))


def rge_memory(n: int, d: int, *, kcha_points: int | None = None) -> int:
    """Rough peak bytes of `revised_greedy_expansion` on n points in d dimensions (KCHA's N x N
    work dominates; the greedy loop streams within the budget)."""
    return kcha_memory(n if kcha_points is None else min(n, kcha_points)) + 8 * n * (d + 8)


def _hull_points(xe, support, weights):
    safe = np.clip(support, 0, None)
    return np.einsum("mk,mkd->md", weights * (support >= 0), xe[safe])


def _clean_e(x, in_e, eps, tol):
    """Drop points of E within eps of the hull of the rest, sequentially in index order."""
    e_idx = np.flatnonzero(in_e)
    if e_idx.size < 2:
        return
    allowed = ~np.eye(e_idx.size, dtype=bool)  # leave-one-out within E
    d = hull_distance_bounds(x[e_idx], x[e_idx], tol=tol, allowed=torch.from_numpy(allowed)).distance
    for i in e_idx[d <= eps]:  # verify one at a time: earlier drops can push later points out
        if in_e.sum() < 2:
            break
        rest = in_e.copy()
        rest[i] = False
        if hull_distance_bounds(x[rest], x[i : i + 1], tol=tol).distance[0] <= eps:
            in_e[i] = False


_ROUND = 16  # candidates solved together per lazy round at most: enough to vectorise, few wasted


def _minimax(x, xn, in_e, r_idx, d_e, proj, tol, batch, budget):
    """argmin over c in R of max over v in R of d(v, E + c), lazily (see module docstring)."""
    v = xn[r_idx]
    nr = r_idx.size
    normal = (v - proj) / d_e[:, None]
    nv = (normal * v).sum(1)
    # bound[c] = max_v lower[v, c], lower[v, c] = clip(min(d_e[v], n_v . (v - c)), 0), lower[c, c] = 0;
    # reduced in column chunks so that no [R, R] matrix is held
    cols = rows_within_budget(8 * 3 * nr, budget, what="RGE candidate column", total=nr)
    bound = np.empty(nr)
    for s in range(0, nr, cols):
        sl = slice(s, min(nr, s + cols))
        low = np.clip(np.minimum(d_e[:, None], nv[:, None] - normal @ v[sl].T), 0, None)
        low[np.arange(sl.start, sl.stop), np.arange(sl.stop - sl.start)] = 0
        bound[sl] = low.max(axis=0)
    order = np.argsort(bound, kind="stable")
    e_idx = np.flatnonzero(in_e)
    if batch is None:  # per candidate: its upper-bound column, distances, and its rows' hull masks
        batch = min(_ROUND, rows_within_budget(nr * (24 + e_idx.size + _ROUND), budget, what="RGE candidate", total=nr))
    base = x[e_idx]
    best, best_c, best_d = np.inf, -1, None
    pos = 0
    while pos < order.size and bound[order[pos]] < best:
        cands = order[pos : pos + batch]
        cands = cands[bound[cands] < best]
        pos += batch
        # upper[v, c] = min(d_e[v], ||v - c||), 0 at v = c: rows above the bound must be solved
        upper = np.minimum(d_e[:, None], np.sqrt(np.clip(
            (v * v).sum(1)[:, None] + (v[cands] * v[cands]).sum(1)[None, :] - 2 * v @ v[cands].T, 0, None)))
        upper[cands, np.arange(cands.size)] = 0
        rows, owners = [], []
        for k, c in enumerate(cands):
            need = np.flatnonzero(upper[:, k] > bound[c])
            rows.append(need)
            owners.append(np.full(need.size, k))
        rows_all = np.concatenate(rows)
        owner = np.concatenate(owners)
        if rows_all.size:
            # hull of E + c for each row: points = E then the candidates; a row sees E and its own candidate
            pts = torch.cat([base, x[r_idx[cands]]])
            allowed = np.zeros((rows_all.size, e_idx.size + cands.size), dtype=bool)
            allowed[:, : e_idx.size] = True
            allowed[np.arange(rows_all.size), e_idx.size + owner] = True
            dist = hull_distance_bounds(pts, x[r_idx[rows_all]], tol=tol, allowed=torch.from_numpy(allowed)).distance
        else:
            dist = np.zeros(0)
        for k, c in enumerate(cands):
            sel = owner == k
            value = max(float(bound[c]), float(dist[sel].max()) if sel.any() else 0.0)
            if value < best:
                d_c = upper[:, k].copy()  # rows not solved have d <= bound <= value
                d_c[rows_all[sel]] = dist[sel]
                best, best_c, best_d = value, int(c), d_c
    return int(r_idx[best_c]), best, best_d
