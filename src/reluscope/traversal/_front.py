"""The sparse front of exact traversal: the first convolutional layers of a chain, unit by unit.

The dense engine (`_refine`) carries every feature map at every piece's midpoint. On a CNN most
pieces differ from their neighbour by one unit of the first layer, yet each costs a full
convolution of the next layer and passes over its whole map: the tangent paper's CNN at width 64
has 7,081 pieces after its first ReLU and 18,346 after its first max-pool, and the dense engine
spent ~75 s there. Here each unit of a layer is the list of the affine functions of t it takes
along the segment (`_sparse_nb`): a (Leaky)ReLU cuts a unit's functions at their roots, a
convolution adds its inputs' changes (each change of an input touches only the outputs it
feeds), a max-pool follows the upper envelope of its window. The work is proportional to the
changes, not to pieces x map size.

The breakpoints are those of the dense engine, layer by layer: each layer's roots split the
pieces of the layers before it with the same rule (`_pieces._split_at`: within `tol` of a piece's
end or of each other is one breakpoint). Bits are each layer's pattern after each of its events
(`build_table`), shared by the pieces between two events (`_Bits` with row indices). The
rounding check of the dense engine (`_near_zero`, `_maxpool_near_tie`) runs on the few pieces
where a unit or a window's gap can stay within rounding (`act_candidates`, `pool_candidates`).

The front stops before the first layer it does not handle (anything but Conv2d, ChannelAffine,
(Leaky)ReLU and MaxPool2d after the first activation) or before a convolution whose sparse work
would cost more than running it densely on the pieces so far (`_SPARSE_RECORD_COST`). After a
sparse convolution, that convolution is handed over as dense rows, its output at every piece's midpoint computed from the
changes of its inputs (`_conv_nb.conv_rows`), when that costs less than the dense convolution
(`_ROWS_RECORD_COST`); the dense engine takes over after it, or else from the front's last value
at each piece's midpoint, in chunks that fit the memory budget. Chains in float64 on the CPU
only; anything else is the dense engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from types import SimpleNamespace

import numpy as np
import torch

from .._compiled import load_kernels
from ..network import Network
from ..network.layers import AbstractAffine, ChannelAffine, Conv2d, LeakyReLU, MaxPool2d
from ..network.network import INPUT
from ..patterns.bits import PackedPatterns, unpack_patterns
from ._maxpool import _maxpool_near_tie, require_windows
from ._refine import _bytes_per_piece
from ._pieces import _Bits, _near_zero, _PackedTable, _Pieces, _split_at

nb = None  # the kernels (`_sparse_nb`), imported on first use: numba takes a second to import


def _kernels():
    """The compiled kernels, or False when numba is missing (the `fast` extra is optional)."""
    global nb
    if nb is None:
        nb = load_kernels("reluscope.traversal._sparse_nb") or False
    return nb

__all__ = ["front_segments"]

ENABLED = True  # tests switch the front off to compare with the dense engine alone
# One record of a sparse convolution (gather, sort, compensated sums) costs about as much as this
# many multiply-adds of torch's float64 convolution over all pieces (measured on the 2-core CPU:
# bench/traverse_cnn.py, see the module docstring of that script). Only speed depends on it.
_SPARSE_RECORD_COST = 40.0
# A convolution the front hands over as dense rows (`_conv_nb.conv_rows`: the changes applied to
# running sums, every output written at every piece) costs about this many multiply-adds of the
# dense convolution per record it would have had (measured as above). Only speed depends on it.
_ROWS_RECORD_COST = 10.0
_RECORD_BYTES = 24 * 3  # T, A, B of a convolution's record, and up to two records of the activation after it
FORCED: dict[int, str] = {}  # tests: the mode of the front's k-th convolution ("sparse", "rows", "dense"), whatever it costs
TRACE = None  # a list: collects (convolution, records, dense multiply-adds, pieces, "sparse"/"rows"/"dense") (tests, bench)


@dataclass
class _Lists:
    """Every unit's records (see `_sparse_nb`), units in the layer's flattened (C, H, W) order."""

    start: np.ndarray
    count: np.ndarray
    T: np.ndarray
    A: np.ndarray
    B: np.ndarray
    shape: tuple[int, ...]  # the layer's value shape without the batch

    @property
    def records(self) -> int:
        return int(self.count.sum())


@dataclass
class _Layer:
    """One activation layer's bits: the pattern table (one row per event, in time order) and the
    events' times, so a piece's row is the number of events before its midpoint."""

    table: _PackedTable
    times: np.ndarray


@dataclass
class _Front:
    ta: torch.Tensor
    tb: torch.Tensor
    uncertain: torch.Tensor
    layers: list
    out: _Lists
    node: int  # the last node the front computed
    rows: tuple | None = None  # (node, layer, geometry): the convolution after it, handed over as dense rows

    @property
    def bytes(self) -> int:
        """What it holds while the dense engine refines its pieces: tables, lists, pieces, and the
        running sums of a convolution handed over as rows."""
        tables = sum(layer.table.words.numel() + 16 * layer.times.size for layer in self.layers)
        sums = 0 if self.rows is None else 40 * int(np.prod(_conv_out_shape(self.rows[2])))
        return tables + 40 * self.out.T.size + 32 * self.ta.shape[0] + sums


def _keys(n: int) -> np.ndarray:
    """Random 64-bit keys of the table hashes (`build_table`); fixed, so runs repeat exactly."""
    return np.random.default_rng(0).integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, n, dtype=np.int64)


def _empty(n: int, dtype=np.float64) -> np.ndarray:
    return np.empty(n, dtype)


def _offsets(count: np.ndarray) -> np.ndarray:
    return (np.cumsum(count) - count).astype(np.int64)


def _changes_in_time_order(x: _Lists):
    """Every unit's changes (records after its first) as (time, unit, record), sorted by time
    (stable: equal times keep unit order, so sums over them run in one fixed order)."""
    t, unit, slot = nb.changes(x.start, x.count, x.T)
    order = np.argsort(t, kind="stable")
    return t[order], unit[order], slot[order]


def _act(x: _Lists, slope: float):
    """(output lists, events (time, unit, bit on, at a root), first bits) of a (Leaky)ReLU."""
    n = x.start.shape[0]
    ocount, fcount = np.empty(n, np.int64), np.empty(n, np.int64)
    z, zi, zb = _empty(0), np.empty(0, np.int64), np.empty(0, np.bool_)
    bit0 = np.zeros(n, np.bool_)
    nb.act_pass(x.start, x.count, x.T, x.A, x.B, slope, False, zi, ocount, z, z, z, zi, fcount, z, zb, zb, bit0)
    ostart, fstart = _offsets(ocount), _offsets(fcount)
    oT, oA, oB = _empty(int(ocount.sum())), _empty(int(ocount.sum())), _empty(int(ocount.sum()))
    fT, fOn, fRoot = _empty(int(fcount.sum())), np.empty(int(fcount.sum()), np.bool_), np.empty(int(fcount.sum()), np.bool_)
    nb.act_pass(x.start, x.count, x.T, x.A, x.B, slope, True, ostart, ocount, oT, oA, oB, fstart, fcount, fT, fOn,
                fRoot, bit0)
    t, unit, slot, root = nb.flat_events(fstart, fcount, fT, fRoot)
    on = fOn[slot]
    clear, set_ = np.where(on, -1, unit), np.where(on, unit, -1)
    return _Lists(ostart, ocount, oT, oA, oB, x.shape), (t, clear, set_, root), bit0


def _pool_geometry(x: _Lists, layer: MaxPool2d) -> tuple:
    """(C, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw, dh, dw): the max-pool kernels' geometry arguments."""
    c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = layer.kernel_size, layer.stride, layer.padding, layer.dilation
    return (c, h, w, *layer.output_hw(h, w), kh, kw, sh, sw, ph, pw, dh, dw)


def _pool(x: _Lists, layer: MaxPool2d):
    """(output lists, events (time, bit cleared, bit set, at a crossing), first bits) of a max-pool."""
    require_windows(layer, *x.shape[1:])
    geometry = _pool_geometry(x, layer)
    c, _, _, ho, wo, kh, kw = geometry[:7]
    n, k = c * ho * wo, kh * kw
    ocount, fcount = np.empty(n, np.int64), np.empty(n, np.int64)
    z, zi, zb = _empty(0), np.empty(0, np.int64), np.empty(0, np.bool_)
    pos0 = np.zeros(n, np.int64)
    nb.pool_pass(x.start, x.count, x.T, x.A, x.B, *geometry, False, zi, ocount, z, z, z, zi, fcount, z, zi, zb, pos0)
    ostart, fstart = _offsets(ocount), _offsets(fcount)
    m, e = int(ocount.sum()), int(fcount.sum())
    oT, oA, oB = _empty(m), _empty(m), _empty(m)
    fT, fPos, fRoot = _empty(e), np.empty(e, np.int64), np.empty(e, np.bool_)
    nb.pool_pass(x.start, x.count, x.T, x.A, x.B, *geometry, True, ostart, ocount, oT, oA, oB, fstart, fcount, fT,
                 fPos, fRoot, pos0)
    t, unit, slot, root = nb.flat_events(fstart, fcount, fT, fRoot)
    new = fPos[slot]
    old = np.empty_like(new)  # the position before each event: the window's previous event's, or its first
    if new.size:
        old[1:] = new[:-1]
        first = np.ones(new.size, np.bool_)
        first[1:] = unit[1:] != unit[:-1]
        old[first] = pos0[unit[first]]
    bit0 = np.zeros(n * k, np.bool_)
    bit0[np.arange(n) * k + pos0] = True
    out = _Lists(ostart, ocount, oT, oA, oB, (c, ho, wo))
    return out, (t, unit * k + old, unit * k + new, root), bit0


def _table(t: np.ndarray, clear: np.ndarray, set_: np.ndarray, bit0: np.ndarray) -> _Layer:
    """A layer's bits: its pattern after each of its events, in time order (`build_table`)."""
    order = np.argsort(t, kind="stable")
    words, hashes = nb.build_table(bit0, clear[order], set_[order], _keys(bit0.shape[0]))
    return _Layer(_PackedTable(torch.from_numpy(words), bit0.shape[0], torch.from_numpy(hashes)), t[order])


def _conv_geometry(x: _Lists, layer: Conv2d):
    if isinstance(layer.padding, str):
        return None  # "same"/"valid": left to the dense engine
    c, h, w = x.shape
    co, _, kh, kw = layer.weight.shape
    (sh, sw), (ph, pw), (dh, dw) = layer.stride, layer.padding, layer.dilation
    ho, wo = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    return c, h, w, co, ho, wo, kh, kw, sh, sw, ph, pw, dh, dw, layer.groups


def _conv_out_shape(geometry) -> tuple[int, int, int]:
    return geometry[3], geometry[4], geometry[5]


def _conv_at_start(x: _Lists, layer: Conv2d) -> tuple[np.ndarray, np.ndarray]:
    """The outputs' functions at t = 0: the dense convolution of every unit's first record."""
    first = x.start
    a0 = layer.forward(torch.from_numpy(x.A[first]).reshape((1,) + x.shape)).reshape(-1).numpy()
    b0 = layer.linear(torch.from_numpy(x.B[first]).reshape((1,) + x.shape)).reshape(-1).numpy()
    return a0, b0


def _weights(layer: Conv2d) -> tuple[np.ndarray, np.ndarray]:
    weight = layer.weight.detach().cpu().numpy()
    return weight, (np.zeros(weight.shape[0]) if layer.bias is None else layer.bias.detach().cpu().numpy())


def _conv(x: _Lists, layer: Conv2d, geometry, bound: np.ndarray) -> _Lists:
    c, h, w, co, ho, wo, kh, kw, sh, sw, ph, pw, dh, dw, groups = geometry
    a0, b0 = _conv_at_start(x, layer)
    t, unit, slot = _changes_in_time_order(x)
    ostart = _offsets(bound)
    m = int(bound.sum())
    oT, oA, oB, ocount = _empty(m), _empty(m), _empty(m), np.empty(co * ho * wo, np.int64)
    weight, bias = _weights(layer)
    nb.conv_fill(x.start, x.A, x.B, t, unit, slot, weight, bias, a0, b0, c, h, w, co, ho, wo, sh,
                 sw, ph, pw, dh, dw, groups, ostart, ocount, oT, oA, oB)
    return _Lists(ostart, ocount, oT, oA, oB, (co, ho, wo))


def _channel_affine(x: _Lists, layer: ChannelAffine) -> _Lists:
    """Scale and shift per channel, on every record (each is a whole affine function of t)."""
    c = x.shape[0]
    per_unit = int(np.prod(x.shape[1:]))
    unit = np.repeat(np.arange(c * per_unit), x.count)
    rows = np.repeat(x.start, x.count) + (np.arange(unit.size) - np.repeat(_offsets(x.count), x.count))
    ch = unit // per_unit
    scale = layer.scale.detach().to(torch.float64).cpu().numpy()[ch]
    shift = layer.shift.detach().to(torch.float64).cpu().numpy()[ch]
    A, B = x.A.copy(), x.B.copy()
    A[rows] = x.A[rows] * scale + shift
    B[rows] = x.B[rows] * scale
    return _Lists(x.start, x.count, x.T, A, B, x.shape)


# ---------------------------------------------------------------- pieces and the rounding check


def _split(ta, tb, uncertain, roots: np.ndarray, tol: float):
    """The pieces after splitting at `roots` with the dense engine's rule (`_split_at`)."""
    if roots.size == 0:
        return ta, tb, uncertain
    v = torch.from_numpy(roots)
    row = torch.searchsorted(tb, v).clamp_(max=tb.shape[0] - 1)
    split = _split_at(ta, tb, row, v, tol)
    if split is None:
        return ta, tb, uncertain
    parent, left, right = split
    return left, right, uncertain.index_select(0, parent)


def _dense_values(net: Network, node: int, x0: torch.Tensor, dx: torch.Tensor, tm: torch.Tensor):
    """(h, dh) of node `node`'s input at the times tm, by the dense forward (jvp) of the chain."""
    shape = (-1,) + (1,) * x0.dim()  # x0: one input [C, H, W]
    h, dh = x0[None] + tm.reshape(shape).to(x0.dtype) * dx[None], dx[None].expand((tm.shape[0],) + dx.shape)
    for i in range(node):
        layer = net.nodes[i].layer
        h, dh = (layer.forward(h), layer.linear(dh)) if isinstance(layer, AbstractAffine) else layer.jvp(h, dh)
    return h, dh


def _flag_rounding(net, node, x0, dx, ta, tb, uncertain, marks: np.ndarray, dtol: float, bits: _Layer) -> bool:
    """The dense engine's rounding test of node `node` on the marked pieces, flagging them in
    place; and whether the front's bits there (`bits`) are the dense ones. On these pieces a unit
    or a window's gap is within rounding, where the front's sums (other additions than a
    convolution's) may decide otherwise than the dense engine: False sends the segment to it."""
    rows = torch.from_numpy(np.flatnonzero(marks))
    if rows.numel() == 0:
        return True
    a, b = ta.index_select(0, rows), tb.index_select(0, rows)
    tm = (a + b) / 2
    h, dh = _dense_values(net, node, x0, dx, tm)
    layer = net.nodes[node].layer
    n = rows.shape[0]
    if isinstance(layer, MaxPool2d):
        top, index = layer.pool(h)
        near = _maxpool_near_tie(layer, SimpleNamespace(ta=a, tb=b), h, dh, dtol, top, layer.take(dh, index))
    else:
        near = _near_zero(h.reshape(n, -1), dh.reshape(n, -1), (b - a) / 2, dtol)
    uncertain.index_copy_(0, rows, uncertain.index_select(0, rows) | near)
    at = torch.from_numpy(np.searchsorted(bits.times, tm.numpy(), side="right"))
    front = unpack_patterns(PackedPatterns(bits.table.words.index_select(0, at), bits.table.n_units))
    return torch.equal(front, layer.bits(h))


# ---------------------------------------------------------------- the front


def _usable(net: Network, x0: torch.Tensor) -> int:
    """The index of the first activation node when the front may run (a chain, float64, CPU,
    numba, image inputs, a convolution after the first activation), else -1."""
    if not ENABLED or not net.is_chain or x0.dtype != torch.float64 or x0.device.type != "cpu" or not _kernels():
        return -1
    if x0.dim() != 4:  # a batch of [C, H, W] images
        return -1
    first = next((i for i, node in enumerate(net.nodes) if not isinstance(node.layer, AbstractAffine)), None)
    if first is None or not isinstance(net.nodes[first].layer, (LeakyReLU, MaxPool2d)):
        return -1
    rest = [node.layer for node in net.nodes[first + 1:]]
    for layer in rest:
        if isinstance(layer, Conv2d):
            return first
        if not isinstance(layer, (LeakyReLU, MaxPool2d, ChannelAffine)):
            return -1
    return -1


def _run(net: Network, first: int, last_needed: int, x0: torch.Tensor, x1: torch.Tensor, tol: float, dtol: float,
         budget: int) -> _Front | None:
    """The front on one segment x0 -> x1 ([C, H, W] each): None when its first convolution would
    run densely anyway (then the front gains nothing), or when a bit decided within rounding came
    out otherwise than the dense engine's (`_flag_rounding`): the dense engine takes the segment."""
    dx = x1 - x0
    h, dh = x0[None], dx[None]
    for i in range(first):
        layer = net.nodes[i].layer
        h, dh = layer.forward(h), layer.linear(dh)
    if h.dim() != 4:
        return None
    n = h[0].numel()
    lists = _Lists(np.arange(n, dtype=np.int64), np.ones(n, np.int64), np.zeros(n), h[0].reshape(-1).cpu().numpy().copy(),
                   dh[0].reshape(-1).cpu().numpy().copy(), tuple(h.shape[1:]))
    ta = torch.zeros(1, dtype=torch.float64)
    tb = torch.ones(1, dtype=torch.float64)
    uncertain = torch.zeros(1, dtype=torch.bool)
    layers, node, sparse_conv, rows, convolutions = [], first - 1, False, None, 0
    for i in range(first, last_needed + 1):
        layer = net.nodes[i].layer
        if isinstance(layer, Conv2d):
            geometry = _conv_geometry(lists, layer)
            if geometry is None:
                break
            bound = nb.conv_bound(lists.count, *geometry)
            records = int(bound.sum())
            co, _, kh, kw = layer.weight.shape
            macs = 2 * ta.shape[0] * bound.shape[0] * (lists.shape[0] // layer.groups) * kh * kw
            sparse = records * _SPARSE_RECORD_COST <= macs and records * _RECORD_BYTES <= budget // 2
            mode = "sparse" if sparse else "rows" if records * _ROWS_RECORD_COST <= macs else "dense"
            mode = FORCED.get(convolutions, mode)
            if mode == "rows" and not sparse_conv:
                # rows only after a sparse convolution: right after the first activation, the
                # front's values there (A + B t) round otherwise than the dense engine's first
                # layer, and a tie at a segment's end came out as an extra uncertain sliver
                mode = "dense"
            convolutions += 1
            if TRACE is not None:
                TRACE.append((layer.name, records, macs, ta.shape[0], mode))
            if mode == "rows":
                rows = (i, layer, geometry)
            if mode != "sparse":
                break
            lists, sparse_conv = _conv(lists, layer, geometry, bound), True
        elif isinstance(layer, ChannelAffine):
            lists = _channel_affine(lists, layer)
        elif isinstance(layer, (LeakyReLU, MaxPool2d)):
            relu = isinstance(layer, LeakyReLU)
            out, (t, clear, set_, root), bit0 = _act(lists, float(layer.negative_slope)) if relu else _pool(lists, layer)
            ta, tb, uncertain = _split(ta, tb, uncertain, t[root], tol)
            layers.append(_table(t, clear, set_, bit0))
            inp = (lists.start, lists.count, lists.T, lists.A, lists.B)
            marks = (nb.act_candidates(*inp, ta.numpy(), tb.numpy(), dtol) if relu else
                     nb.pool_candidates(*inp, out.start, out.count, out.T, out.A, out.B, *_pool_geometry(lists, layer),
                                        ta.numpy(), tb.numpy(), dtol))
            if not _flag_rounding(net, i, x0, dx, ta, tb, uncertain, marks, dtol, layers[-1]):
                return None  # a decision within rounding went otherwise than the dense engine's
            lists = out
        else:
            break
        node = i
    if not sparse_conv:
        return None
    return _Front(ta, tb, uncertain, layers, lists, node, rows)


def front_segments(net: Network, plan: list, x0: torch.Tensor, x1: torch.Tensor, tol: float, dtol: float,
                   budget: int, include_output: bool):
    """None when the front does not apply to this network; else an iterator over the segments'
    pieces after the front, in chunks that fit the budget (`_chunks`: plan step to continue from,
    `_Pieces`, chunk size the rest of the plan affords, the chunk's share of its segment's pieces
    for progress bars, and a redo or None). A segment on which the front would gain nothing
    (`_run` returns None) comes as its one piece [0, 1] from step 0."""
    first = _usable(net, x0)
    if first < 0:
        return None
    return _segments(net, plan, first, x0, x1, tol, dtol, budget, include_output)


def _segments(net, plan, first, x0, x1, tol, dtol, budget, include_output):
    last_needed = max(step.node for step in plan)
    for s in range(x0.shape[0]):
        front = _run(net, first, last_needed, x0[s], x1[s], tol, dtol, budget)
        if front is None:
            ones = torch.ones(1, dtype=torch.float64)
            yield 0, _Pieces(torch.full((1,), s, dtype=torch.long), 0 * ones, ones,
                             {INPUT: (x0[s:s + 1] + 0.5 * (x1[s:s + 1] - x0[s:s + 1]), x1[s:s + 1] - x0[s:s + 1])},
                             _Bits(), torch.zeros(1, dtype=torch.bool)), None, 1.0, None
            continue
        after = _step_after(plan, front.node)
        per_piece = _bytes_per_piece(net, x0[:1], include_output, start=after)
        conv = None if front.rows is None else _Rows(front.rows, front.out, _step_after(plan, front.rows[0]))
        if conv is not None:
            per_piece = max(per_piece, _bytes_per_piece(net, x0[:1], include_output, start=conv.step))
        rest = budget - front.bytes
        redo_size = max(2, rest // _bytes_per_piece(net, x0[:1], include_output))  # the whole plan per piece
        yield from _chunks(s, after, front, conv, max(2, rest // per_piece), (x0[s], x1[s], redo_size))


def _step_after(plan: list, node: int) -> int:
    """The plan's step after node `node`, or the output signs (node -2) when it computed the last node."""
    return next((k for k, st in enumerate(plan) if st.node > node or st.node < 0), len(plan))


class _Rows:
    """A convolution handed over as dense rows (`conv_rows`): its weights laid out for the kernel,
    and its running sums, carried from chunk to chunk (chunks come in time order)."""

    def __init__(self, rows: tuple, out: _Lists, step: int):
        self.node, layer, self.geometry = rows
        self.step = step  # the plan step after the convolution
        self.shape = _conv_out_shape(self.geometry)
        weight, self.bias = _weights(layer)
        self.weight = np.ascontiguousarray(weight.transpose(1, 2, 3, 0))  # [C / groups, kh, kw, Co]: a change's channels together
        self.sums = [np.empty(int(np.prod(self.shape))) for _ in range(4)]
        blocks = nb.row_blocks(self.shape[0])
        self.live = np.empty((blocks, self.shape[1] * self.shape[2], self.geometry[-1]), np.int64)
        self.next = np.zeros(blocks, np.int64)
        nb.conv_start(out.start, out.A, out.B, *_conv_at_start(out, layer), *self.geometry, *self.sums, self.live)

    def at(self, out: _Lists, changes: tuple, tm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = int(np.prod(self.shape))
        h, dh = np.empty((tm.shape[0], n)), np.empty((tm.shape[0], n))
        g = self.geometry
        nb.conv_rows(out.A, out.B, *changes, self.weight, self.bias, *g[:6], *g[8:], *self.sums, self.live, self.next,
                     tm, h, dh)
        return h, dh


def _chunks(s: int, after: int, front: _Front, conv: _Rows | None, max_pieces: int, segment: tuple):
    """The front's pieces in chunks: (plan step to continue from, `_Pieces`, chunk size, share of
    the segment's pieces, redo). The values are the front's last ones at the pieces' midpoints
    (`materialize`), or the output of the convolution it hands over as rows (`conv`).

    The front's sums (and the rows') round otherwise than the dense engine's convolutions: where
    a unit or a window's gap comes within rounding after the hand-over, the two arithmetics can
    decide a bit differently (found by fuzzing: a tie the dense convolution computes exactly
    came out 1 ulp apart; a max-pool argmax flipped where BatchNorm amplified the inputs'
    rounding). So when a piece of a chunk ends flagged uncertain, the walk discards the chunk and
    runs `redo()` instead: the same pieces from the segment's input (x0 + t dx at their midpoints)
    through the whole plan, the dense engine's own arithmetic at every layer, in sub-chunks of
    `segment[2]` pieces that fit the budget."""
    tm = ((front.ta + front.tb) / 2).numpy()
    rows = [torch.from_numpy(np.searchsorted(layer.times, tm, side="right")) for layer in front.layers]
    out = front.out
    changes = _changes_in_time_order(out)

    def pieces(a: int, b: int, node: int, h: np.ndarray, dh: np.ndarray, shape: tuple) -> _Pieces:
        vals = {node: (torch.from_numpy(h).reshape((b - a,) + shape), torch.from_numpy(dh).reshape((b - a,) + shape))}
        bits = _Bits([(layer.table, r[a:b]) for layer, r in zip(front.layers, rows)])
        seg = torch.full((b - a,), s, dtype=torch.long)
        # a copy: the walk ORs its flags into the chunk's in place, and a redo must start from the front's
        return _Pieces(seg, front.ta[a:b], front.tb[a:b], vals, bits, front.uncertain[a:b].clone())

    def front_values(a: int, b: int) -> _Pieces:
        h, dh = np.empty((b - a, out.start.shape[0])), np.empty((b - a, out.start.shape[0]))
        nb.materialize(out.start, out.count, out.T, out.A, out.B, *changes, tm[a:b], h, dh)
        return pieces(a, b, front.node, h, dh, out.shape)

    def from_input(a: int, b: int):
        x0, x1, size = segment
        dx = x1 - x0
        for c in range(a, b, size):
            d = min(b, c + size)
            t = torch.from_numpy(tm[c:d]).to(x0.dtype).reshape((-1,) + (1,) * x0.dim())
            vals = {INPUT: (x0[None] + t * dx[None], dx[None].expand((d - c,) + dx.shape).clone())}
            yield _Pieces(torch.full((d - c,), s, dtype=torch.long), front.ta[c:d], front.tb[c:d], vals, _Bits(),
                          torch.zeros(d - c, dtype=torch.bool)), size

    for a in range(0, tm.shape[0], max_pieces):
        b = min(tm.shape[0], a + max_pieces)
        share = (b - a) / tm.shape[0]
        redo = partial(from_input, a, b)
        if conv is None:
            yield after, front_values(a, b), max_pieces, share, redo
        else:
            # no local name for the rows: the walk frees a value after its last reader, and a suspended
            # generator holding them would keep them through the walk and its redo (review)
            yield conv.step, pieces(a, b, conv.node, *conv.at(out, changes, tm[a:b]), conv.shape), max_pieces, share, redo
