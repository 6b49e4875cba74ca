"""The dual graph of a region map and its Fiedler partition.

Dual graph: one node per face; by default an edge between faces that share a boundary edge of
positive length, weighted by the total shared length (`weights="length"`) or 1 (`"unit"`). The
authors' demo instead links faces whose patterns differ in exactly one bit (`adjacency="hamming"`),
adjacent or not; offered to compare.

Fiedler partition: the eigenvector of the second-smallest eigenvalue of L = D - W, cells split by
its sign. Our choices where the paper is silent: for a disconnected graph (possible only with
Hamming adjacency) lambda_2 = 0 and its eigenspace is spanned by component indicators; we return
the indicator of the largest component against the rest (centred), the partition any generic
vector of that eigenspace would give for two components. The sign of an eigenvector is arbitrary;
we fix it so the largest-|value| entry is positive, and every score is maximised over the swap.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from .._checks import as_enum
from ..results import Result
from ._complex import polygon_edges

__all__ = ["DualGraph", "FiedlerPartition", "FiedlerSolver", "dual_graph", "fiedler_partition", "fiedler_score", "positive_class_area", "decision_segments"]


@dataclass(frozen=True, eq=False)
class DualGraph(Result):
    """Undirected weighted graph on the faces: `pairs` int64 [M, 2] (i < j), `weights` float64 [M]."""

    n_nodes: int
    pairs: np.ndarray
    weights: np.ndarray

    def adjacency(self):
        from scipy import sparse

        i, j = self.pairs[:, 0], self.pairs[:, 1]
        W = sparse.coo_matrix(
            (np.concatenate([self.weights, self.weights]), (np.concatenate([i, j]), np.concatenate([j, i]))),
            shape=(self.n_nodes, self.n_nodes),
        )
        return W.tocsr()

    def laplacian(self):
        from scipy import sparse

        W = self.adjacency()
        return (sparse.diags(np.asarray(W.sum(1)).ravel()) - W).tocsr()


def _hamming_pairs(patterns: np.ndarray) -> np.ndarray:
    """All pairs of rows at Hamming distance exactly 1, by hashing each row with one bit flipped."""
    F, P = patterns.shape
    if F < 2 or P == 0:
        return np.zeros((0, 2), dtype=np.int64)
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 2**62, size=P, dtype=np.int64)
    h = np.bitwise_xor.reduce(np.where(patterns, keys, 0), axis=1)
    order = np.argsort(h)
    hs = h[order]
    found = []
    for j in range(P):  # rows f with bit j flipped hash to h[f] ^ keys[j]
        target = h ^ keys[j]
        pos = np.searchsorted(hs, target)
        pos[pos == F] = 0
        hit = hs[pos] == target
        src, dst = np.nonzero(hit)[0], order[pos[hit]]
        keep = src < dst
        src, dst = src[keep], dst[keep]
        # confirm (hash collisions): the rows differ in bit j only
        diff = (patterns[src] != patterns[dst]).sum(1)
        ok = (diff == 1) & (patterns[src, j] != patterns[dst, j])
        found.append(np.stack([src[ok], dst[ok]], 1))
    return np.concatenate(found).astype(np.int64)


def dual_graph(region_map, *, weights: str = "length", adjacency: str = "edges") -> DualGraph:
    """The dual graph of `region_map` (see the module docstring for the options)."""
    if weights not in ("length", "unit"):
        raise ValueError(f"weights: expected 'length' or 'unit', got {weights!r}")
    if adjacency not in ("edges", "hamming"):
        raise ValueError(f"adjacency: expected 'edges' or 'hamming', got {adjacency!r}")
    F = region_map.n_regions
    if adjacency == "hamming":
        pairs = _hamming_pairs(region_map.patterns)
        if weights == "unit":
            return DualGraph(F, pairs, np.ones(pairs.shape[0]))
        # shared boundary length where the faces touch, 0 otherwise: drop those pairs
        geo = dual_graph(region_map, weights="length")
        lookup = dict(zip(map(tuple, geo.pairs.tolist()), geo.weights.tolist()))
        w = np.array([lookup.get(tuple(p), 0.0) for p in pairs.tolist()])
        return DualGraph(F, pairs[w > 0], w[w > 0])
    ef = region_map.edge_faces
    length = region_map.edge_lengths
    inner = (ef >= 0).all(1) & (length > 0)
    i, j = ef[inner].min(1), ef[inner].max(1)
    key = i * F + j
    uniq, inv = np.unique(key, return_inverse=True)
    total = np.bincount(inv, length[inner], uniq.shape[0])
    pairs = np.stack([uniq // F, uniq % F], 1).astype(np.int64)
    return DualGraph(F, pairs, total if weights == "length" else np.ones(uniq.shape[0]))


class FiedlerSolver(str, enum.Enum):
    """How to get the Fiedler vector.

    AUTO (default): DENSE up to 400 nodes (exact, fast enough), SHIFT_INVERT above. DENSE:
    numpy eigh on the full Laplacian, O(n^3), the reference. SHIFT_INVERT: scipy eigsh around a
    small negative shift (L - sigma I is positive definite, so the sparse factorisation is stable);
    planar dual graphs factor with little fill, which is why it won over LOBPCG, whose convergence
    on these poorly conditioned Laplacians needs many iterations.
    """

    AUTO = "auto"
    DENSE = "dense"
    SHIFT_INVERT = "shift-invert"


def _fiedler_connected(L, solver: FiedlerSolver, normalized: bool = False) -> tuple[float, np.ndarray]:
    n = L.shape[0]
    if normalized:  # L v = lambda D v  <=>  D^-1/2 L D^-1/2 u = lambda u, v = D^-1/2 u
        from scipy import sparse

        d = 1 / np.sqrt(L.diagonal())
        value, u = _fiedler_connected((sparse.diags(d) @ L @ sparse.diags(d)).tocsr(), solver)
        v = d * u
        return value, v / np.linalg.norm(v)
    if n == 1:
        return 0.0, np.zeros(1)
    if n == 2:
        return float(L[0, 0] - L[0, 1]), np.array([1.0, -1.0]) / np.sqrt(2)
    if solver is FiedlerSolver.DENSE or (solver is FiedlerSolver.AUTO and n <= 400):
        vals, vecs = np.linalg.eigh(L.toarray())
        return float(vals[1]), vecs[:, 1]
    from scipy.sparse.linalg import eigsh

    scale = float(L.diagonal().mean())
    vals, vecs = eigsh(L.tocsc(), k=2, sigma=-1e-3 * scale, which="LM", tol=1e-10)
    order = np.argsort(vals)
    return float(vals[order[1]]), vecs[:, order[1]]


@dataclass(frozen=True, eq=False)
class FiedlerPartition(Result):
    """`vector` [F] (the Fiedler vector), `side` bool [F] (vector > 0), `value` (lambda_2),
    `n_components` of the dual graph, and the graph itself."""

    vector: np.ndarray
    side: np.ndarray
    value: float
    n_components: int
    graph: DualGraph


def fiedler_partition(
    region_map, *, weights: str = "length", adjacency: str = "edges", normalized: bool = False,
    solver: FiedlerSolver | str = FiedlerSolver.AUTO,
) -> FiedlerPartition:
    """Split the faces of `region_map` by the sign of the dual graph's Fiedler vector.

    `normalized=True` uses the normalised-cut problem L v = lambda D v (Shi and Malik) instead of
    L v = lambda v; the plain Laplacian's cheapest cut often just cuts off a few sliver faces.
    """
    from scipy.sparse.csgraph import connected_components

    solver = as_enum(solver, FiedlerSolver, "solver")
    g = dual_graph(region_map, weights=weights, adjacency=adjacency)
    L = g.laplacian()
    n_comp, labels = connected_components(L, directed=False)
    if n_comp > 1:
        big = np.argmax(np.bincount(labels))
        ind = (labels == big).astype(np.float64)
        vec = ind - ind.mean()
        vec /= np.linalg.norm(vec)
        value = 0.0
    else:
        value, vec = _fiedler_connected(L, solver, normalized)
    k = int(np.argmax(np.abs(vec)))
    if vec[k] < 0:
        vec = -vec
    return FiedlerPartition(vec, vec > 0, value, int(n_comp), g)


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
    g = _binary_decision(region_map, output)
    if g is None:
        raise ValueError(
            f"region_map: a binary decision needs 1 or 2 outputs, got {region_map.A.shape[1]}; pass "
            "output=k to use the sign of output k"
        )
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


def fiedler_score(region_map, partition: FiedlerPartition | None = None, *, output: int | None = None) -> dict:
    """How well the Fiedler sides match the network's binary decision (our choice of score).

    `agreement`: the fraction of the box's area where the Fiedler side equals the decided class,
    maximised over swapping the two sides (so 0.5 <= agreement <= 1). `iou`: intersection over
    union of the Fiedler side and the class-1 region, also maximised over the swap. Exact areas:
    each face's class-1 part is computed by clipping (`positive_class_area`).
    """
    if partition is None:
        partition = fiedler_partition(region_map)
    pos = positive_class_area(region_map, output=output)
    area = region_map.areas
    total = area.sum()
    side = partition.side
    agree = (pos[side].sum() + (area - pos)[~side].sum()) / total
    best = max(agree, 1 - agree)
    ious = []
    for s in (side, ~side):
        inter = pos[s].sum()
        union = area[s].sum() + pos.sum() - inter
        ious.append(inter / union if union > 0 else 0.0)
    return {"agreement": float(best), "iou": float(max(ious)), "positive_fraction": float(pos.sum() / total), "fiedler_value": float(partition.value)}
