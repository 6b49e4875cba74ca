"""Scores of a two-sided split of the box against a network's binary decision, and the best
straight cut of the box as the baseline any split must beat.

All scores are area-weighted (each point of the box counts once) and computed from the 2 x 2
table of areas: side x decided class. The sides of a split have no names (a Fiedler vector's sign
is arbitrary), so every score is maximised over swapping the sides:

* `agreement`: the area fraction where the side equals the class. Inflated by class imbalance:
  when the decision covers 81% of the box, a useless split already gets 0.81.
* `kappa`: Cohen's kappa with areas as weights, (p_o - p_e) / (1 - p_e): 0 for a split that is
  independent of the decision, 1 for the decision itself. The headline score.
* `balanced`: the mean of the two per-class recalls (0.5 for an independent split). nan when the
  decision is one class on the whole box (no recall for the absent class).
* `iou`: intersection over union of a side and the class-1 region.

kappa and balanced agree on which orientation is the better one (both have the sign of
ad - bc); agreement may prefer the other orientation under imbalance, and is maximised on its own.
A split whose smaller side holds less than `degenerate_below` (default 5%) of the box is flagged
`degenerate`: a sliver cut off a corner scores kappa near 0 but can score a high agreement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .._checks import check_int
from ..results import Result
from ._decision import decision_function, positive_class_area

if TYPE_CHECKING:
    from .._types import ArrayLike
    from .partition import RegionMap

__all__ = [
    "SplitScore", "StraightCut", "DEGENERATE_BELOW", "score_areas", "score_split", "best_straight_cut",
    "class_one_triangles",
]

DEGENERATE_BELOW = 0.05


@dataclass(frozen=True)
class SplitScore(Result):
    """Area-weighted scores of one split (module docstring): `agreement`, `kappa`, `balanced`,
    `iou`, each maximised over the side swap; `smaller_side` (area fraction of the smaller side),
    `positive_fraction` (of the box decided class 1) and `degenerate` (smaller_side below the
    threshold)."""

    agreement: float
    kappa: float
    balanced: float
    iou: float
    smaller_side: float
    positive_fraction: float
    degenerate: bool


def _check_fraction(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 0.5:
        raise ValueError(f"{name}: expected a number in [0, 0.5), got {value!r}")
    return float(value)


def score_areas(both: float, side: float, positive: float, total: float, *, degenerate_below: float = DEGENERATE_BELOW) -> SplitScore:
    """Scores from areas: `both` = side and class 1, `side`, `positive` = class 1, `total` = box."""
    degenerate_below = _check_fraction(degenerate_below, "degenerate_below")
    if not total > 0:
        raise ValueError(f"total: expected a positive area, got {total!r}")
    p, q = min(max(side / total, 0.0), 1.0), min(max(positive / total, 0.0), 1.0)
    a = min(max(both / total, max(0.0, p + q - 1)), min(p, q))  # rounding must not leave the table's bounds
    d = 1 - p - q + a
    po = a + d
    pe = p * q + (1 - p) * (1 - q)
    kappas = [(po - pe) / (1 - pe) if 1 - pe > 1e-15 else 0.0, (pe - po) / pe if pe > 1e-15 else 0.0]
    if 1e-12 < q < 1 - 1e-12:
        ba = 0.5 * (a / q + d / (1 - q))
        balanced = max(ba, 1 - ba)
    else:
        balanced = math.nan
    ious = []
    for inter, side_area in ((a, p), (q - a, 1 - p)):
        union = side_area + q - inter
        ious.append(inter / union if union > 0 else 0.0)
    smaller = min(p, 1 - p)
    return SplitScore(
        agreement=float(max(po, 1 - po)), kappa=float(max(kappas)), balanced=float(balanced), iou=float(max(ious)),
        smaller_side=float(smaller), positive_fraction=float(q), degenerate=bool(smaller < degenerate_below),
    )


def score_split(region_map: RegionMap, side: ArrayLike, *, output: int | None = None, degenerate_below: float = DEGENERATE_BELOW) -> SplitScore:
    """Scores of a split of the faces (`side` bool [F]) against the decision, exact areas."""
    side = np.asarray(side)
    if side.dtype != bool or side.shape != (region_map.n_regions,):
        raise ValueError(f"side: expected a bool array of shape ({region_map.n_regions},), got {side.dtype} {side.shape}")
    pos = positive_class_area(region_map, output=output)
    area = region_map.areas
    return score_areas(float(pos[side].sum()), float(area[side].sum()), float(pos.sum()), float(area.sum()),
                       degenerate_below=degenerate_below)


# ----------------------------------------------------------------------------- straight cut


@dataclass(frozen=True)
class StraightCut(Result):
    """The best straight cut found: side = {x : normal . x <= offset} (plane coordinates), its
    `score`, and how the search ran (`n_directions` on [0, pi), then refined around the best)."""

    normal: tuple[float, float]
    offset: float
    score: SplitScore
    n_directions: int


def _clip_triangles(tri: np.ndarray, g: np.ndarray) -> np.ndarray:
    """The parts of triangles [n, 3, 2] where the affine values g [n, 3] at their corners are > 0,
    as triangles [m, 3, 2] (a triangle cut by a line leaves a triangle or a quadrilateral)."""
    inside = g > 0
    k = inside.sum(1)
    out = [tri[k == 3]]
    for n_in in (1, 2):
        sel = k == n_in
        if not sel.any():
            continue
        t, gv, ins = tri[sel], g[sel], inside[sel]
        # rotate corners so the odd one out (the lone inside / lone outside corner) comes first
        lone = np.argmax(ins if n_in == 1 else ~ins, axis=1)
        idx = (lone[:, None] + np.arange(3)[None, :]) % 3
        t = np.take_along_axis(t, idx[:, :, None], 1)
        gv = np.take_along_axis(gv, idx, 1)
        p0, p1, p2 = t[:, 0], t[:, 1], t[:, 2]
        x01 = p0 + (gv[:, 0] / (gv[:, 0] - gv[:, 1]))[:, None] * (p1 - p0)
        x02 = p0 + (gv[:, 0] / (gv[:, 0] - gv[:, 2]))[:, None] * (p2 - p0)
        if n_in == 1:
            out.append(np.stack([p0, x01, x02], 1))
        else:  # quadrilateral x01, p1, p2, x02
            out.append(np.stack([x01, p1, p2], 1))
            out.append(np.stack([x01, p2, x02], 1))
    return np.concatenate(out) if out else np.zeros((0, 3, 2))


def class_one_triangles(region_map: RegionMap, *, output: int | None = None) -> np.ndarray:
    """The region decided class 1, exactly, as triangles [m, 3, 2] (faces fan-triangulated, then
    clipped by each face's affine decision)."""
    a, b = decision_function(region_map, output)
    fv, off = region_map.face_vertices, region_map.face_offsets
    counts = np.diff(off)
    face = np.repeat(np.arange(region_map.n_regions), counts - 2)
    first = np.repeat(off[:-1], counts - 2)
    within = np.arange(face.shape[0]) - np.repeat(np.cumsum(counts - 2) - (counts - 2), counts - 2)
    X = region_map.vertices
    tri = np.stack([X[fv[first]], X[fv[first + within + 1]], X[fv[first + within + 2]]], 1)
    g = np.einsum("nkj,nj->nk", tri, a[face]) + b[face][:, None]
    return _clip_triangles(tri, g)


def _area_below(tri: np.ndarray, area: np.ndarray, u: np.ndarray):
    """For direction u, the function q -> area of the triangles within {x : u . x <= q}, as
    (breakpoints, area, chord length, slope) at each breakpoint: exact and piecewise quadratic,
    because a triangle's chord length along u is piecewise linear in q."""
    h = np.sort(tri @ u, axis=1)
    h0, h1, h2 = h[:, 0], h[:, 1], h[:, 2]
    span = h2 - h0
    keep = (span > 0) & (area > 0)
    h0, h1, h2, span, T = h0[keep], h1[keep], h2[keep], span[keep], area[keep]
    peak = 2 * T / span  # the longest chord, at h1
    tol = 1e-12 * span
    lo, hi = (h1 - h0) > tol, (h2 - h1) > tol
    s1 = np.where(lo, peak / np.where(lo, h1 - h0, 1), 0.0)
    s2 = np.where(hi, peak / np.where(hi, h2 - h1, 1), 0.0)
    # events (position, jump of the chord length, change of its slope)
    pos = np.concatenate([h0, h1, h2])
    jump = np.concatenate([np.where(lo, 0.0, peak), np.zeros_like(h1), np.where(hi, 0.0, -peak)])
    dslope = np.concatenate([s1 * lo - s2 * ~lo, -(s1 + s2) * (lo & hi), s2 * hi - s1 * ~hi])
    order = np.argsort(pos, kind="stable")
    pos, jump, dslope = pos[order], jump[order], dslope[order]
    slope = np.cumsum(dslope)
    delta = np.diff(pos, append=pos[-1] if pos.size else 0.0)
    grow = slope * delta  # chord length gained on [p_k, p_k+1)
    chord = np.cumsum(jump) + np.concatenate([[0.0], np.cumsum(grow[:-1])]) if pos.size else pos
    piece = chord * delta + 0.5 * slope * delta**2
    below = np.concatenate([[0.0], np.cumsum(piece[:-1])]) if pos.size else pos
    return pos, below, chord, slope


def _evaluate(fn, q: np.ndarray) -> np.ndarray:
    pos, below, chord, slope = fn
    if pos.size == 0:
        return np.zeros_like(q)
    k = np.searchsorted(pos, q, side="right") - 1
    kk = np.clip(k, 0, None)
    d = q - pos[kk]
    val = below[kk] + chord[kk] * d + 0.5 * slope[kk] * d**2
    return np.where(k < 0, 0.0, val)


def _kappa(a, p, q):
    """Cohen's kappa maximised over the swap, vectorised over fractions (a = side and class 1)."""
    po = 1 - p - q + 2 * a
    pe = p * q + (1 - p) * (1 - q)
    with np.errstate(divide="ignore", invalid="ignore"):
        k1 = np.where(1 - pe > 1e-15, (po - pe) / (1 - pe), 0.0)
        k2 = np.where(pe > 1e-15, (pe - po) / pe, 0.0)
    return np.maximum(k1, k2)


def _best_offset(pos_tris, pos_area, box_tris, box_area, total, q, u, n_between):
    f_pos = _area_below(pos_tris, pos_area, u)
    f_box = _area_below(box_tris, box_area, u)
    bp = np.unique(np.concatenate([f_pos[0], f_box[0]]))
    if bp.size < 2:
        return -np.inf, 0.0
    frac = np.arange(n_between + 1) / (n_between + 1)
    cand = (bp[:-1, None] + frac[None, :] * np.diff(bp)[:, None]).ravel()
    a = _evaluate(f_pos, cand) / total
    p = _evaluate(f_box, cand) / total
    k = _kappa(a, p, q)
    i = int(np.argmax(k))
    return float(k[i]), float(cand[i])


def best_straight_cut(
    region_map: RegionMap, *, output: int | None = None, n_directions: int = 360, n_between: int = 3,
    degenerate_below: float = DEGENERATE_BELOW,
) -> StraightCut:
    """The straight line through the box whose two sides best match the decision (largest kappa).

    Areas are exact (the class-1 region as triangles; the area below a line is piecewise quadratic
    in its offset). The search is not exhaustive: `n_directions` equally spaced directions, then
    40 directions refined around the best, and up to `n_directions` directions of the decision
    boundary's pieces; for each direction every breakpoint of the area
    functions and `n_between` offsets between neighbouring breakpoints. The directions of the
    decision boundary's pieces are tried too, so a straight decision is found exactly. Its kappa can only be
    below the true optimum, by the resolution of that search (tested against brute force).
    """
    n_directions = check_int(n_directions, "n_directions", minimum=4)
    n_between = check_int(n_between, "n_between", minimum=0)
    pos_tris = class_one_triangles(region_map, output=output)
    x0, x1, y0, y1 = region_map.box
    box_tris = np.array([[[x0, y0], [x1, y0], [x1, y1]], [[x0, y0], [x1, y1], [x0, y1]]], dtype=np.float64)
    tri_area = lambda t: 0.5 * np.abs(  # noqa: E731
        (t[:, 1, 0] - t[:, 0, 0]) * (t[:, 2, 1] - t[:, 0, 1]) - (t[:, 1, 1] - t[:, 0, 1]) * (t[:, 2, 0] - t[:, 0, 0])
    )
    pos_area, box_area = tri_area(pos_tris), tri_area(box_tris)
    total = float(box_area.sum())
    q = float(pos_area.sum()) / total

    def search(angles):
        best = (-np.inf, 0.0, 0.0)
        for th in angles:
            u = np.array([math.cos(th), math.sin(th)])
            k, off = _best_offset(pos_tris, pos_area, box_tris, box_area, total, q, u, n_between)
            if k > best[0]:
                best = (k, off, th)
        return best

    step = math.pi / n_directions
    k, off, th = search(np.arange(n_directions) * step)
    # the directions of the decision boundary itself (one per face it crosses): where the decision
    # is a straight line, the best cut is that line, and a grid of directions would only approach it
    a, _ = decision_function(region_map, output)
    pos_face = positive_class_area(region_map, output=output)
    crossed = (pos_face > 0) & (pos_face < region_map.areas) & (np.hypot(a[:, 0], a[:, 1]) > 0)
    boundary = np.unique(np.round(np.mod(np.arctan2(a[crossed, 1], a[crossed, 0]), math.pi), 9))
    if boundary.size > n_directions:  # many crossed faces: a seeded sample keeps the cost bounded
        boundary = np.random.default_rng(0).choice(boundary, n_directions, replace=False)
    k, off, th = max((k, off, th), search(boundary))
    k, off, th = max((k, off, th), search(th + np.linspace(-step, step, 41)))
    u = np.array([math.cos(th), math.sin(th)])
    f_pos, f_box = _area_below(pos_tris, pos_area, u), _area_below(box_tris, box_area, u)
    both = float(_evaluate(f_pos, np.array([off]))[0])
    side = float(_evaluate(f_box, np.array([off]))[0])
    score = score_areas(both, side, float(pos_area.sum()), total, degenerate_below=degenerate_below)
    return StraightCut((float(u[0]), float(u[1])), off, score, n_directions)
