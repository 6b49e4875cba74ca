"""Exact linear regions of a 2-D slice: the polyhedral complex a piecewise-linear net cuts a box into.

Algorithm (`regions_2d`). The box starts as one convex face. Layer by layer, every unit's zero line
cuts every face it crosses, so after a layer each face has one pattern for that layer and the
network is affine on it. Three facts keep this fast and exact:

* vertex values suffice: inside a face the layer's pre-activations are affine in the plane
  coordinates, so their values at a new vertex (on an edge) are the linear interpolation of the
  edge's end values, and after the layer the next pre-activations at a vertex are the layer applied
  to the vertex's activations (activations are continuous, so vertices shared by faces agree);
* the complex is kept as an edge list (two vertex ids and the faces left and right of each edge),
  so one unit's cut of *all* faces is a handful of vectorised tensor operations: edges whose end
  values have opposite signs get a new vertex, each cut face gets one new edge between its two zero
  points, and the edges on the negative side move to the new face;
* units of a layer are processed one after the other (their lines cross), faces all at once.

Tolerances (float64 throughout): a vertex lies on unit j's zero line when
|z_j| <= rtol * max_v |z_j(v)| (the max over the vertices at the start of the layer); a face is cut
only if it has vertices strictly on both sides, so no face of zero area is ever made, and faces
thinner than that relative tolerance are not split off. Default rtol = 1e-10.

Each face's affine map of the output is recomputed exactly at the end by pushing (offset, du, dv)
through the layers with the face's own activation pattern (no interpolation error).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..network import LeakyReLU, MaxPool2d, Network, to_network
from ..network.layers import AbstractActivation, AbstractAffine
from .plane import Plane

__all__ = ["RegionMap", "regions_2d", "RegionBudgetError", "DEFAULT_RTOL", "DEFAULT_MEMORY_BUDGET", "single_thread", "pattern_keys"]

DEFAULT_RTOL = 1e-10
DEFAULT_MEMORY_BUDGET = 2 * 1024**3  # bytes


@contextlib.contextmanager
def single_thread(device="cpu"):
    """Run torch on one CPU thread inside the block (restored afterwards).

    The sweep (and training of the tiny 2-D nets around it) is thousands of small tensor
    operations: fanning each out to threads costs more than it gains, and on a busy machine a
    descheduled worker thread stalls every operation by milliseconds.
    """
    threads = torch.get_num_threads()
    blas = contextlib.nullcontext()
    if torch.device(device).type == "cpu":
        torch.set_num_threads(1)
        try:  # numpy's BLAS (small eigenproblems of the dual graph) too, when threadpoolctl is there
            from threadpoolctl import threadpool_limits

            blas = threadpool_limits(1)
        except ImportError:
            pass
    try:
        with blas:
            yield
    finally:
        torch.set_num_threads(threads)


class RegionBudgetError(MemoryError):
    """The region map would need more memory than `memory_budget` allows."""


@dataclass(frozen=True, eq=False)
class RegionMap:
    """The exact linear regions of a network on a box of a 2-D (slice of the) input space.

    All arrays are numpy. Coordinates are plane coordinates (the input itself for 2-D inputs).

    vertices      float64 [V, 2]
    edges         int64 [E, 2]    vertex ids
    edge_faces    int64 [E, 2]    the faces on both sides (-1: outside the box)
    face_vertices int64 [sum]     each face's vertices counter-clockwise, concatenated
    face_offsets  int64 [F + 1]   face f is face_vertices[face_offsets[f]:face_offsets[f + 1]]
    areas         float64 [F]
    patterns      bool [F, units] hidden units only (the output layer is excluded)
    A, c          float64 [F, out, 2], [F, out]: output(x) = A[f] @ x + c[f] for x in face f
    """

    box: tuple[float, float, float, float]
    plane: Plane | None
    vertices: np.ndarray
    edges: np.ndarray
    edge_faces: np.ndarray
    face_vertices: np.ndarray
    face_offsets: np.ndarray
    areas: np.ndarray
    patterns: np.ndarray
    A: np.ndarray
    c: np.ndarray
    rtol: float = DEFAULT_RTOL
    network: Network | None = field(default=None, repr=False)

    @property
    def n_regions(self) -> int:
        return int(self.areas.shape[0])

    @property
    def n_vertices(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.edges.shape[0])

    @property
    def box_area(self) -> float:
        x0, x1, y0, y1 = self.box
        return (x1 - x0) * (y1 - y0)

    @property
    def edge_lengths(self) -> np.ndarray:
        d = self.vertices[self.edges[:, 1]] - self.vertices[self.edges[:, 0]]
        return np.hypot(d[:, 0], d[:, 1])

    def face(self, f: int) -> np.ndarray:
        """Vertex coordinates [k, 2] of face f, counter-clockwise."""
        return self.vertices[self.face_vertices[self.face_offsets[f]:self.face_offsets[f + 1]]]

    @property
    def centroids(self) -> np.ndarray:
        """Area centroids [F, 2] (strictly inside each face)."""
        return _polygon_moments(self.vertices, self.face_vertices, self.face_offsets)[1]

    def pattern_keys(self) -> np.ndarray:
        """uint64 [F]: a hash of each face's pattern, the same for the same pattern in any map of
        a network with this unit layout (so colours stay put across training)."""
        return pattern_keys(self.patterns)

    def outputs_at(self, points, faces) -> np.ndarray:
        """The network output at plane points [N, 2] lying in the given faces [N]."""
        p = np.asarray(points, dtype=np.float64)
        f = np.asarray(faces, dtype=np.int64)
        return np.einsum("noi,ni->no", self.A[f], p) + self.c[f]

    def __repr__(self) -> str:
        return (
            f"RegionMap(n_regions={self.n_regions}, n_vertices={self.n_vertices}, "
            f"n_edges={self.n_edges}, box={self.box}, units={self.patterns.shape[1]})"
        )


def pattern_keys(patterns: np.ndarray) -> np.ndarray:
    """uint64 [N]: XOR of fixed random keys, one table per byte of the packed pattern."""
    packed = np.packbits(np.asarray(patterns, dtype=bool), axis=1)
    table = np.random.default_rng(20251023).integers(0, 2**63, size=(max(packed.shape[1], 1), 256), dtype=np.int64).astype(np.uint64)
    out = np.zeros(packed.shape[0], dtype=np.uint64)
    for b in range(packed.shape[1]):
        out ^= table[b, packed[:, b]]
    return out


# ----------------------------------------------------------------------------- input checks


def _check_box(box) -> tuple[float, float, float, float]:
    try:
        vals = tuple(float(b) for b in box)
    except (TypeError, ValueError) as err:
        raise TypeError(f"box: expected four numbers (xmin, xmax, ymin, ymax), got {box!r}") from err
    if len(vals) != 4 or not all(math.isfinite(v) for v in vals):
        raise ValueError(f"box: expected four finite numbers (xmin, xmax, ymin, ymax), got {box!r}")
    x0, x1, y0, y1 = vals
    if not (x1 > x0 and y1 > y0):
        raise ValueError(
            f"box: expected xmin < xmax and ymin < ymax (a box of positive area), got {box!r}; "
            "note the order (xmin, xmax, ymin, ymax)"
        )
    return vals


def _prepare(model, plane) -> Network:
    if plane is not None and not isinstance(plane, Plane):
        raise TypeError(f"plane: expected a reluscope.Plane or None, got {type(plane).__name__}")
    net = to_network(model)
    if plane is not None:
        if net.input_shape is not None and tuple(net.input_shape) != plane.input_shape:
            raise ValueError(
                f"plane: its points have shape {list(plane.input_shape)}, but the model takes "
                f"inputs of shape {list(net.input_shape)}; build the plane from inputs of the model"
            )
        net = net.with_input_shape(plane.input_shape)
    if net.input_shape is None:
        net = net.with_input_shape((2,))
    if plane is None and net.input_shape != (2,):
        raise ValueError(
            f"model: its input has shape {list(net.input_shape)}, not 2 numbers; pass "
            "plane=reluscope.Plane.through_points(a, b, c) (or Plane(origin, u, v)) to take a 2-D "
            "slice of the input space"
        )
    net.require_piecewise_linear("regions_2d")
    for layer in net.layers:
        if isinstance(layer, MaxPool2d):
            raise TypeError(
                f"regions_2d: layer {layer.name!r} is MaxPool2d, which regions_2d does not split "
                "exactly yet (its regions are argmax cells, not zero lines); use ReLU/LeakyReLU "
                "nets, or replace max pooling by AvgPool2d"
            )
        if not isinstance(layer, (AbstractAffine, LeakyReLU)):
            raise TypeError(f"regions_2d: layer {layer.name!r} of type {type(layer).__name__} is not supported")
    return net.to(dtype=torch.float64)


# ----------------------------------------------------------------------------- growable buffers


class _Buf:
    """A tensor with spare rows so appending is amortised O(1) (doubling)."""

    def __init__(self, t: torch.Tensor):
        self.t, self.n = t, t.shape[0]

    def view(self) -> torch.Tensor:
        return self.t[: self.n]

    def append(self, rows: torch.Tensor) -> None:
        need = self.n + rows.shape[0]
        if need > self.t.shape[0]:
            cap = max(need, 2 * self.t.shape[0], 16)
            bigger = torch.empty((cap, *self.t.shape[1:]), dtype=self.t.dtype, device=self.t.device)
            bigger[: self.n] = self.t[: self.n]
            self.t = bigger
        self.t[self.n:need] = rows
        self.n = need


# ----------------------------------------------------------------------------- the sweep


class _Complex:
    """Mutable working state of the sweep. Face 0 is the outside of the box; real faces are 1..F.

    R [V, n + 2]: per vertex the current layer's pre-activations (n columns) then its plane
    coordinates, so one interpolation makes both for a new vertex. E [E, 4]: per edge its two
    vertex ids and the faces on its two sides.
    """

    def __init__(self, box, device):
        x0, x1, y0, y1 = box
        self.xy0 = torch.tensor([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=torch.float64, device=device)
        # counter-clockwise box: face 1 inside, face 0 outside
        self.E = _Buf(torch.tensor([[0, 1, 1, 0], [1, 2, 1, 0], [2, 3, 1, 0], [3, 0, 1, 0]], dtype=torch.int64, device=device))
        self.R: _Buf | None = None
        self.n_faces = 1
        self.device = device

    @property
    def xy(self) -> torch.Tensor:
        return self.xy0 if self.R is None else self.R.view()[:, -2:]

    def start_layer(self, Z: torch.Tensor) -> None:
        self.R = _Buf(torch.cat([Z, self.xy], 1))

    def _interpolate(self, z, a, b, j):
        Rv = self.R.view()
        za, zb = z[a], z[b]
        t = (za / (za - zb)).unsqueeze(1)
        ra = Rv.index_select(0, a)
        new = torch.addcmul(ra, t, Rv.index_select(0, b) - ra)
        new[:, j] = 0.0
        nv0 = self.R.n
        self.R.append(new)
        return torch.arange(nv0, nv0 + a.shape[0], device=self.device)

    def cut(self, j: int, tol: float, origin: _Buf) -> None:
        """Split every face crossed by the zero line of pre-activation j."""
        z = self.R.view()[:, j]
        if float(z.abs().min()) <= tol:
            return self._cut_general(j, tol, origin)
        # fast path: no vertex on the line, so each cut face has exactly two crossing edges
        pos = z > 0
        Ev = self.E.view()
        pe = pos.index_select(0, Ev[:, :2].reshape(-1)).view(-1, 2)
        ci = (pe[:, 0] != pe[:, 1]).nonzero().squeeze(1)
        if ci.shape[0] == 0:
            return
        rows = Ev.index_select(0, ci)
        a, b = rows[:, 0], rows[:, 1]
        nv = self._interpolate(z, a, b, j)
        # the two new vertices of each cut face, found by sorting (face, vertex) incidences
        pf = rows[:, 2:].reshape(-1)
        pv = nv.repeat_interleave(2)
        order = torch.argsort(pf)
        pf, pv = pf[order], pv[order]
        k0 = int((pf == 0).sum())
        cut_faces, ends = pf[k0::2], pv[k0:].reshape(-1, 2)
        if ends.shape[0] != cut_faces.shape[0] or not bool((cut_faces == pf[k0 + 1::2]).all()):
            raise FloatingPointError(
                "regions_2d: a face met a unit's zero line in other than two boundary points "
                "(numerically degenerate network); try a larger rtol"
            )
        # split edges: (a, b) -> (a, m) in place, plus (m, b); negative sides move to new faces
        Ev[ci, 1] = nv
        split = torch.cat([torch.stack([nv, b], 1), rows[:, 2:]], 1)
        self._finish(Ev, ~pe[:, 0], split, ~pe.index_select(0, ci)[:, 1], cut_faces, ends, origin)

    def _finish(self, Ev, neg, split, neg_split, cut_faces, ends, origin):
        """Move the negative sides of the cut faces to new faces, add the split and cut edges."""
        n_cut = cut_faces.shape[0]
        nf1 = self.n_faces + 1
        new_ids = torch.arange(nf1, nf1 + n_cut, device=self.device)
        # faces of edges on the negative side: id f -> remap[f + nf1] (the new id if f was cut)
        remap = torch.arange(2 * nf1, device=self.device)
        remap[nf1:] -= nf1
        remap[cut_faces + nf1] = new_ids
        for edges, side in ((Ev, neg), (split, neg_split)):
            shift = (side.to(torch.int64) * nf1).unsqueeze(1)
            edges[:, 2:] = remap.index_select(0, (edges[:, 2:] + shift).reshape(-1)).view(-1, 2)
        new_edges = torch.cat([ends, cut_faces.unsqueeze(1), new_ids.unsqueeze(1)], 1)
        self.E.append(torch.cat([split, new_edges]))
        origin.append(origin.view()[cut_faces])
        self.n_faces += n_cut

    def _cut_general(self, j: int, tol: float, origin: _Buf) -> None:
        """The same cut when some vertices lie on the line (within tol): a face may then be cut
        through old vertices, and only faces with vertices strictly on both sides are cut."""
        z = self.R.view()[:, j]
        sg = (z > tol).to(torch.int8) - (z < -tol).to(torch.int8)
        Ev = self.E.view()
        se = sg.index_select(0, Ev[:, :2].reshape(-1)).view(-1, 2)
        sa, sb = se[:, 0], se[:, 1]
        nf1 = self.n_faces + 1
        has_pos = torch.zeros(nf1, dtype=torch.bool, device=self.device)
        has_neg = torch.zeros(nf1, dtype=torch.bool, device=self.device)
        has_pos[Ev[(sa > 0) | (sb > 0), 2:].flatten()] = True
        has_neg[Ev[(sa < 0) | (sb < 0), 2:].flatten()] = True
        cut = has_pos & has_neg
        cut[0] = False
        cut_faces = cut.nonzero().squeeze(1)
        if cut_faces.shape[0] == 0:
            return
        ci = ((sa * sb) < 0).nonzero().squeeze(1)
        rows = Ev.index_select(0, ci)
        a, b = rows[:, 0], rows[:, 1]
        nv = self._interpolate(z, a, b, j)
        n_all = self.R.n
        pf = [rows[:, 2], rows[:, 3]]
        pv = [nv, nv]
        zero_end = ((sa == 0) | (sb == 0)).nonzero().squeeze(1)
        if zero_end.shape[0]:
            ez = Ev.index_select(0, zero_end)  # crossing edges have no zero end: rows unchanged
            zf, zv = [], []
            for k in (2, 3):
                for i, s in ((0, sa[zero_end]), (1, sb[zero_end])):
                    keep = (s == 0) & cut[ez[:, k]]
                    zf.append(ez[keep, k])
                    zv.append(ez[keep, i])
            # each zero vertex of a face boundary is met twice (its two edges): keep one
            key = torch.unique(torch.cat(zf) * n_all + torch.cat(zv))
            pf.append(key // n_all)
            pv.append(key % n_all)
        pf, pv = torch.cat(pf), torch.cat(pv)
        keep = cut[pf]
        pf, pv = pf[keep], pv[keep]
        order = torch.argsort(pf * n_all + pv)
        pf, pv = pf[order], pv[order]
        n_cut = cut_faces.shape[0]
        if pf.shape[0] != 2 * n_cut or not bool((pf[0::2] == cut_faces).all() and (pf[1::2] == cut_faces).all()):
            raise FloatingPointError(
                "regions_2d: a face met a unit's zero line in other than two boundary points "
                "(numerically degenerate network); try a larger rtol"
            )
        Ev[ci, 1] = nv
        sg_all = torch.cat([sg, torch.zeros(nv.shape[0], dtype=torch.int8, device=self.device)])
        split = torch.cat([torch.stack([nv, b], 1), rows[:, 2:]], 1)
        neg = sg_all.index_select(0, Ev[:, :2].reshape(-1)).view(-1, 2).sum(1) < 0
        neg_split = sg.index_select(0, b) < 0
        self._finish(Ev, neg, split, neg_split, cut_faces, pv.reshape(-1, 2), origin)

    def face_sums(self, Z: torch.Tensor) -> torch.Tensor:
        """Sum of Z over each face's vertex incidences [F + 1, n] (twice the vertex sum)."""
        Ev = self.E.view()
        ends = Z.index_select(0, Ev[:, 0]) + Z.index_select(0, Ev[:, 1])
        out = torch.zeros((self.n_faces + 1, Z.shape[1]), dtype=Z.dtype, device=Z.device)
        out.index_add_(0, Ev[:, 2], ends)
        out.index_add_(0, Ev[:, 3], ends)
        return out


def _bytes_per_face(widths: list[int], units: int) -> float:
    # vertex values of the widest layer (about one vertex per face, doubled by buffer growth),
    # edges (about two per face), patterns and the affine maps at the end
    return 8 * 2 * max(widths + [2]) + 2 * 32 + units + 100


def _grid_estimate(net: Network, plane, box, device, n: int = 64) -> int:
    """Distinct patterns on an n x n grid: a cheap lower bound on the region count."""
    x0, x1, y0, y1 = box
    s = torch.linspace(x0, x1, n, dtype=torch.float64, device=device)
    t = torch.linspace(y0, y1, n, dtype=torch.float64, device=device)
    st = torch.stack(torch.meshgrid(s, t, indexing="xy"), -1).reshape(-1, 2)
    x = st if plane is None else plane.to_input(st)
    with torch.no_grad():
        bits = net.bits(x.to(device))
    if not bits.shape[1]:
        return 1
    # distinct patterns via a random projection (a collision only lowers this lower bound)
    gen = torch.Generator(device="cpu").manual_seed(0)
    w = torch.randn(bits.shape[1], dtype=torch.float64, generator=gen).to(device)
    return int(torch.unique(bits.to(torch.float64) @ w).shape[0])


def regions_2d(
    model,
    *,
    box=(-1.0, 1.0, -1.0, 1.0),
    plane: Plane | None = None,
    rtol: float = DEFAULT_RTOL,
    memory_budget: float = DEFAULT_MEMORY_BUDGET,
    device=None,
    progress: bool = False,
) -> RegionMap:
    """The exact linear regions of `model` on `box` (xmin, xmax, ymin, ymax) of a 2-D input space.

    For inputs of more than two numbers pass `plane` (a `Plane`); `box` is then in plane
    coordinates (box=None: a square around the plane's anchor points). Works for chains of
    Linear/Conv2d/AvgPool2d/Flatten/folded BatchNorm layers with ReLU/LeakyReLU activations.
    Computes in float64 on `device` (default: the model's device). `memory_budget` (bytes) bounds
    the working memory: the call refuses early (RegionBudgetError) when the estimated size is over.
    """
    net = _prepare(model, plane)
    if box is None:
        if plane is None:
            raise ValueError("box: expected (xmin, xmax, ymin, ymax); box=None needs a plane with anchors")
        box = plane.box_around_anchors()
    box = _check_box(box)
    if not (isinstance(rtol, (int, float)) and 0 <= rtol < 1e-2):
        raise ValueError(f"rtol: expected a float in [0, 1e-2), got {rtol!r}")
    if not (isinstance(memory_budget, (int, float)) and memory_budget > 0):
        raise ValueError(f"memory_budget: expected a positive number of bytes, got {memory_budget!r}")
    device = torch.device(device) if device is not None else net.device
    net = net.to(device=device)
    plane_dev = None
    if plane is not None:
        plane_dev = Plane(plane.origin.to(device), plane.u.to(device), plane.v.to(device), plane.anchors)

    widths, units = [], 0
    with torch.no_grad():
        probe = torch.zeros((1, *net.input_shape), dtype=torch.float64, device=device)
        for layer, z in net.trace(probe):
            if isinstance(layer, AbstractActivation):
                widths.append(z[0].numel())
                units += z[0].numel()
    per_face = _bytes_per_face(widths, units)
    with single_thread(device):
        return _sweep(net, plane, plane_dev, box, rtol, memory_budget, per_face, units, device, progress)


def _sweep(net, plane, plane_dev, box, rtol, memory_budget, per_face, units, device, progress):
    lower = _grid_estimate(net, plane_dev, box, device)
    if lower * per_face > memory_budget:
        raise RegionBudgetError(
            f"regions_2d: the slice has at least {lower} regions (a coarse grid already sees that "
            f"many), needing about {lower * per_face / 2**20:.0f} MiB at {per_face:.0f} bytes per "
            f"region, over memory_budget={memory_budget:.0f} bytes; pass a larger memory_budget "
            "or a smaller box"
        )

    cx = _Complex(box, device)
    H = cx.xy if plane_dev is None else plane_dev.to_input(cx.xy)
    origin = _Buf(torch.zeros(2, dtype=torch.int64, device=device))  # face -> face at layer start
    patterns = torch.zeros((2, 0), dtype=torch.bool, device=device)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=units, desc="regions_2d", unit="unit")
    try:
        with torch.inference_mode():
            for layer in net.layers:
                if isinstance(layer, AbstractAffine):
                    H = layer.forward(H)
                    continue
                shape = H.shape[1:]
                Z = H.reshape(H.shape[0], -1)
                n = Z.shape[1]
                tols = (rtol * Z.abs().amax(0)).tolist()
                cx.start_layer(Z)
                origin = _Buf(torch.arange(cx.n_faces + 1, device=device))
                f_start = cx.n_faces
                for j in range(n):
                    cx.cut(j, tols[j], origin)
                    if bar is not None:
                        bar.update(1)
                    est = f_start + (cx.n_faces - f_start) * n / (j + 1)
                    if est * per_face > memory_budget and cx.n_faces > 64:
                        raise RegionBudgetError(
                            f"regions_2d: layer {layer.name!r} is on course for about {est:.0f} "
                            f"regions ({cx.n_faces} after {j + 1} of its {n} units), about "
                            f"{est * per_face / 2**20:.0f} MiB, over memory_budget="
                            f"{memory_budget:.0f} bytes; pass a larger memory_budget or a smaller box"
                        )
                Zv = cx.R.view()[:, :n]
                bits = cx.face_sums(cx.R.view())[:, :n] > 0
                patterns = torch.cat([patterns[origin.view()], bits], 1)
                H = layer.forward(Zv.reshape(Zv.shape[0], *shape))
            out = H.reshape(H.shape[0], -1) if cx.R is not None else H  # network output at the vertices
            if cx.R is None:  # no activation at all: the corners' values
                out = out.reshape(4, -1)
        result = _assemble(net, plane, box, cx, patterns[1:], rtol, out)
    finally:
        if bar is not None:
            bar.close()
    return result


# ----------------------------------------------------------------------------- final complex


def _polygon_moments(V, fv, off):
    """Shoelace areas [F] and area centroids [F, 2] of counter-clockwise polygons.

    Coordinates are taken relative to each face's first vertex: tiny faces far from the origin
    would otherwise lose all their digits to cancellation.
    """
    n_f = off.shape[0] - 1
    counts = np.diff(off)
    face_of = np.repeat(np.arange(n_f), counts)
    nxt = np.arange(fv.shape[0]) + 1
    nxt[off[1:] - 1] = off[:-1]
    ref = V[fv[off[:-1]]][face_of]
    p, q = V[fv] - ref, V[fv[nxt]] - ref
    cross = p[:, 0] * q[:, 1] - p[:, 1] * q[:, 0]
    area = np.bincount(face_of, cross, n_f) / 2
    cx = np.bincount(face_of, (p[:, 0] + q[:, 0]) * cross, n_f)
    cy = np.bincount(face_of, (p[:, 1] + q[:, 1]) * cross, n_f)
    with np.errstate(invalid="ignore", divide="ignore"):
        cen = np.stack([cx, cy], 1) / (6 * area[:, None])
    return area, cen + V[fv[off[:-1]]]


def _order_faces(X: np.ndarray, EV: np.ndarray, EF: np.ndarray, n_faces: int):
    """Counter-clockwise vertex lists of every face from the edge list."""
    f = np.concatenate([EF[:, 0], EF[:, 0], EF[:, 1], EF[:, 1]])
    v = np.concatenate([EV[:, 0], EV[:, 1], EV[:, 0], EV[:, 1]])
    inside = f >= 0
    f, v = f[inside], v[inside]
    # each boundary vertex is met twice per face; dedupe (face, vertex) pairs
    key = np.unique(f * X.shape[0] + v)
    f, v = key // X.shape[0], key % X.shape[0]
    counts = np.bincount(f, minlength=n_faces)
    centre = np.stack([np.bincount(f, X[v, 0], n_faces), np.bincount(f, X[v, 1], n_faces)], 1) / counts[:, None]
    d = X[v] - centre[f]
    angle = np.arctan2(d[:, 1], d[:, 0])
    order = np.lexsort((angle, f))
    off = np.zeros(n_faces + 1, dtype=np.int64)
    np.cumsum(counts, out=off[1:])
    return v[order].astype(np.int64), off


def _fit_affine(X, out, fv, off):
    """Least-squares affine maps from each face's vertex outputs, plus each face's width (sqrt
    of the smallest eigenvalue of its vertex scatter), which says how well-posed the fit is."""
    from scipy import sparse

    n_f = off.shape[0] - 1
    counts = np.diff(off)
    face_of = np.repeat(np.arange(n_f), counts)
    S = sparse.csr_matrix((np.ones(fv.shape[0]), (face_of, np.arange(fv.shape[0]))), shape=(n_f, fv.shape[0]))
    p, o = X[fv], out[fv]
    pm, om = (S @ p) / counts[:, None], (S @ o) / counts[:, None]
    dp, do = p - pm[face_of], o - om[face_of]
    M = (S @ (dp[:, :, None] * dp[:, None, :]).reshape(-1, 4)).reshape(n_f, 2, 2)
    B = (S @ (dp[:, :, None] * do[:, None, :]).reshape(fv.shape[0], -1)).reshape(n_f, 2, -1)
    det = M[:, 0, 0] * M[:, 1, 1] - M[:, 0, 1] ** 2
    half_tr = (M[:, 0, 0] + M[:, 1, 1]) / 2
    lam_min = half_tr - np.sqrt(np.maximum(half_tr**2 - det, 0))
    adj = np.stack([np.stack([M[:, 1, 1], -M[:, 0, 1]], 1), np.stack([-M[:, 0, 1], M[:, 0, 0]], 1)], 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        A = ((adj @ B) / det[:, None, None]).transpose(0, 2, 1)  # [F, out, 2]
    c = om - np.einsum("foi,fi->fo", A, pm)
    return A, c, np.sqrt(np.maximum(lam_min, 0) / counts)


def _affine_maps(net: Network, plane, patterns: torch.Tensor, device, chunk_floats: int = 2**25):
    """A [F, out, 2], c [F, out]: push (offset, du, dv) through the net with each face's pattern."""
    if plane is None:
        base = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64, device=device)
    else:
        base = torch.stack([plane.origin, plane.u, plane.v]).to(device)
    n_f = patterns.shape[0]
    widths = [2]
    with torch.no_grad():
        for layer, z in net.trace(base[:1]):
            widths.append(z[0].numel())
    step = max(1, chunk_floats // (3 * max(widths)))
    As, cs = [], []
    with torch.no_grad():
        for s in range(0, max(n_f, 1), step):
            pat = patterns[s:s + step]
            k = pat.shape[0]
            off, dirs = base[:1], base[1:]
            start = 0
            off, dirs = off.expand(k, *off.shape[1:]), dirs.unsqueeze(0).expand(k, *dirs.shape)
            for layer in net.layers:
                if isinstance(layer, AbstractAffine):
                    off = layer.forward(off)
                    d = layer.linear(dirs.reshape(k * 2, *dirs.shape[2:]))
                    dirs = d.reshape(k, 2, *d.shape[1:])
                else:
                    n = off[0].numel()
                    bits = pat[:, start:start + n]
                    start += n
                    slope = torch.where(bits, 1.0, float(layer.negative_slope)).to(torch.float64)
                    off = (off.reshape(k, n) * slope).reshape(off.shape)
                    dirs = (dirs.reshape(k, 2, n) * slope.unsqueeze(1)).reshape(dirs.shape)
            As.append(dirs.reshape(k, 2, -1).transpose(1, 2))
            cs.append(off.reshape(k, -1))
    return torch.cat(As).cpu().numpy(), torch.cat(cs).cpu().numpy()


def _assemble(net, plane, box, cx: _Complex, patterns: torch.Tensor, rtol, out) -> RegionMap:
    X = cx.xy.cpu().numpy().copy()
    Ev = cx.E.view().cpu().numpy()
    EV, EF = Ev[:, :2].copy(), Ev[:, 2:] - 1
    n_f = cx.n_faces
    fv, off = _order_faces(X, EV, EF, n_f)
    areas, _ = _polygon_moments(X, fv, off)
    # Fit each face's affine map to its vertex outputs (cheap, accurate for faces of some
    # width); thin or tiny faces, where a fit would amplify rounding, get the exact push instead.
    A, c, width = _fit_affine(X, out.cpu().numpy(), fv, off)
    x0, x1, y0, y1 = box
    thin = np.nonzero(~(width > 1e-5 * max(x1 - x0, y1 - y0)))[0]
    if thin.shape[0]:
        idx = torch.as_tensor(thin, device=patterns.device)
        A[thin], c[thin] = _affine_maps(net, plane, patterns.index_select(0, idx), patterns.device)
    return RegionMap(
        box=box, plane=plane, vertices=X, edges=EV, edge_faces=EF, face_vertices=fv,
        face_offsets=off, areas=areas, patterns=patterns.cpu().numpy(), A=A, c=c, rtol=rtol,
        network=net.to(device="cpu"),
    )
