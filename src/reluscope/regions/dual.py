"""The dual graph of a region map and its Fiedler partition, in the variants worth comparing.

Dual graph: one node per face, an edge between faces that share a boundary edge of positive
length, weighted by the total shared length or 1 (`GraphVariant`). The authors' demo builds a
different graph: the distinct patterns seen on a grid, linked when they differ in exactly one bit,
unit weights (`GraphVariant.AUTHORS_GRID`); faces the grid misses are not in it.

Fiedler partition: the eigenvector of the second-smallest eigenvalue of the Laplacian (plain,
symmetric-normalised or random-walk), nodes split by its sign. Our choices where the paper is
silent: for a disconnected graph (possible only for the grid graph) lambda_2 = 0 and its
eigenspace is spanned by component indicators; we return the indicator of the largest component
against the rest (centred), the partition any generic vector of that eigenspace would give for
two components. The sign of an eigenvector is arbitrary; we fix it so the largest-|value| entry is
positive, and every score is maximised over the swap (`reluscope.regions.split`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from .._checks import as_enum, check_int
from ..results import Result
from ._decision import decision_segments, positive_class_area
from .partition import pattern_keys
from .split import DEGENERATE_BELOW, SplitScore, StraightCut, best_straight_cut, score_areas, score_split

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .partition import RegionMap

__all__ = [
    "DualGraph", "FiedlerPartition", "FiedlerSolver", "GraphVariant", "VariantScore", "FiedlerComparison",
    "dual_graph", "fiedler_partition", "fiedler_score", "compare_variants", "positive_class_area",
    "decision_segments", "DEFAULT_GRID",
]

DEFAULT_GRID = 200  # points per side of the authors' grid
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


class EdgeWeight(str, enum.Enum):
    """Weight of a dual-graph edge. LENGTH: the total length of the boundary the two faces share
    (the natural reading of the paper's "weighted" partition); UNIT: 1 (the authors' demo)."""

    LENGTH = "length"
    UNIT = "unit"


def dual_graph(region_map: RegionMap, *, weight: EdgeWeight | str = EdgeWeight.LENGTH) -> DualGraph:
    """The dual graph of `region_map`: faces sharing a boundary edge of positive length."""
    weight = as_enum(weight, EdgeWeight, "weight")
    F = region_map.n_regions
    ef = region_map.edge_faces
    length = region_map.edge_lengths
    inner = (ef >= 0).all(1) & (length > 0)
    i, j = ef[inner].min(1), ef[inner].max(1)
    key = i * F + j
    uniq, inv = np.unique(key, return_inverse=True)
    total = np.bincount(inv, length[inner], uniq.shape[0])
    pairs = np.stack([uniq // F, uniq % F], 1).astype(np.int64)
    return DualGraph(F, pairs, total if weight is EdgeWeight.LENGTH else np.ones(uniq.shape[0]))


class GraphVariant(str, enum.Enum):
    """Which graph and Laplacian the Fiedler partition uses.

    Exact complex (one node per face, neighbours share a boundary edge), edge weight x Laplacian:
    LENGTH / UNIT: L = D - W (ratio-cut relaxation); LENGTH_SYM / UNIT_SYM: D^-1/2 L D^-1/2;
    LENGTH_RW / UNIT_RW: D^-1 L (normalised cut, Shi and Malik). The symmetric and random-walk
    eigenvectors differ by the positive factor D^1/2, so their sign splits are the same; both are
    kept because they are the names people look for. AUTHORS_GRID: the authors' demo (distinct
    patterns on a grid of `grid` x `grid` cell centres, neighbours differ in one unit, unit
    weights, L = D - W), scored on the same grid points.

    Which wins where (measured; docs/methods.md, section 3). Plain L = D - W with length weights
    (LENGTH) cuts off a sliver once the complex has many small faces: on the sparse-parity plane
    (12,000-18,000 faces) its split was degenerate (smaller side < 5% of the area) at 6 of 13
    checkpoints and ended at kappa 0.00. The normalised Laplacians never were, and reached kappa
    0.83-0.85 at one checkpoint (0.41-0.45 at the end); unit weights did about as well as length
    weights there. The authors' grid graph (200 x 200) falls apart once the grid sees most faces:
    its one-bit graph is disconnected and the split is the largest component against the rest
    (degenerate at 9 of 13 checkpoints there, and at 4 of 5 on a moons net of 1,500 faces, where
    an earlier, longer run had shown it at 0.86-0.90 raw agreement at some checkpoints because the
    grid missed the small faces near the decision boundary). No variant beat the best straight
    cut of the box at
    any checkpoint. The default, LENGTH_RW, is the normalised cut on the exact complex: the
    standard fix for the sliver cuts of L = D - W, chosen on that ground and not on a score.
    """

    LENGTH_RW = "length-rw"
    LENGTH = "length"
    LENGTH_SYM = "length-sym"
    UNIT = "unit"
    UNIT_SYM = "unit-sym"
    UNIT_RW = "unit-rw"
    AUTHORS_GRID = "authors-grid"

    @property
    def weight(self) -> EdgeWeight:
        return EdgeWeight.UNIT if self.value.startswith(("unit", "authors")) else EdgeWeight.LENGTH

    @property
    def laplacian(self) -> str:
        return "sym" if self.value.endswith("-sym") else "rw" if self.value.endswith("-rw") else "plain"


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


def _smallest_two(L, solver: FiedlerSolver) -> tuple[float, np.ndarray]:
    n = L.shape[0]
    if solver is FiedlerSolver.DENSE or (solver is FiedlerSolver.AUTO and n <= 400):
        vals, vecs = np.linalg.eigh(L.toarray())
        return float(vals[1]), vecs[:, 1]
    from scipy.sparse.linalg import eigsh

    scale = float(L.diagonal().mean())
    vals, vecs = eigsh(L.tocsc(), k=2, sigma=-1e-3 * scale, which="LM", tol=1e-10)
    order = np.argsort(vals)
    return float(vals[order[1]]), vecs[:, order[1]]


def _fiedler_connected(L, solver: FiedlerSolver, laplacian: str = "plain") -> tuple[float, np.ndarray]:
    n = L.shape[0]
    if n == 1:
        return 0.0, np.zeros(1)
    if laplacian != "plain":  # D^-1/2 L D^-1/2 u = lambda u; the random-walk vector is D^-1/2 u
        from scipy import sparse

        d = 1 / np.sqrt(L.diagonal())
        value, u = _smallest_two((sparse.diags(d) @ L @ sparse.diags(d)).tocsr(), solver) if n > 2 else (
            2.0, np.array([1.0, -1.0]) / np.sqrt(2))
        v = u if laplacian == "sym" else d * u
        return value, v / np.linalg.norm(v)
    if n == 2:
        return float(L[0, 0] - L[0, 1]), np.array([1.0, -1.0]) / np.sqrt(2)
    return _smallest_two(L, solver)


@dataclass(frozen=True, eq=False)
class FiedlerPartition(Result):
    """`vector` [N] (the Fiedler vector), `side` bool [N] (vector > 0), `value` (lambda_2),
    `n_components` of the graph, the graph itself and its `variant`. Nodes are the faces, except
    for AUTHORS_GRID: there they are the distinct grid patterns (`node_patterns`), `grid_node`
    gives the node of each of the `grid` x `grid` cell centres (row-major, y outer), and
    `grid_positive` whether the network decides class 1 there."""

    vector: np.ndarray
    side: np.ndarray
    value: float
    n_components: int
    graph: DualGraph
    variant: GraphVariant = GraphVariant.LENGTH_RW
    node_patterns: np.ndarray | None = None
    grid_node: np.ndarray | None = None
    grid_positive: np.ndarray | None = None
    grid: int | None = None


def _partition(graph: DualGraph, solver, laplacian):
    from scipy.sparse.csgraph import connected_components

    L = graph.laplacian()
    n_comp, labels = connected_components(L, directed=False)
    if n_comp > 1:
        big = np.argmax(np.bincount(labels))
        ind = (labels == big).astype(np.float64)
        vec = ind - ind.mean()
        vec /= np.linalg.norm(vec)
        value = 0.0
    else:
        value, vec = _fiedler_connected(L, solver, laplacian)
    k = int(np.argmax(np.abs(vec)))
    if vec[k] < 0:
        vec = -vec
    return vec, float(value), int(n_comp)


def _unique_rows(bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct rows, row index of each input row), by 64-bit pattern hashes (np.unique on
    bool rows sorts them as bytes, 10x slower); the rows sharing a hash are checked equal."""
    keys, first, node = np.unique(pattern_keys(bits), return_index=True, return_inverse=True)
    patterns = bits[first]
    if (patterns[node] != bits).any():  # a hash collision: fall back to the exact sort
        return np.unique(bits, axis=0, return_inverse=True)
    return patterns, node.ravel()


def grid_points(box: tuple[float, float, float, float], n: int) -> np.ndarray:
    """Centres [n * n, 2] of an n x n grid of equal cells over the box (row-major, y outer)."""
    x0, x1, y0, y1 = box
    s = x0 + (np.arange(n) + 0.5) * (x1 - x0) / n
    t = y0 + (np.arange(n) + 0.5) * (y1 - y0) / n
    return np.stack(np.meshgrid(s, t), -1).reshape(-1, 2)


def _grid_decision(region_map, n: int, output):
    net = region_map.network
    if net is None:
        raise ValueError("region_map: the authors' grid construction needs the network (region_map.network is None)")
    pts = torch.as_tensor(grid_points(region_map.box, n), dtype=torch.float64)
    x = pts if region_map.plane is None else region_map.plane.to_input(pts)
    net = net.to(dtype=torch.float64)
    with torch.no_grad():
        bits = net.bits(x).cpu().numpy()
        out = net(x).reshape(x.shape[0], -1).cpu().numpy()
    if output is not None:
        pos = out[:, output] > 0
    elif out.shape[1] == 1:
        pos = out[:, 0] > 0
    elif out.shape[1] == 2:
        pos = out[:, 1] > out[:, 0]
    else:
        raise ValueError(f"region_map: a binary decision needs 1 or 2 outputs, got {out.shape[1]}; pass output=k")
    return bits, pos


def fiedler_partition(
    region_map: RegionMap, *, variant: GraphVariant | str = GraphVariant.LENGTH_RW, solver: FiedlerSolver | str = FiedlerSolver.AUTO,
    grid: int = DEFAULT_GRID, output: int | None = None,
) -> FiedlerPartition:
    """Split the nodes of `variant`'s graph (`GraphVariant`) by the sign of its Fiedler vector.

    `grid` and `output` matter for AUTHORS_GRID only (grid points per side; which output decides).
    """
    variant = as_enum(variant, GraphVariant, "variant")
    solver = as_enum(solver, FiedlerSolver, "solver")
    if variant is GraphVariant.AUTHORS_GRID:
        grid = check_int(grid, "grid", minimum=2)
        bits, pos = _grid_decision(region_map, grid, output)
        patterns, node = _unique_rows(bits)
        pairs = _hamming_pairs(patterns)
        g = DualGraph(patterns.shape[0], pairs, np.ones(pairs.shape[0]))
        vec, value, n_comp = _partition(g, solver, "plain")
        return FiedlerPartition(vec, vec > 0, value, n_comp, g, variant, patterns, node.ravel(), pos, grid)
    g = dual_graph(region_map, weight=variant.weight)
    vec, value, n_comp = _partition(g, solver, variant.laplacian)
    return FiedlerPartition(vec, vec > 0, value, n_comp, g, variant)


def fiedler_score(
    region_map: RegionMap, partition: FiedlerPartition | None = None, *, output: int | None = None,
    degenerate_below: float = DEGENERATE_BELOW,
) -> SplitScore:
    """How well the Fiedler sides match the network's binary decision (`SplitScore`: agreement,
    Cohen's kappa, balanced agreement, IoU, each area-weighted and maximised over the side swap;
    the degenerate flag). Exact areas on the faces; for AUTHORS_GRID the grid's cells, each
    weighted by its area, with the decision at its centre."""
    if partition is None:
        partition = fiedler_partition(region_map)
    if partition.grid_node is not None:
        side = partition.side[partition.grid_node]
        pos = partition.grid_positive
        return score_areas(float((side & pos).sum()), float(side.sum()), float(pos.sum()), float(side.shape[0]),
                           degenerate_below=degenerate_below)
    return score_split(region_map, partition.side, output=output, degenerate_below=degenerate_below)


@dataclass(frozen=True)
class VariantScore(Result):
    """One graph variant's split: its `score`, `fiedler_value` (lambda_2), graph size."""

    variant: GraphVariant
    score: SplitScore
    fiedler_value: float
    n_nodes: int
    n_components: int


@dataclass(frozen=True)
class FiedlerComparison(Result):
    """Every requested variant's score, and the best straight cut of the box as the baseline."""

    variants: tuple[VariantScore, ...]
    straight_cut: StraightCut

    def __getitem__(self, variant) -> VariantScore:
        variant = GraphVariant(variant)
        for v in self.variants:
            if v.variant is variant:
                return v
        raise KeyError(variant)

    def as_row(self) -> dict:
        """Flat {name: number} for tables: `<variant>_<score>` and `straight_<score>`."""
        row = {}
        for v in self.variants:
            key = v.variant.value.replace("-", "_")
            row.update({f"{key}_{k}": getattr(v.score, k) for k in ("agreement", "kappa", "balanced", "smaller_side", "degenerate")})
            row[f"{key}_nodes"] = v.n_nodes
        row.update({f"straight_{k}": getattr(self.straight_cut.score, k) for k in ("agreement", "kappa", "balanced", "smaller_side")})
        return row


def compare_variants(
    region_map: RegionMap, *, variants: Iterable[GraphVariant | str] = tuple(GraphVariant), output: int | None = None, grid: int = DEFAULT_GRID,
    degenerate_below: float = DEGENERATE_BELOW, n_directions: int = 360,
) -> FiedlerComparison:
    """Score the Fiedler split of each graph variant and the best straight cut (the baseline)."""
    rows = []
    for v in variants:
        part = fiedler_partition(region_map, variant=v, grid=grid, output=output)
        rows.append(VariantScore(
            part.variant, fiedler_score(region_map, part, output=output, degenerate_below=degenerate_below),
            part.value, part.graph.n_nodes, part.n_components,
        ))
    cut = best_straight_cut(region_map, output=output, n_directions=n_directions, degenerate_below=degenerate_below)
    return FiedlerComparison(tuple(rows), cut)
