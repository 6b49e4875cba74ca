"""The sweep's walk over the network graph (see `partition` for the algorithm): the working state,
the cut of one activation node (ReLU/LeakyReLU: `cut_relu`; MaxPool2d: `cut_maxpool`), and `walk`,
which evaluates every node at the vertices and carries live values through the cuts.

An engine (numba, numpy, torch) plugs in as `State.cx`: it needs `start_layer(Z, carry)`,
`cut(j, tol, origin)`, `cut_where(z, tol, origin, allowed)`, `face_sums(Z)`, `R`, `E`, `n_faces`,
`assembly` (for `partition._assemble`) and `to_torch(origin)` where `max_edges` is finite.
"""

from __future__ import annotations

import numpy as np
import torch

from ..network import MaxPool2d, Network
from ..network.layers import AbstractAffine
from ..network.network import INPUT
from ._cut import Buf, Complex, _np, degenerate_face
from ._maxpool import cut_windows, maxpool_bits, merge_equal_faces, window_columns

__all__ = ["State", "walk", "cut_relu", "cut_maxpool", "is_chain", "walk_chain"]


class State:
    """The sweep's working state: the complex `cx` (a CPU engine, numba or numpy, handed over to
    torch past `max_edges` edges; or torch), each face's face at the current node's start
    (`origin`) and the pattern bits so far (one row per face + the outside)."""

    def __init__(self, cx, max_edges: float, device):
        self.cx, self.max_edges, self.device = cx, max_edges, device
        self.on_cpu = not isinstance(cx, Complex)
        if self.on_cpu:
            self.origin = Buf(np.zeros(2, dtype=np.int64))
            self.patterns = np.zeros((2, 0), dtype=bool)
        else:
            self.origin = Buf(torch.zeros(2, dtype=torch.int64, device=device))
            self.patterns = torch.zeros((2, 0), dtype=torch.bool, device=device)

    def maybe_to_torch(self) -> bool:
        """Hand the numpy state over to torch once it is large; True when it did."""
        if not (self.on_cpu and self.cx.E.n > self.max_edges):
            return False
        self.cx, self.origin = self.cx.to_torch(self.origin)
        self.patterns, self.on_cpu = torch.from_numpy(self.patterns), False
        return True

    def xy(self) -> torch.Tensor:
        return torch.from_numpy(self.cx.xy) if self.on_cpu else self.cx.xy

    def start_node(self, Z: torch.Tensor, carry: torch.Tensor | None) -> None:
        self.maybe_to_torch()
        if self.on_cpu:
            Z, carry = Z.numpy(), (None if carry is None else carry.numpy())
        self.cx.start_layer(Z, carry)
        n = self.cx.n_faces + 1
        self.origin = Buf(np.arange(n) if self.on_cpu else torch.arange(n, device=self.device))

    def add_bits(self, bits) -> None:
        """Append this node's bits (one row per current face) to the faces' patterns."""
        if self.on_cpu:
            self.patterns = np.concatenate([self.patterns[self.origin.view()], _np(bits)], 1)
        else:
            self.patterns = torch.cat([self.patterns[self.origin.view()], torch.as_tensor(bits, device=self.device)], 1)

    def column_absmax(self, n: int):
        """The largest |value| of each of the cut values' n columns over the vertices (numpy or torch,
        as the engine): the scale of that column's cut tolerance."""
        Z = self.cx.R.view()[:, :n]
        return abs(Z).max(0) if self.on_cpu else Z.abs().amax(0)

    def columns(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The cut values (first n columns of R) and the carried ones, as torch views."""
        Rv = self.cx.R.view()
        Rv = torch.from_numpy(Rv) if self.on_cpu else Rv
        return Rv[:, :n], Rv[:, n:-2]


def cut_relu(st: State, layer, n: int, rtol: float, check, bar) -> None:
    """Cut every face by the zero line of each of the node's n pre-activations (R's first n
    columns), then append the faces' bits."""
    tols = (rtol * st.column_absmax(n)).tolist()
    f_start = st.cx.n_faces
    for j in range(n):
        st.maybe_to_torch()
        st.cx.cut(j, tols[j], st.origin)
        if bar is not None:
            bar.update(1)
        check(layer, j + 1, n, f_start)
    Rv = st.cx.R.view()
    carried = Rv.shape[1] > n + 2
    st.add_bits(st.cx.face_sums(Rv[:, :n] if carried else Rv)[:, :n] > 0)


def cut_maxpool(st: State, layer, n: int, shape, rtol: float, check, bar) -> None:
    """Cut faces until every window's argmax is constant on each, merge faces of equal pattern,
    then append the faces' bits (see `_maxpool`)."""
    colmax = _np(st.column_absmax(n))
    cols = window_columns(layer, shape)
    f_start = st.cx.n_faces

    def progress(w):
        if bar is not None:
            bar.update(1)
        check(layer, w + 1, cols.shape[0], f_start)

    cut_windows(st, cols, colmax, rtol, progress)
    bits = maxpool_bits(layer, st.cx.face_sums(st.cx.R.view()[:, :n]), shape)
    st.add_bits(merge_equal_faces(st, bits))


def walk(net: Network, plane_dev, st: State, rtol, check, bar) -> torch.Tensor:
    """Evaluate the graph at the vertices, node by node; activation nodes cut the complex first.

    `live` holds every value a later node still reads, at the current vertices. An activation node
    carries the others through its cuts as extra columns of R (interpolated at new vertices like
    its own input), so a residual's shortcut stays exact; values are dropped after their last use.
    The input is recomputed from the plane coordinates whenever a node reads it.
    """
    live: dict[int, torch.Tensor] = {}

    def read(k):
        if k == INPUT:
            xy = st.xy()
            return xy if plane_dev is None else plane_dev.to_input(xy)
        return live[k]

    for step in net.schedule():
        i, layer = step.index, step.layer
        if isinstance(layer, AbstractAffine):
            live[i] = layer.forward(*[read(k) for k in step.inputs])
        else:
            k0 = step.inputs[0]
            z = read(k0)
            shape, n = z.shape[1:], z[0].numel()
            keep = [k for k in live if k != k0]  # live values a later node reads
            carry = torch.cat([live[k].reshape(z.shape[0], -1) for k in keep], 1) if keep else None
            st.start_node(z.reshape(z.shape[0], -1), carry)
            if isinstance(layer, MaxPool2d):
                cut_maxpool(st, layer, n, shape, rtol, check, bar)
            else:
                cut_relu(st, layer, n, rtol, check, bar)
            zv, cv = st.columns(n)
            v = zv.shape[0]
            if k0 != INPUT and k0 not in step.free:
                live[k0] = zv.reshape(v, *shape)
            at = 0
            for k in keep:
                w = live[k][0].numel()
                live[k] = cv[:, at:at + w].reshape(v, *live[k].shape[1:])
                at += w
            live[i] = layer.forward(zv.reshape(v, *shape))
        for k in step.free:
            del live[k]
    return live[len(net.nodes) - 1]


def is_chain(net: Network) -> bool:
    """Each node reads the one before it, and no max pooling: what `walk_chain` handles."""
    return all(
        node.inputs == (i - 1 if i else INPUT,) and not isinstance(node.layer, MaxPool2d)
        for i, node in enumerate(net.nodes)
    )


_BOX_EDGES = np.array([[0, 1, 1, 0], [1, 2, 1, 0], [2, 3, 1, 0], [3, 0, 1, 0]], dtype=np.int64)


def walk_chain(net: Network, plane_dev, box, rtol, per_face, memory_budget, cut_layer, refuse):
    """`walk` for a chain on the compiled engine: one `cut_layer` call per activation node (all
    its units, the budget check, the bits) instead of Python per unit; affine nodes run the same
    torch calls on the same views as `walk`, so the complex is the same bit for bit. `refuse(layer,
    estimate, faces, units done, units)` raises when a layer's estimate goes over the budget.
    Returns (vertices [V, 2] (a new array), edges E [E, 4], faces, patterns [F, units], output at the
    vertices)."""
    x0, x1, y0, y1 = box
    xy = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)
    E = np.empty((64, 4), dtype=np.int64)
    E[:4] = _BOX_EDGES
    n_e, n_faces = 4, 1
    patterns = np.zeros((2, 0), dtype=bool)
    x = torch.from_numpy(xy)
    if plane_dev is not None:
        x = plane_dev.to_input(x)
    for node in net.nodes:
        layer = node.layer
        if isinstance(layer, AbstractAffine):
            x = layer.forward(x)
            continue
        shape = x.shape[1:]
        n = shape.numel()
        Z = np.ascontiguousarray(x.reshape(x.shape[0], n).numpy())
        status, done, est, R, n_v, E, n_e, n_faces, patterns = cut_layer(
            Z, xy, E, n_e, n_faces, patterns, rtol, per_face, memory_budget)
        if status == 1:
            raise degenerate_face()
        if status == 3:
            refuse(layer, est, n_faces, done, n)
        xy = np.ascontiguousarray(R[:n_v, n:])
        zv = torch.from_numpy(R[:n_v])[:, :n]
        x = layer.forward(zv if len(shape) == 1 else zv.reshape(n_v, *shape))
    return xy, E[:n_e], n_faces, patterns[1:], x.reshape(x.shape[0], -1)

