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

Graphs (residual additions, concatenation) are walked node by node in topological order: affine
nodes are evaluated at the vertices; an activation node cuts with its input's values while every
other value a later node reads rides along as extra columns of the vertex table, interpolated at
new vertices like the cut values (all are affine on each face), so a shortcut stays exact. Values
are dropped after their last reader. A chain carries nothing: the same work as before. Max pooling
is cut into argmax cells and merged back to pattern classes (`_maxpool`).

Tolerances (float64 throughout): a vertex lies on unit j's zero line when
|z_j| <= rtol * max_v |z_j(v)| (the max over the vertices at the start of the layer); a face is cut
only if it has vertices strictly on both sides, so no face of zero area is ever made, and faces
thinner than that relative tolerance are not split off. Default rtol = 1e-10.

Each face's affine map of the output (A, c) is fitted by least squares to the output values at its
vertices (cheap: O(vertices)); faces too thin for a well-posed fit (width below 1e-5 of the box)
get the exact map instead, (offset, du, dv) pushed through the layers with the face's own pattern.
Each face's pattern bits come from the sum of the layer's pre-activations over its vertices (the
value at an interior point, up to a positive factor), so they agree with the cuts that made it.

The ops of one cut are small, so on the CPU the sweep runs on one torch thread (`single_thread`).
With numba, a chain (an MLP, the common case) cuts each activation node in one compiled call
(`_walk.walk_chain`: all its units, the budget check, the bits), and a plain nn.Sequential MLP is
converted straight to float64 (`_mlp`): a 127-region net maps in about 0.2 ms. Graphs, max pooling
and the numpy/torch engines go node by node and unit by unit (`_walk.walk`); the complex is the
same bit for bit. Measured against regioncam (Rust) in bench/regions.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from .._compiled import load_kernels
from .._checks import DEFAULT_MEMORY_BUDGET, MemoryBudgetError, single_thread
from ..network import LeakyReLU, MaxPool2d, Network, to_network
from ..network.layers import AbstractActivation, AbstractAffine
from ..network.network import INPUT
from ..results import Result
from ..traversal.precision import Precision, analysed_dtype
from ._complex import polygon_moments, pushed_affine_maps
from ._cut import Complex, _np
from ._cut_np import NpComplex
from ._mlp import chain_sizes, float64_mlp
from ._walk import State, is_chain, walk, walk_chain
from .plane import Plane

if TYPE_CHECKING:
    from .._types import ArrayLike, ModelLike

__all__ = ["RegionMap", "regions_2d", "RegionBudgetError", "DEFAULT_RTOL", "DEFAULT_MEMORY_BUDGET", "pattern_keys"]

DEFAULT_RTOL = 1e-10
_NUMPY_ON_CPU = True  # the numpy sweep on the CPU (tests and bench/regions.py compare both)
_NUMPY_MAX_EDGES = 3000  # then torch: measured crossover on the 2-core CPU (bench/regions.py)
_COMPILED_ON_CPU = True  # the numba cut when numba is installed (never handed to torch: faster at every size)
_COMPILED_CHAIN = True  # chains on the compiled engine: one call per layer (`walk_chain`), not per unit
_compiled = None  # NbComplex once imported, False when numba is missing


def _compiled_engine():
    """NbComplex (numba's compiled cut, `_cut_nb`) when numba imports and `_COMPILED_ON_CPU`, else None."""
    global _compiled
    if _compiled is None:
        nb = load_kernels("reluscope.regions._cut_nb")
        _compiled = False if nb is None else nb.NbComplex
    return _compiled if _COMPILED_ON_CPU and _compiled else None


def _cpu_complex(box):
    """(complex, edges above which torch takes over) for the CPU sweep: numba's compiled cut
    when it imports, else numpy's."""
    engine = _compiled_engine()
    return (engine(box), math.inf) if engine else (NpComplex(box), _NUMPY_MAX_EDGES)


class RegionBudgetError(MemoryBudgetError):
    """The region map would need more memory than `memory_budget` allows."""


@dataclass(frozen=True, eq=False)
class RegionMap(Result):
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
    dtype: str = "float64"  # the precision analysed (the sweep is float64; see traversal.precision)

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
        return polygon_moments(self.vertices, self.face_vertices, self.face_offsets)[1]

    def pattern_keys(self) -> np.ndarray:
        """uint64 [F]: a hash of each face's pattern, the same for the same pattern in any map of
        a network with this unit layout (so colours stay put across training)."""
        return pattern_keys(self.patterns)

    def outputs_at(self, points: ArrayLike, faces: ArrayLike) -> np.ndarray:
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
        vals = tuple(map(float, box))
    except (TypeError, ValueError) as err:
        raise TypeError(f"box: expected four numbers (xmin, xmax, ymin, ymax), got {box!r}") from err
    if len(vals) != 4 or not all(map(math.isfinite, vals)):
        raise ValueError(f"box: expected four finite numbers (xmin, xmax, ymin, ymax), got {box!r}")
    x0, x1, y0, y1 = vals
    if not (x1 > x0 and y1 > y0):
        raise ValueError(
            f"box: expected xmin < xmax and ymin < ymax (a box of positive area), got {box!r}; "
            "note the order (xmin, xmax, ymin, ymax)"
        )
    # face fits take up to fourth powers of coordinates: beyond ~1e75 they overflow (1e200: NaN areas)
    scale = max(abs(v) for v in vals)
    if scale > _BOX_LIMIT:
        raise ValueError(
            f"box: expected coordinates within +-{_BOX_LIMIT:.0e} (areas and face fits would overflow float64), got "
            f"{box!r}; scale the plane's directions u and v instead"
        )
    if min(x1 - x0, y1 - y0) <= 1e-9 * scale or (x1 - x0) * (y1 - y0) < _AREA_FLOOR:
        raise ValueError(
            f"box: sides {x1 - x0:.3g} x {y1 - y0:.3g} are too small to resolve at coordinates of "
            f"{scale:.3g} in float64; give a box with sides above 1e-9 of its coordinates and an "
            f"area above {_AREA_FLOOR:.0e}, or shift and scale the plane"
        )
    return vals


_BOX_LIMIT = 1e60
_AREA_FLOOR = 1e-120  # fits use fourth powers of face sizes: keep them off float64 underflow


def _prepare(model, plane) -> Network:
    if plane is not None and not isinstance(plane, Plane):
        raise TypeError(f"plane: expected a reluscope.Plane or None, got {type(plane).__name__}")
    fast = float64_mlp(model)  # the plain MLP: float64 straight from the weights
    net = fast if fast is not None else to_network(model)
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
    if fast is not None:
        return net
    net.require_piecewise_linear("regions_2d")
    analysed_dtype(net.dtype, Precision.FLOAT64, "regions_2d")  # warns for float16/bfloat16 models
    for node in net.nodes:
        layer = node.layer
        if not isinstance(layer, (AbstractAffine, LeakyReLU, MaxPool2d)):
            raise TypeError(f"regions_2d: layer {layer.name!r} of type {type(layer).__name__} is not supported")
    return net.to(dtype=torch.float64)


def _bytes_per_face(widths: list[int], units: int) -> float:
    # vertex values of the widest layer (about one vertex per face, doubled by buffer growth),
    # edges (about two per face), patterns and the affine maps at the end
    return 8 * 2 * max(widths + [2]) + 2 * 32 + units + 100


def _grid_estimate(net: Network, plane, box, device, n: int = 48) -> int:
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
    model: ModelLike,
    *,
    box: tuple[float, float, float, float] | None = None,
    plane: Plane | None = None,
    rtol: float = DEFAULT_RTOL,
    memory_budget: float = DEFAULT_MEMORY_BUDGET,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> RegionMap:
    """The exact linear regions of `model` on `box` (xmin, xmax, ymin, ymax) of a 2-D input space.

    For inputs of more than two numbers pass `plane` (a `Plane`); `box` is then in plane
    coordinates. box=None (the default): a square around the plane's anchor points with a margin
    when it has anchors (`Plane.through_points`), else (-1, 1, -1, 1). Works for chains and graphs
    (residual additions, concatenation) of the whitelisted affine layers with ReLU, LeakyReLU and
    MaxPool2d activations (max pooling split exactly into argmax cells).
    Computes in float64 on `device` (default: the model's device). `memory_budget` (bytes) bounds
    the working memory: the call refuses early (RegionBudgetError) when the estimated size is over.
    """
    net = _prepare(model, plane)
    if box is None:  # a fixed +-1 box would miss the anchors of most planes (images sit near +-5)
        has_anchors = plane is not None and plane.anchors.shape[0] > 0
        box = plane.box_around_anchors() if has_anchors else (-1.0, 1.0, -1.0, 1.0)
    box = _check_box(box)
    if not (isinstance(rtol, (int, float)) and 0 <= rtol < 1e-2):
        raise ValueError(f"rtol: expected a float in [0, 1e-2), got {rtol!r}")
    if not (isinstance(memory_budget, (int, float)) and memory_budget > 0):
        raise ValueError(f"memory_budget: expected a positive number of bytes, got {memory_budget!r}")
    here = net.device
    device = torch.device(device) if device is not None else here
    if device != here:
        net = net.to(device=device)
    plane_dev = None
    if plane is not None:
        plane_dev = Plane(plane.origin.to(device), plane.u.to(device), plane.v.to(device), plane.anchors)

    chain = is_chain(net)
    widths, lines, units, steps = (chain and chain_sizes(net)) or _sizes(net, device)
    per_face = _bytes_per_face(widths, units)
    with single_thread(device=device, blas=False):  # the sweep does no BLAS work
        return _sweep(net, plane, plane_dev, box, rtol, memory_budget, per_face, steps, lines, device, progress, chain)


def _sizes(net: Network, device):
    """Per activation node: the columns the sweep holds per vertex (its input plus the values it
    carries), and the lines it may cut with (a max-pool window of K entries: K(K-1)/2); the total
    pattern bits and progress steps (a unit, or a max-pool window)."""
    widths, lines, units, steps = [], [], 0, 0
    with torch.no_grad():
        probe = torch.zeros((1, *net.input_shape), dtype=torch.float64, device=device)
        sizes = {INPUT: probe[0].numel(), **{i: v[0].numel() for i, v in enumerate(net.values(probe))}}
    live: set[int] = set()  # node outputs held at this node (the input is recomputed, never carried)
    for step in net.schedule():
        layer = step.layer
        if isinstance(layer, AbstractActivation):
            n = sizes[step.inputs[0]]
            widths.append(n + sum(sizes[k] for k in live if k not in step.inputs))
            if isinstance(layer, MaxPool2d):  # one-hot bits per window
                k, windows = layer.kernel_size[0] * layer.kernel_size[1], sizes[step.index]
                units, steps = units + windows * k, steps + windows
                lines.append(windows * k * (k - 1) // 2)
            else:
                units, steps = units + n, steps + n
                lines.append(n)
        live = (live | {step.index}) - set(step.free)
    return widths, lines, units, steps


def _upper_bound(widths: list[int]) -> float:
    """At most 1 + n + n(n-1)/2 pieces per face for a layer of n lines in the plane: a bound on
    the region count that costs nothing, so small nets skip the grid estimate."""
    bound = 1.0
    for n in widths:
        bound *= 1 + n + n * (n - 1) / 2
    return bound


def _sweep(net, plane, plane_dev, box, rtol, memory_budget, per_face, steps, lines, device, progress, chain):
    if _upper_bound(lines) * per_face > memory_budget:
        lower = _grid_estimate(net, plane_dev, box, device)
        if lower * per_face > memory_budget:
            raise RegionBudgetError(
                f"regions_2d: the slice has at least {lower} regions (a coarse grid already sees that "
                f"many), needing about {lower * per_face / 2**20:.0f} MiB at {per_face:.0f} bytes per "
                f"region, over memory_budget={memory_budget:.0f} bytes; pass a larger memory_budget "
                "or a smaller box"
            )

    def refuse(layer, est, faces, done, total):
        raise RegionBudgetError(
            f"regions_2d: layer {layer.name!r} is on course for about {est:.0f} "
            f"regions ({faces} after {done} of its {total} units), about "
            f"{est * per_face / 2**20:.0f} MiB, over memory_budget="
            f"{memory_budget:.0f} bytes; pass a larger memory_budget or a smaller box"
        )

    cpu = device.type == "cpu" and _NUMPY_ON_CPU  # numba or numpy: far less fixed cost per small operation
    engine = _compiled_engine() if cpu else None
    if engine and _COMPILED_CHAIN and not progress and chain:  # the common MLP: one compiled call per layer
        with torch.inference_mode():
            X, E, n_f, patterns, out = walk_chain(net, plane_dev, box, rtol, per_face, memory_budget, engine.cut_layer, refuse)
        return _assemble(net, plane, box, X, E, n_f, engine.assembly, patterns, rtol, out)
    st = State(*_cpu_complex(box), device) if cpu else State(Complex(box, device), math.inf, device)

    def check(layer, done, total, f_start):
        est = f_start + (st.cx.n_faces - f_start) * total / done
        if est * per_face > memory_budget and st.cx.n_faces > 64:
            refuse(layer, est, st.cx.n_faces, done, total)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc="regions_2d", unit="unit")
    try:
        with torch.inference_mode():
            out = walk(net, plane_dev, st, rtol, check, bar)
        out = out.reshape(out.shape[0], -1)  # network output at the vertices (the corners without activations)
        cx = st.cx
        result = _assemble(net, plane, box, _np(cx.xy).copy(), _np(cx.E.view()), cx.n_faces, cx.assembly, st.patterns[1:],
                           rtol, out)
    finally:
        if bar is not None:
            bar.close()
    return result


def _assemble(net, plane, box, X, Ev, n_f, assembly, patterns, rtol, out) -> RegionMap:
    """The RegionMap from the sweep's vertices X [V, 2] (kept: pass a copy), edges Ev [E, 4] (ids,
    faces + 1), face count, patterns [F, units] and outputs at the vertices, with the engine's
    (order, areas, fit)."""
    EV, EF = Ev[:, :2].copy(), Ev[:, 2:] - 1
    order, areas_of, fit = assembly
    fv, off = order(X, EV, EF, n_f)
    areas = areas_of(X, fv, off)
    # Fit each face's affine map to its vertex outputs (cheap, accurate for faces of some
    # width); thin or tiny faces, where a fit would amplify rounding, get the exact push instead.
    A, c, width = fit(X, np.ascontiguousarray(_np(out)), fv, off)
    x0, x1, y0, y1 = box
    thin = np.nonzero(~(width > 1e-5 * max(x1 - x0, y1 - y0)))[0]
    if thin.shape[0]:
        pat = torch.as_tensor(_np(patterns)[thin])
        A[thin], c[thin] = pushed_affine_maps(net, plane, pat, pat.device)
    return RegionMap(
        box=box, plane=plane, vertices=X, edges=EV, edge_faces=EF, face_vertices=fv,
        face_offsets=off, areas=areas, patterns=_np(patterns), A=A, c=c, rtol=rtol,
        network=net if net.device.type == "cpu" else net.to(device="cpu"),
    )
