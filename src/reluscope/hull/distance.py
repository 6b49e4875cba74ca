"""Distance of points to the convex hull of a point set: d(v, S) = min ||v - sum a_i x_i||, a on the simplex.

The solver is Wolfe's minimum-norm-point algorithm (an active-set method: a small "corral" of
affinely independent points whose affine min-norm point has positive weights), run for a whole
batch of queries at once with padded corrals, so each step is one big matmul (scores of all N
points for all queries) plus one batched Cholesky solve on the corrals. It is exact up to rounding
and terminates finitely; every query also carries a certificate:

* upper bound: ||v - p|| for the current hull point p (feasible);
* lower bound: the separating half-space {z : r.z <= max_i r.x_i}, r = v - p, which contains the
  hull, lies (r.v - max_i r.x_i) / ||r|| away from v (the Frank-Wolfe duality gap in distance units).

A query stops once upper - lower <= tol * radius (radius: largest distance of a point from the
points' centroid), or once its membership is decided when `inside_distance` is given.

Queries deep inside the hull (e.g. a combination with weight on every point) would need at least
D + 1 major steps, each with a corral factorisation. A query still running after a few steps
therefore gets a direct certificate first: alternating projections, from the uniform weights,
between the affine set {w : X^T w = v, sum w = 1} (one D x D factorisation shared by all
queries) and w >= 0. A projection that lands on w >= 0 is a convex combination whose residual is
computed and checked like any other (upper bound, lower bound 0); queries it does not settle
restart Wolfe. Only when no `allowed` mask is given (one hull for all queries). Projected gradient /
FISTA was tried first; it needs ~1e5 iterations to push interior points below a small tolerance
because the Gram matrix's Lipschitz constant grows with N, while the active set needs about as many
steps as the final support has points.

"Several hulls" are subsets of one point set given as a boolean mask [M, N] (`allowed`): query m
sees only the points with allowed[m] True. That covers leave-one-out, RGE's candidate hulls
E + {x} and class hulls stacked in one array.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from .._checks import as_float_tensor, check_finite, check_positive, single_thread
from ..results import Result

if TYPE_CHECKING:
    from .._types import ArrayLike

__all__ = ["HullDistance", "hull_distance", "hull_distance_bounds", "in_hull", "prepare_points"]

# Elements of the [chunk, N] score matrix per chunk of queries (float64: 8 bytes each).
_CHUNK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class HullDistance(Result):
    """Per-query result of the hull-distance solver (numpy, float64).

    `lower <= true distance <= upper` always holds (up to rounding); `distance` is `upper`, the
    distance to an actual hull point. `converged` is False for queries that hit `max_iter`.
    `support` / `weights` ([M, K], -1 / 0 padded) give the convex combination found.
    """

    distance: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    converged: np.ndarray
    support: np.ndarray
    weights: np.ndarray
    iterations: int
    tol: float

    @property
    def gap(self) -> np.ndarray:
        return self.upper - self.lower


def prepare_points(points: ArrayLike, name: str = "points", *, min_points: int = 1, dtype: torch.dtype | None = torch.float64, device: torch.device | str | None = None):
    """Check and convert a point set [N, D]; refuses NaN/inf, wrong rank, too few points. Tensors
    that require grad are detached: hull geometry is not differentiated here."""
    x = as_float_tensor(points, name, dtype=dtype, device=device).detach()
    if x.dim() != 2:
        raise ValueError(f"{name}: expected a 2-D array [N, D] of points, got shape {list(x.shape)}")
    if x.shape[0] < min_points:
        raise ValueError(f"{name}: expected at least {min_points} point(s), got {x.shape[0]}")
    if x.shape[1] == 0:
        raise ValueError(f"{name}: expected points with at least one coordinate, got shape {list(x.shape)}")
    return check_finite(x, name)


def _prepare(points, queries, allowed, device):
    x = prepare_points(points, "points", device=device)
    v = as_float_tensor(queries, "queries", dtype=torch.float64, device=x.device).detach()
    if v.dim() == 1 and v.shape[0] == x.shape[1]:
        raise ValueError(
            f"queries: expected a 2-D array [M, {x.shape[1]}], got a single point of shape "
            f"{list(v.shape)} (use queries[None, :])"
        )
    if v.dim() != 2 or v.shape[1] != x.shape[1]:
        raise ValueError(
            f"queries: expected shape [M, {x.shape[1]}] (same dimension as points), got {list(v.shape)}"
        )
    check_finite(v, "queries")
    if allowed is not None:
        allowed = torch.as_tensor(np.asarray(allowed) if not isinstance(allowed, torch.Tensor) else allowed)
        if allowed.dtype != torch.bool or tuple(allowed.shape) != (v.shape[0], x.shape[0]):
            raise ValueError(
                f"allowed: expected a bool mask of shape [{v.shape[0]}, {x.shape[0]}] (queries x points), "
                f"got {allowed.dtype} {list(allowed.shape)}"
            )
        allowed = allowed.to(x.device)
        empty = ~allowed.any(dim=1)
        if bool(empty.any()):
            raise ValueError(f"allowed: query {int(empty.nonzero()[0])} has no allowed point (an empty hull)")
    return x, v, allowed


def hull_distance(points: ArrayLike, queries: ArrayLike, *, tol: float = 1e-7, device: torch.device | str | None = None, allowed: ArrayLike | None = None, max_iter: int | None = None) -> np.ndarray:
    """float64 [M]: Euclidean distance of each query [M, D] to the convex hull of `points` [N, D].

    Zero (up to `tol * radius`) for queries inside the hull. Guarantee: the returned value is the
    distance to a hull point (an upper bound) and exceeds the true distance by at most
    `tol * radius`, radius = max distance of a point from the centroid (see `hull_distance_bounds`
    for both bounds). Duplicate points are fine; flat (lower-dimensional) point sets are fine: the
    distance then includes the offset from their affine span. `device` runs the solver there
    (e.g. "cuda"); `allowed` [M, N] restricts query m to a subset of the points.
    """
    return hull_distance_bounds(points, queries, tol=tol, device=device, allowed=allowed, max_iter=max_iter).distance


def in_hull(points: ArrayLike, queries: ArrayLike, *, inside_distance: float = 1e-6, device: torch.device | str | None = None, allowed: ArrayLike | None = None, max_iter: int | None = None) -> np.ndarray:
    """bool [M]: d(query, hull) <= inside_distance (absolute, in the points' units), decided by
    certificate (each query stops once decided)."""
    check_positive(float(inside_distance), "inside_distance")
    res = hull_distance_bounds(points, queries, inside_distance=inside_distance, device=device, allowed=allowed,
                               max_iter=max_iter)
    return res.upper <= inside_distance


def hull_distance_bounds(
    points: ArrayLike,
    queries: ArrayLike,
    *,
    tol: float = 1e-7,
    inside_distance: float | None = None,
    device: torch.device | str | None = None,
    allowed: ArrayLike | None = None,
    max_iter: int | None = None,
) -> HullDistance:
    """Distances with certified bounds; see the module docstring for the method.

    `tol` (relative to the hull radius, > 0): stop a query when upper - lower <= tol * radius.
    `inside_distance` (absolute, optional): also stop a query as soon as upper <= inside_distance
    or lower > inside_distance (a membership decision), which is much cheaper than the exact
    distance far from the boundary.
    """
    check_positive(float(tol), "tol")
    eps = inside_distance  # the solver's name for it
    if eps is not None:
        check_positive(float(eps), "inside_distance")
    x, v, allowed = _prepare(points, queries, allowed, device)
    n, d = x.shape
    if max_iter is None:
        max_iter = 20 * (min(n, d + 1) + 10)
    # Distances scale with the data: solve on data divided by a power of two (exact) near its
    # largest entry, so the solver's few absolute floors (1e-300, 1e-15) never meet data of 1e-200
    # and squares of 1e200 do not overflow; multiply the distances back at the end.
    big = max(float(x.abs().max()), float(v.abs().max()))
    unit = 2.0 ** math.ceil(math.log2(big)) if big > 0 else 1.0
    x, v = x / unit, v / unit
    if eps is not None:
        eps = eps / unit
    center = x.mean(dim=0)
    xc = x - center  # centring keeps the Gram entries small and well conditioned
    vc = v - center
    radius = float(xc.norm(dim=1).max())
    abs_tol = tol * max(radius, 1e-300)
    sq = (xc * xc).sum(dim=1)
    m = v.shape[0]
    chunk = max(1, _CHUNK_ELEMENTS // n)
    parts = []
    # one thread: the solver is a long chain of small ops, and a descheduled worker thread stalls
    # each of them (measured under load: 24 steps of 20 queries, 2,000 x 256: 8.9 s on 2 threads,
    # 0.18 s on one)
    small = x.device.type == "cpu"
    gram = [] if allowed is None and n > d else None  # factor of xc^T xc, built on first need
    with single_thread(small):
        for start in range(0, m, chunk):
            sl = slice(start, start + chunk)
            parts.append(_solve(xc, sq, vc[sl], None if allowed is None else allowed[sl], abs_tol, eps, max_iter, gram))
    lower = np.concatenate([p[0] for p in parts]) * unit
    upper = np.concatenate([p[1] for p in parts]) * unit
    conv = np.concatenate([p[2] for p in parts])
    k = max(p[3].shape[1] for p in parts)
    support = np.concatenate([np.pad(p[3], ((0, 0), (0, k - p[3].shape[1])), constant_values=-1) for p in parts])
    weights = np.concatenate([np.pad(p[4], ((0, 0), (0, k - p[4].shape[1]))) for p in parts])
    iters = max(p[5] for p in parts)
    if not conv.all():
        warnings.warn(
            f"hull_distance: {int((~conv).sum())} of {m} queries did not converge in max_iter={max_iter} "
            "steps; their lower/upper bounds are still valid (see hull_distance_bounds)",
            RuntimeWarning,
            stacklevel=2,
        )
    return HullDistance(upper, lower, upper, conv, support, weights, iters, tol)


# Wolfe steps a query gets before the centroid certificate is tried on it: easy queries (outside,
# or inside a small face) finish within this, so they never pay for the D x D factorisation.
_FIRST_STEPS = 24


def _solve(xc, sq, v, allowed, abs_tol, eps, max_iter, gram):
    """Wolfe on a chunk of queries; queries still running after _FIRST_STEPS get the centroid
    certificate (`_centroid_weights`), and the ones it does not settle restart Wolfe in full."""
    if gram is None or max_iter <= _FIRST_STEPS:
        return _wolfe(xc, sq, v, allowed, abs_tol, eps, max_iter)
    first = _wolfe(xc, sq, v, allowed, abs_tol, eps, _FIRST_STEPS)
    hard = np.flatnonzero(~first[2])
    if hard.size == 0:
        return first
    lower, upper, conv = first[0].copy(), first[1].copy(), first[2].copy()
    parts = [(np.flatnonzero(first[2]), first[3][first[2]], first[4][first[2]])]
    hv = v[torch.from_numpy(hard).to(v.device)]
    w, up = _centroid_weights(xc, hv, gram)
    ok = up <= abs_tol if eps is None else (up <= abs_tol) | (up <= eps)
    if ok.any():
        rows = hard[ok]
        lower[rows], upper[rows], conv[rows] = 0.0, up[ok], True
        n = xc.shape[0]
        parts.append((rows, np.broadcast_to(np.arange(n), (rows.size, n)), w[ok]))
    rest = hard[~ok]
    it = first[5]
    if rest.size:
        again = _wolfe(xc, sq, hv[torch.from_numpy(np.flatnonzero(~ok)).to(v.device)], None, abs_tol, eps, max_iter)
        lower[rest], upper[rest], conv[rest] = again[0], again[1], again[2]
        parts.append((rest, again[3], again[4]))
        it = max(it, again[5])
    k = max(p[1].shape[1] for p in parts)
    idx = np.full((v.shape[0], k), -1, dtype=np.int64)
    wts = np.zeros((v.shape[0], k))
    for rows, pi, pw in parts:
        idx[rows, : pi.shape[1]] = pi
        wts[rows, : pw.shape[1]] = pw
    return lower, upper, conv, idx, wts, it


_PROJECTIONS = 64  # alternating projections tried per hard query before Wolfe takes over


def _centroid_weights(xc, v, gram):
    """Membership certificate for queries deep inside: alternating projections between the affine
    set {w : xc^T w = v, sum w = 1} and w >= 0, from the uniform weights. The projection onto the
    affine set is w + xc G^-1 (v - xc^T w) + (1 - sum w) / N (G = xc^T xc; xc is centred, which
    decouples the two constraints). Once a projection lands on w >= 0 it is a convex combination;
    returns (w, ||v - xc^T w||), the second an exact upper bound computed from the weights
    themselves, inf for queries not settled (negative mass stalls above 1% after 8 rounds, or
    _PROJECTIONS rounds pass)."""
    n, m = xc.shape[0], v.shape[0]
    if not gram:
        chol, info = torch.linalg.cholesky_ex(xc.T @ xc)
        gram.append(chol if int(info) == 0 else None)
    chol = gram[0]
    out_w = torch.zeros(m, n, dtype=xc.dtype, device=xc.device)
    up = torch.full((m,), float("inf"), dtype=xc.dtype, device=xc.device)
    if chol is None:  # rank-deficient point set: no certificate, Wolfe does the work
        return out_w.cpu().numpy(), up.cpu().numpy()
    rows = torch.arange(m, device=xc.device)
    w = torch.full((m, n), 1.0 / n, dtype=xc.dtype, device=xc.device)
    vv = v
    for step in range(_PROJECTIONS):
        r = vv - w @ xc
        w = w + (xc @ torch.cholesky_solve(r.T.contiguous(), chol)).T
        w += (1 - w.sum(dim=1, keepdim=True)) / n
        negative = (-w).clamp_min(0).sum(dim=1)
        done = negative == 0
        if bool(done.any()):
            wd = w[done]
            out_w[rows[done]] = wd
            up[rows[done]] = (vv[done] - wd @ xc).norm(dim=1)
        keep = ~done
        if step >= 8:
            keep &= negative <= 1e-2
        if not bool(keep.any()):
            break
        rows, w, vv = rows[keep], w[keep].clamp_min(0), vv[keep]
    return out_w.cpu().numpy(), up.cpu().numpy()


def _wolfe(xc, sq, v, allowed, abs_tol, eps, max_iter):
    """Batched Wolfe min-norm point for queries v [M, D] against points xc [N, D] (centred).

    Per query: slots idx [K] (-1 = empty), weights w [K], corral Gram gx [K, K] of x, bx [K] = x.v.
    Each step solves the affine min-norm problem on every active corral (in coordinates y = x - v);
    positive solution -> major step (score all points, certify, add the best one); otherwise a
    minor step towards it that drops the first weight to hit zero.
    """
    dev, dt = xc.device, xc.dtype
    m = v.shape[0]
    vv = (v * v).sum(dim=1)
    # start: the nearest point of each query
    d2 = sq[None, :] - 2 * v @ xc.T
    if allowed is not None:
        d2 = d2.masked_fill(~allowed, float("inf"))
    j0 = d2.argmin(dim=1)
    cap = 8
    idx = torch.full((m, cap), -1, dtype=torch.long, device=dev)
    idx[:, 0] = j0
    w = torch.zeros(m, cap, dtype=dt, device=dev)
    w[:, 0] = 1
    gx = torch.zeros(m, cap, cap, dtype=dt, device=dev)
    gx[:, 0, 0] = sq[j0]
    bx = torch.zeros(m, cap, dtype=dt, device=dev)
    bx[:, 0] = (xc[j0] * v).sum(dim=1)
    lower = torch.zeros(m, dtype=dt, device=dev)
    upper = torch.full((m,), float("inf"), dtype=dt, device=dev)
    active = torch.ones(m, dtype=torch.bool, device=dev)
    converged = torch.zeros(m, dtype=torch.bool, device=dev)
    scale2 = float(sq.max()) + float(vv.max())
    it = 0
    while it < max_iter and bool(active.any()):
        it += 1
        a = active.nonzero().squeeze(1)
        valid = idx[a] >= 0
        vf = valid.to(dt)
        ba = bx[a]
        g = gx[a]  # a copy (advanced indexing); the Gram in y = x - v coordinates, built in place
        g.sub_(ba[:, :, None]).sub_(ba[:, None, :]).add_(vv[a][:, None, None])
        g.mul_(vf[:, :, None]).mul_(vf[:, None, :])
        diag = torch.diagonal(g, dim1=1, dim2=2)
        ridge = 1e-13 * diag.sum(dim=1).clamp_min(1e-100)  # tolerates affinely dependent corrals
        g.diagonal(dim1=1, dim2=2).add_(ridge[:, None] + (1 - vf))
        chol, info = torch.linalg.cholesky_ex(g)
        if bool((info == 0).all()):
            sol = torch.cholesky_solve(vf[:, :, None], chol).squeeze(2)
        else:  # rounding made a corral Gram indefinite: LU copes
            sol = torch.linalg.solve(g, vf)
        alpha = sol / sol.sum(dim=1, keepdim=True)
        alpha = alpha * vf
        wa = w[a]
        bad = valid & (alpha <= 1e-15)
        minor = bad.any(dim=1)
        # ---- minor step: move from w towards alpha until a weight hits zero, drop it
        if bool(minor.any()):
            mi = minor.nonzero().squeeze(1)
            wm, am, bm = wa[mi], alpha[mi], bad[mi]
            ratio = torch.where(bm, wm / (wm - am).clamp_min(1e-300), torch.full_like(wm, float("inf")))
            theta = ratio.min(dim=1).values.clamp(0, 1)
            wn = (1 - theta[:, None]) * wm + theta[:, None] * am
            drop = (wn <= 1e-15) | (bm & (ratio <= theta[:, None] * (1 + 1e-12)))
            drop &= valid[mi]
            wn = wn.masked_fill(drop, 0).clamp_min(0)
            wn = wn / wn.sum(dim=1, keepdim=True)
            rows = a[mi]
            w[rows] = wn
            idx[rows] = idx[rows].masked_fill(drop, -1)
        # ---- major step: accept the affine point, certify, add the best improving point
        ma = (~minor).nonzero().squeeze(1)
        if ma.numel() == 0:
            continue
        rows = a[ma]
        wk = alpha[ma]
        w[rows] = wk
        sl = idx[rows].clamp_min(0)
        px = torch.einsum("mk,mkd->md", wk, xc[sl])
        r = v[rows] - px  # residual v - p
        rn = r.norm(dim=1)
        scores = r @ xc.T  # r.x_i ; the hull lies in {z : r.z <= max_i r.x_i}
        if allowed is not None:
            scores = scores.masked_fill(~allowed[rows], float("-inf"))
        smax, jbest = scores.max(dim=1)
        rv = (r * v[rows]).sum(dim=1)
        up = rn
        lo = ((rv - smax) / rn.clamp_min(1e-300)).clamp(min=0)
        lo = torch.minimum(lo, up)
        upper[rows], lower[rows] = up, lo
        # Wolfe's test (no point improves): r.v - max_i r.x_i >= ||r||^2 - rounding
        rp = (r * px).sum(dim=1)
        done = (up - lo <= abs_tol) | (smax - rp <= 1e-12 * scale2)
        if eps is not None:
            done |= (up <= eps) | (lo > eps)
        already = (idx[rows] == jbest[:, None]).any(dim=1)
        done |= already  # the best point is in the corral already: rounding floor reached
        converged[rows[done]] = True
        active[rows[done]] = False
        grow = rows[~done]
        if grow.numel() == 0:
            continue
        jn = jbest[~done]
        free = idx[grow] < 0
        if not bool(free.any(dim=1).all()):
            idx, w, gx, bx, cap = _grow(idx, w, gx, bx, cap)
            free = idx[grow] < 0
        slot = free.to(torch.int8).argmax(dim=1)
        idx[grow, slot] = jn
        w[grow, slot] = 0
        cross = xc[idx[grow].clamp_min(0)] @ xc[jn][:, :, None]  # [G, K, 1]
        cross = cross.squeeze(2) * (idx[grow] >= 0)
        gx[grow, slot, :] = cross
        gx[grow, :, slot] = cross
        bx[grow, slot] = (xc[jn] * v[grow]).sum(dim=1)
    return (
        lower.cpu().numpy(),
        upper.cpu().numpy(),
        converged.cpu().numpy(),
        idx.cpu().numpy(),
        w.cpu().numpy(),
        it,
    )


def _grow(idx, w, gx, bx, cap):
    new = cap + max(16, cap // 4)  # slow growth: every step costs O(K^2) per query
    m = idx.shape[0]
    idx2 = torch.full((m, new), -1, dtype=idx.dtype, device=idx.device)
    idx2[:, :cap] = idx
    w2 = torch.zeros(m, new, dtype=w.dtype, device=w.device)
    w2[:, :cap] = w
    gx2 = torch.zeros(m, new, new, dtype=gx.dtype, device=gx.device)
    gx2[:, :cap, :cap] = gx
    bx2 = torch.zeros(m, new, dtype=bx.dtype, device=bx.device)
    bx2[:, :cap] = bx
    return idx2, w2, gx2, bx2, new
