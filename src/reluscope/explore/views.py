"""JSON-ready views of the explorer's exact results: frames, segments and regions.

Plain conversions from the library's results (a `RegionMap`, a `PathFolding`) into the numbers the
page draws. Colours are the ones `reluscope.viz` uses (a hash of each face's pattern), so a region
keeps its colour across training and between the explorer and a saved figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..folding import PathFolding
from ..hull import NearestConvexHull
from ..regions import dual_graph
from ..viz.regions import decision_segments, face_colours

if TYPE_CHECKING:
    from .._types import ArrayLike
    from ..regions import RegionMap

__all__ = ["HullView", "hull_view", "as_point", "Frame", "SegmentView", "frame_from_map", "segment_view", "region_info", "face_colours"]


def as_point(p: ArrayLike, name: str) -> torch.Tensor:
    """A clicked point [x, y] as float64; anything else (wrong length, NaN, 1e300) is refused."""
    try:
        t = torch.as_tensor([float(p[0]), float(p[1])], dtype=torch.float64)
        ok = len(p) == 2
    except (TypeError, ValueError, IndexError, KeyError):
        ok = False
    if not ok or not bool(torch.isfinite(t).all()) or bool(t.abs().max() > 1e6):
        raise ValueError(f"{name}: expected [x, y], two finite numbers of modest size, got {p!r}")
    return t


def _hex(rgb: np.ndarray) -> list[str]:
    ints = np.clip(np.round(rgb * 255), 0, 255).astype(int)
    return [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in ints]


def _flat(a: np.ndarray, digits: int = 6) -> list[float]:
    return np.round(np.asarray(a, dtype=np.float64).ravel(), digits).tolist()


class _View:
    """A view sent to the page as JSON: its fields are already lists, numbers and dicts."""

    def to_dict(self) -> dict:
        """The fields as a dict, for the JSON response."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class Frame(_View):
    """One redraw: the exact region map of the network at `step`, with its charts.

    `polygons` are the faces' vertices flattened (x0, y0, x1, y1, ...), face f spanning
    `offsets[f]:offsets[f+1]` vertex pairs; `decision` holds boundary segments (4 numbers each);
    `dual` joins centroids of faces sharing an edge (4 numbers each).
    """

    version: int
    step: int
    n_regions: int
    polygons: list
    offsets: list
    colours: list
    decision: list
    dual: list
    fiedler_side: list | None
    history: dict
    map_ms: float
    map_every: int
    remapped: bool


def frame_from_map(rmap: RegionMap, *, version: int, step: int, history: dict, fiedler_side: ArrayLike | None, map_ms: float, map_every: int, remapped: bool) -> Frame:
    cent = rmap.centroids
    pairs = dual_graph(rmap, weight="unit").pairs
    dual = np.concatenate([cent[pairs[:, 0]], cent[pairs[:, 1]]], 1)
    verts = rmap.vertices[rmap.face_vertices]
    return Frame(
        version=version, step=step, n_regions=rmap.n_regions,
        polygons=_flat(verts), offsets=rmap.face_offsets.tolist(), colours=_hex(face_colours(rmap)),
        decision=_flat(decision_segments(rmap)), dual=_flat(dual),
        fiedler_side=None if fiedler_side is None else np.asarray(fiedler_side, dtype=int).tolist(),
        history=history, map_ms=round(float(map_ms), 3), map_every=int(map_every), remapped=bool(remapped),
    )


@dataclass(frozen=True)
class SegmentView(_View):
    """The exact traversal of one clicked segment: where its pieces begin and end, the Hamming
    walk (distance of each piece's pattern to the first) and the running chi, ending at `chi`."""

    p0: list
    p1: list
    t: list
    n_pieces: int
    distance_to_start: list
    running_chi: list
    chi: float
    exact: bool


def segment_view(fold: PathFolding, p0: ArrayLike, p1: ArrayLike) -> SegmentView:
    prof = fold.profile()
    return SegmentView(
        p0=[float(v) for v in p0], p1=[float(v) for v in p1], t=_flat(fold.t, 9),
        n_pieces=fold.n_patterns, distance_to_start=prof.distance_to_start.tolist(),
        running_chi=_flat(prof.running_chi), chi=float(fold.chi), exact=bool(fold.exact),
    )


def face_at(rmap: RegionMap, point: np.ndarray) -> int:
    """Index of the face containing `point` (-1 outside the box); a point on an edge gets the
    face of lower index."""
    fv, off = rmap.face_vertices, rmap.face_offsets
    p = rmap.vertices[fv]
    nxt = np.arange(fv.shape[0]) + 1
    nxt[off[1:] - 1] = off[:-1]
    q = rmap.vertices[fv[nxt]]
    cross = (q[:, 0] - p[:, 0]) * (point[1] - p[:, 1]) - (q[:, 1] - p[:, 1]) * (point[0] - p[:, 0])
    scale = np.abs(q - p).max(1) * (np.abs(point - p).max(1) + 1e-300)
    inside = np.minimum.reduceat(cross >= -1e-12 * scale, off[:-1]).astype(bool)
    hits = np.nonzero(inside)[0]
    return int(hits[0]) if hits.size else -1


def region_info(rmap: RegionMap, point: np.ndarray) -> dict:
    """Pattern (as a bit string per layer-agnostic unit order), area and neighbours of the face
    under `point`, or {"face": -1} outside the box."""
    f = face_at(rmap, point)
    if f < 0:
        return {"face": -1}
    ef = rmap.edge_faces
    touching = ef[(ef == f).any(1)]
    neighbours = sorted({int(g) for g in touching.ravel() if g != f and g >= 0})
    return {
        "face": f,
        "pattern": "".join("1" if b else "0" for b in rmap.patterns[f]),
        "area": float(rmap.areas[f]),
        "neighbours": neighbours,
    }


@dataclass(frozen=True)
class HullView(_View):
    """Per class, the 2-D convex hull (closed polygon, flattened) of the training points' layer
    activations projected on their top-2 principal directions, the projected points, and the
    nearest-convex-hull test accuracy computed on the full (unprojected) layer."""

    layer: int
    hulls: list
    points: list
    labels: list
    nch_test_accuracy: float
    explained_variance: float


def hull_view(h_train: np.ndarray, y_train: np.ndarray, h_test: np.ndarray, y_test: np.ndarray, layer: int) -> HullView:
    from scipy.spatial import ConvexHull, QhullError

    centred = h_train - h_train.mean(0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    proj = centred @ vt[:2].T if vt.shape[0] >= 2 else np.c_[centred @ vt[:1].T, np.zeros(len(centred))]
    total = float((s**2).sum())
    hulls = []
    for c in np.unique(y_train):
        pts = proj[y_train == c]
        try:
            ring = pts[ConvexHull(pts).vertices] if len(pts) >= 3 else pts
        except QhullError:  # all points on a line (dead layer): draw the points themselves
            ring = pts
        hulls.append(_flat(ring))
    acc = NearestConvexHull().fit(h_train, y_train).score(h_test, y_test)
    return HullView(layer, hulls, _flat(proj), y_train.tolist(), float(acc),
                    float((s[:2] ** 2).sum() / total) if total > 0 else 1.0)
