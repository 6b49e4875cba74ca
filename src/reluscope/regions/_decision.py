"""The network's binary decision on a region map: the affine decision function of each face, the
exact area of each face decided class 1, and the decision boundary's segments."""

from __future__ import annotations

import numpy as np

from ._complex import polygon_edges

__all__ = ["decision_function", "positive_class_area", "decision_segments"]


def decision_function(region_map, output: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(a [F, 2], b [F]): class 1 where a[f] . x + b[f] > 0 on face f. One output: its sign; two:
    output 1 - output 0; else `output=k` (the sign of output k): the comparison of one logit
    with the best other one is not affine, so it is refused."""
    A = region_map.A
    if output is not None and (not isinstance(output, int) or isinstance(output, bool) or not 0 <= output < A.shape[1]):
        raise ValueError(f"output: expected an index in [0, {A.shape[1]}), got {output!r}")
    g = _binary_decision(region_map, output)
    if g is None:
        raise ValueError(
            f"region_map: a binary decision needs 1 or 2 outputs, got {A.shape[1]}; pass "
            "output=k to use the sign of output k"
        )
    return g


def _binary_decision(region_map, output: int | None):
    """(a [F, 2], b [F]) of the binary decision function g = a.x + b on each face, or None for
    several outputs without `output`. One output: g = output; two: output 1 - output 0."""
    A, c = region_map.A, region_map.c
    if output is not None:
        return A[:, output], c[:, output]
    if A.shape[1] == 1:
        return A[:, 0], c[:, 0]
    if A.shape[1] == 2:
        return A[:, 1] - A[:, 0], c[:, 1] - c[:, 0]
    return None


def _edge_crossings(region_map, a, b):
    """The polygon walk with g's values at both ends of every face edge and where g = 0 on it.

    Coordinates are relative to each face's first vertex (`ref`): tiny faces far from the origin
    would otherwise lose their digits to cancellation. `x` is meaningful only where gp, gq differ in sign.
    """
    fv, off = region_map.face_vertices, region_map.face_offsets
    face_of, nxt = polygon_edges(fv, off)
    ref = region_map.vertices[fv[off[:-1]]][face_of]
    p, q = region_map.vertices[fv] - ref, region_map.vertices[fv[nxt]] - ref
    gp = np.einsum("ni,ni->n", a[face_of], p + ref) + b[face_of]
    gq = np.einsum("ni,ni->n", a[face_of], q + ref) + b[face_of]
    with np.errstate(invalid="ignore", divide="ignore"):
        t = gp / (gp - gq)
        x = p + t[:, None] * (q - p)
    return face_of, ref, p, q, gp, gq, x


def positive_class_area(region_map, *, output: int | None = None) -> np.ndarray:
    """Per face, the exact area where the network decides class 1 (float64 [F]).

    One output: class 1 where it is > 0; two outputs: where output 1 > output 0. (Other output
    counts: pass `output`, the index of the logit compared with the best other one is not affine,
    so it is refused.) The decision function is affine on each face, so the area is the face
    clipped by a half-plane.
    """
    g = decision_function(region_map, output)
    F = region_map.n_regions
    face_of, _, p, q, gp, gq, x = _edge_crossings(region_map, *g)
    # Shoelace over the clipped polygon {g > 0}: edges inside contribute p x q; an exit or entry
    # edge contributes with its crossing point; the closing chord joins the exit and entry points.
    cross = lambda u, v: u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]  # noqa: E731
    inside_p, inside_q = gp > 0, gq > 0
    contrib = np.zeros(face_of.shape[0])
    both = inside_p & inside_q
    contrib[both] = cross(p[both], q[both])
    ex = inside_p & ~inside_q
    contrib[ex] = cross(p[ex], x[ex])
    en = ~inside_p & inside_q
    contrib[en] = cross(x[en], q[en])
    exit_pt = np.zeros((F, 2))
    entry_pt = np.zeros((F, 2))
    exit_pt[face_of[ex]] = x[ex]
    entry_pt[face_of[en]] = x[en]
    area2 = np.bincount(face_of, contrib, F) + cross(exit_pt, entry_pt)
    return np.clip(area2 / 2, 0, region_map.areas)


def decision_segments(region_map, *, output: int | None = None) -> np.ndarray:
    """Segments [K, 2, 2]: the decision boundary g = 0 (see `positive_class_area`) in each face
    it crosses. Several outputs without `output`: the argmax boundaries are not one affine g per
    face, so none are returned (an empty [0, 2, 2])."""
    g = _binary_decision(region_map, output)
    if g is None:
        return np.zeros((0, 2, 2))
    face_of, ref, _, _, gp, gq, x = _edge_crossings(region_map, *g)
    cross = (gp > 0) != (gq > 0)
    fc, xc = face_of[cross], (x + ref)[cross]
    order = np.argsort(fc, kind="stable")
    fc, xc = fc[order], xc[order]
    if not fc.size:
        return np.zeros((0, 2, 2))
    first = np.nonzero(np.r_[True, fc[1:] != fc[:-1]])[0]  # a convex face is crossed twice
    first = first[(first + 1 < fc.size)]
    first = first[fc[first + 1] == fc[first]]
    return np.stack([xc[first], xc[first + 1]], 1)
