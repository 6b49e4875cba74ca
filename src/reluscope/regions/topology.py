"""Cell counts and persistent homology (over Z/2) of filtrations of a region map's complex.

The complex of a box is contractible (beta_0 = 1, beta_1 = 0), so topological signals must come
from filtrations of it (docs/methods.md, section 3):

* `random_filtration`: faces in a random order, each entering with its not-yet-present edges and
  vertices; the value of a cell is the rank of the face that brought it (normalised to (0, 1]).
  Summaries are averaged over several orders (`random_summary`).
* `sublevel_filtration`: the lower-star filtration of one network output: a vertex enters at its
  output value, an edge or face at the largest value of its vertices (the output is affine on a
  face, so that is its maximum there).

Persistence comes from our own boundary-matrix reduction (`persistence_pairs`): columns are Python
integers used as Z/2 bit sets (adding columns is one XOR), with the clearing optimisation
(dimension 2 first; a cell that is a pivot of a reduced column is never reduced). The tests check
it against gudhi.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np

from .._checks import check_int
from ..results import Result, frame

if TYPE_CHECKING:
    from .._types import ArrayLike
    from .partition import RegionMap

__all__ = [
    "CellCounts", "RandomSummary", "SublevelSummary", "Filtration", "Persistence", "cell_counts", "face_edges", "random_filtration",
    "sublevel_filtration", "persistence_pairs", "persistence", "betti_curve", "random_summary",
    "sublevel_summary",
]


@dataclass(frozen=True)
class CellCounts(Result):
    """Numbers of vertices, edges and faces, and the Euler characteristic V - E + F (1 for a box)."""

    vertices: int
    edges: int
    faces: int
    euler: int


def cell_counts(region_map: RegionMap) -> CellCounts:
    """The cell counts of the region map's complex (`CellCounts`)."""
    V, E, F = region_map.n_vertices, region_map.n_edges, region_map.n_regions
    return CellCounts(V, E, F, V - E + F)


def face_edges(region_map: RegionMap) -> tuple[np.ndarray, np.ndarray]:
    """(edge ids grouped by face, offsets [F + 1]): the boundary edges of every face."""
    ef = region_map.edge_faces
    f = np.concatenate([ef[:, 0], ef[:, 1]])
    e = np.concatenate([np.arange(ef.shape[0]), np.arange(ef.shape[0])])
    keep = f >= 0
    f, e = f[keep], e[keep]
    order = np.argsort(f, kind="stable")
    off = np.zeros(region_map.n_regions + 1, dtype=np.int64)
    np.cumsum(np.bincount(f, minlength=region_map.n_regions), out=off[1:])
    return e[order], off


@dataclass(frozen=True, eq=False)
class Filtration(Result):
    """Cells in filtration order: `dims` int [N], `values` float [N] (non-decreasing),
    `boundary` (list of int arrays, positions of each cell's faces, all earlier), and `source`
    (the cell's id in the region map within its dimension)."""

    dims: np.ndarray
    values: np.ndarray
    boundary: list
    source: np.ndarray


def _build(region_map, v_time, e_time, f_time, v_key=None, e_key=None, f_key=None) -> Filtration:
    """Order all cells by (time, dim, key) and express boundaries in positions."""
    V, E, F = region_map.n_vertices, region_map.n_edges, region_map.n_regions
    dims = np.concatenate([np.zeros(V, int), np.ones(E, int), np.full(F, 2)])
    times = np.concatenate([v_time, e_time, f_time]).astype(np.float64)
    keys = np.concatenate([
        v_key if v_key is not None else np.arange(V),
        e_key if e_key is not None else np.arange(E),
        f_key if f_key is not None else np.arange(F),
    ])
    src = np.concatenate([np.arange(V), np.arange(E), np.arange(F)])
    order = np.lexsort((keys, dims, times))
    pos = np.empty(V + E + F, dtype=np.int64)
    pos[order] = np.arange(V + E + F)
    fe, off = face_edges(region_map)
    edges = region_map.edges
    boundary = []
    for cell in order:
        d, s = dims[cell], src[cell]
        if d == 0:
            boundary.append(np.zeros(0, np.int64))
        elif d == 1:
            boundary.append(pos[edges[s]])
        else:
            boundary.append(pos[V + fe[off[s]:off[s + 1]]])
    return Filtration(dims[order], times[order], boundary, src[order])


def random_filtration(region_map: RegionMap, *, seed: int = 0) -> Filtration:
    """Faces in a random order, each with its missing edges and vertices (values in (0, 1])."""
    F = region_map.n_regions
    rng = np.random.default_rng(seed)
    rank = np.empty(F, dtype=np.int64)
    rank[rng.permutation(F)] = np.arange(F)
    ef = region_map.edge_faces
    big = np.iinfo(np.int64).max
    r0 = np.where(ef[:, 0] >= 0, rank[ef[:, 0]], big)
    r1 = np.where(ef[:, 1] >= 0, rank[ef[:, 1]], big)
    e_rank = np.minimum(r0, r1)
    v_rank = np.full(region_map.n_vertices, big)
    np.minimum.at(v_rank, region_map.edges[:, 0], e_rank)
    np.minimum.at(v_rank, region_map.edges[:, 1], e_rank)
    scale = 1.0 / F
    return _build(region_map, (v_rank + 1) * scale, (e_rank + 1) * scale, (rank + 1) * scale)


def vertex_outputs(region_map: RegionMap) -> np.ndarray:
    """Network outputs [V, out] at the vertices (from any face containing each vertex)."""
    fv, off = region_map.face_vertices, region_map.face_offsets
    face_of = np.repeat(np.arange(region_map.n_regions), np.diff(off))
    owner = np.empty(region_map.n_vertices, dtype=np.int64)
    owner[fv] = face_of
    return region_map.outputs_at(region_map.vertices, owner)


def sublevel_filtration(region_map: RegionMap, *, output: int = 0) -> Filtration:
    """Lower-star filtration of network output `output` (values: output values)."""
    out = region_map.A.shape[1]
    if not 0 <= output < out:
        raise ValueError(f"output: expected an index in [0, {out}), got {output}")
    f = vertex_outputs(region_map)[:, output]
    e_val = np.maximum(f[region_map.edges[:, 0]], f[region_map.edges[:, 1]])
    fv, off = region_map.face_vertices, region_map.face_offsets
    face_val = np.maximum.reduceat(f[fv], off[:-1]) if fv.shape[0] else np.zeros(0)
    return _build(region_map, f, e_val, face_val)


def persistence_pairs(boundary: list, dims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Z/2 reduction of a filtered complex's boundary matrix.

    `boundary[j]`: positions (all < j) of cell j's faces; `dims[j]`: its dimension.
    Returns (pairs int [P, 2] of (birth position, death position), essential positions).
    """
    n = len(boundary)
    dims = np.asarray(dims)
    pivot_col: dict[int, int] = {}  # low row -> reduced column (as a bit set)
    paired = np.zeros(n, dtype=bool)
    pairs = []
    for d in sorted(set(dims.tolist()), reverse=True):
        if d == 0:
            continue
        for j in np.nonzero(dims == d)[0].tolist():
            if paired[j]:  # clearing: j is the birth of a pair found in dimension d + 1
                continue
            col = 0
            for i in boundary[j].tolist():
                col ^= 1 << i
            while col:
                low = col.bit_length() - 1
                other = pivot_col.get(low)
                if other is None:
                    pivot_col[low] = col
                    pairs.append((low, j))
                    paired[low] = paired[j] = True
                    break
                col ^= other
    essential = np.nonzero(~paired)[0]
    return np.array(pairs, dtype=np.int64).reshape(-1, 2), essential


@dataclass(frozen=True, eq=False)
class Persistence(Result):
    """Persistence diagram: `dims` [P], `births` [P], `deaths` [P] (inf for essential classes)."""

    dims: np.ndarray
    births: np.ndarray
    deaths: np.ndarray

    def diagram(self, dim: int, *, finite_positive: bool = True) -> np.ndarray:
        """[k, 2] (birth, death) of dimension `dim`; by default only finite positive lifetimes."""
        keep = self.dims == dim
        if finite_positive:
            keep &= np.isfinite(self.deaths) & (self.deaths > self.births)
        return np.stack([self.births[keep], self.deaths[keep]], 1)

    def lifetimes(self, dim: int) -> np.ndarray:
        """[k] death - birth of the finite classes of positive lifetime in dimension `dim` (the
        pairs `diagram(dim)` keeps); their sum is the total persistence the summaries report."""
        dg = self.diagram(dim)
        return dg[:, 1] - dg[:, 0]

    def to_frame(self):
        """pandas.DataFrame with columns dim, birth and death, one row per pair (pandas is optional)."""
        return frame({"dim": self.dims, "birth": self.births, "death": self.deaths}, "Persistence")


def persistence(filtration: Filtration) -> Persistence:
    """The persistence diagram of a filtration (all dimensions)."""
    pairs, ess = persistence_pairs(filtration.boundary, filtration.dims)
    v = filtration.values
    dims = np.concatenate([filtration.dims[pairs[:, 0]], filtration.dims[ess]])
    births = np.concatenate([v[pairs[:, 0]], v[ess]])
    deaths = np.concatenate([v[pairs[:, 1]], np.full(ess.shape[0], np.inf)])
    return Persistence(dims, births, deaths)


def betti_curve(p: Persistence, dim: int, ts: ArrayLike) -> np.ndarray:
    """beta_dim at each filtration value t in `ts` (classes with birth <= t < death)."""
    ts = np.asarray(ts, dtype=np.float64)
    keep = p.dims == dim
    b, d = p.births[keep], p.deaths[keep]
    return ((b[None, :] <= ts[:, None]) & (ts[:, None] < d[None, :])).sum(1)


class _PerFace(property):
    """`<name>_per_face`: the field `name` divided by `faces`; `_PerFaceRow.as_row` lists every one
    a class declares, in order, so each ratio is declared once."""

    def __init__(self, name: str):
        super().__init__(lambda self: getattr(self, name) / self.faces, doc=f"`{name}` divided by `faces`.")
        self.field = name


class _PerFaceRow:
    """The topology summaries' flat row: scalar fields but `faces`, then the `_PerFace` ratios."""

    def as_row(self) -> dict:
        """The scalar fields and the per-face ratios, flat."""
        row = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "faces" and np.ndim(getattr(self, f.name)) == 0}
        ratios = [attr.field for attr in vars(type(self)).values() if isinstance(attr, _PerFace)]
        return {**row, **{f"{name}_per_face": getattr(self, f"{name}_per_face") for name in ratios}}


@dataclass(frozen=True, eq=False)
class RandomSummary(_PerFaceRow, Result):
    """Betti curves of random filtrations, averaged over `n_orders` orders.

    `t` (fraction of faces added), mean `beta0` and `beta1` curves; the means over orders of the
    largest beta_0 and beta_1 and of the total persistence of finite classes in dimensions 0 and 1.
    A random order of F faces makes beta_1 grow with F (holes open wherever a face is still
    missing), so the `*_per_face` fields divide by `faces`: they tell a change of shape from a
    change of size.
    """

    t: np.ndarray
    beta0: np.ndarray
    beta1: np.ndarray
    max_beta0: float
    max_beta1: float
    total_persistence0: float
    total_persistence1: float
    faces: int

    max_beta0_per_face = _PerFace("max_beta0")
    max_beta1_per_face = _PerFace("max_beta1")


def random_summary(region_map: RegionMap, *, n_orders: int = 4, seed: int = 0, n_steps: int = 50) -> RandomSummary:
    """Betti curves of `n_orders` random filtrations, averaged (`RandomSummary`)."""
    n_orders, n_steps = check_int(n_orders, "n_orders"), check_int(n_steps, "n_steps")
    ts = np.linspace(0, 1, n_steps + 1)[1:]
    b0, b1, mx1, tp0, tp1 = [], [], [], [], []
    for k in range(n_orders):
        p = persistence(random_filtration(region_map, seed=seed + k))
        c0, c1 = betti_curve(p, 0, ts), betti_curve(p, 1, ts)
        b0.append(c0)
        b1.append(c1)
        mx1.append(c1.max() if c1.size else 0)
        for dim, acc in ((0, tp0), (1, tp1)):
            acc.append(float(p.lifetimes(dim).sum()))
    return RandomSummary(
        t=ts, beta0=np.mean(b0, 0), beta1=np.mean(b1, 0), max_beta0=float(np.mean([c.max() for c in b0])),
        max_beta1=float(np.mean(mx1)), total_persistence0=float(np.mean(tp0)), total_persistence1=float(np.mean(tp1)),
        faces=region_map.n_regions,
    )


@dataclass(frozen=True)
class SublevelSummary(_PerFaceRow, Result):
    """The sublevel filtration of one output: per dimension 0 and 1, the number of finite pairs of
    positive lifetime, their total and largest lifetime; and the face count, for per-face ratios."""

    n_pairs0: int
    n_pairs1: int
    total_persistence0: float
    total_persistence1: float
    max_persistence0: float
    max_persistence1: float
    faces: int

    n_pairs0_per_face = _PerFace("n_pairs0")
    n_pairs1_per_face = _PerFace("n_pairs1")


def sublevel_summary(region_map: RegionMap, *, output: int = 0) -> SublevelSummary:
    """Counts and persistence of the sublevel filtration of one output (`SublevelSummary`)."""
    p = persistence(sublevel_filtration(region_map, output=output))
    out = {}
    for dim in (0, 1):
        life = p.lifetimes(dim)
        out[f"n_pairs{dim}"] = int(life.shape[0])
        out[f"total_persistence{dim}"] = float(life.sum())
        out[f"max_persistence{dim}"] = float(life.max()) if life.size else 0.0
    return SublevelSummary(**out, faces=region_map.n_regions)
