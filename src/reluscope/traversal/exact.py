"""Exact traversal of straight segments through a piecewise-linear network.

Along gamma(t) = x0 + t (x1 - x0) every pre-activation is piecewise affine in t. We refine a list
of intervals layer by layer, for all intervals of all segments at once: inside an interval the
pattern of every earlier layer is fixed, so the layer input is h(t) = h(t_mid) + (t - t_mid) dh,
carried as the pair (h(t_mid), dh). An affine layer maps the pair (forward, linear); an activation
layer first splits each interval at the zeros of its units (ReLU, LeakyReLU, output signs) or at
the points where a window element overtakes the current argmax (MaxPool2d, repeated until no piece
contains a crossing), then applies its jvp on each piece. Finally adjacent pieces with equal
patterns are merged: regions are convex, so such pieces lie in one region (a unit touching zero
without crossing, a max-pool tie that did not change the argmax).

Numerics (float64 throughout): a root closer than `TOLERANCE` (in t, segments have length 1) to an
end of its interval is ignored and roots closer than `TOLERANCE` to each other are one breakpoint,
so pieces shorter than 1e-12 are not resolved (their sliver is absorbed by a neighbour). Several
units crossing at one t give one breakpoint; a segment starting or ending on a boundary gets the
pattern of the open piece next to the end; units identically zero along a piece keep bit 0 and
never split it; x0 == x1 gives t = [0, 1] and the pattern at x0. One limit of float64: a unit
whose pre-activation vanishes on a whole piece only through cancellation (e.g. (x - 1) - (x + 1) + 2
in a hand-built net) is computed as 0 or +-1e-16, so its bit follows rounding, exactly as
`Network.bits` at that point would; random or trained weights never do this.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .._checks import (
    DEFAULT_MEMORY_BUDGET, MemoryBudgetError, as_float_tensor, as_single, check_batch, check_int, check_memory_budget,
    rows_within_budget, same_device,
)
from ..network import Network, to_network
from ..network.network import INPUT
from ..network.layers import AbstractActivation, AbstractAffine, Conv2d, LeakyReLU, MaxPool2d

if TYPE_CHECKING:
    from .._types import ArrayLike
    from .._types import ModelLike
from .precision import Precision, PrecisionWarning, analysed_dtype, as_precision, decision_tolerance, dtype_name, t_tolerance
from .results import TOLERANCE, Traversal, Traversals

__all__ = ["Traversal", "Traversals", "traverse", "traverse_many", "traverse_pairs", "TOLERANCE"]
_WHAT = "exact traversal (for smooth activations use reluscope.traverse_bisection)"


# ---------------------------------------------------------------- interval bookkeeping


@dataclass
class _Pieces:
    """All current intervals of a batch of segments, in order (segment, then t).

    `vals` holds the live node values of the graph: vals[j] = (h, dh), node j's output (j = -1:
    the network input) at each interval's midpoint and its derivative in t. A chain holds one
    value at a time; a residual block also holds its shortcut until the addition reads it."""

    seg: torch.Tensor  # long [I]
    ta: torch.Tensor  # float64 [I]
    tb: torch.Tensor  # float64 [I]
    vals: dict  # node index -> (h [I, ...], dh [I, ...])
    bits: _Bits  # the pattern bits of every activation node so far
    uncertain: torch.Tensor  # bool [I]: some decision so far was within rounding

    @property
    def tm(self) -> torch.Tensor:
        return (self.ta + self.tb) / 2

class _Bits:
    """The pattern bits of every activation layer so far: each layer's bits are stored once, as
    computed (a table [R, units_l]), with the table row of every current piece (None: row i).
    Splitting a piece copies one index per layer, not its bits (97k bits per piece on the
    tangent CNN at width 64), and adjacent pieces that share a row need no comparison."""

    def __init__(self, parts=()):
        self.parts = list(parts)

    def append(self, bits: torch.Tensor) -> None:
        self.parts.append((bits, None))

    def __len__(self) -> int:
        return len(self.parts)

    def index_select(self, rows: torch.Tensor) -> _Bits:
        return _Bits([(t, rows if i is None else i.index_select(0, rows)) for t, i in self.parts])

    def rows(self, rows: torch.Tensor) -> torch.Tensor:
        """bool [len(rows), units]: the patterns of the pieces `rows`."""
        if not self.parts:
            return torch.zeros(rows.shape[0], 0, dtype=torch.bool, device=rows.device)
        return torch.cat([t.index_select(0, rows if i is None else i.index_select(0, rows)) for t, i in self.parts], 1)

    def same_as_previous(self, n: int, device) -> torch.Tensor:
        """bool [n - 1]: piece j has the pattern of piece j - 1."""
        same = torch.ones(max(n - 1, 0), dtype=torch.bool, device=device)
        for t, i in self.parts:
            if i is None:
                same &= (t[1:] == t[:-1]).all(dim=1)
                continue
            differ = (i[1:] != i[:-1]).nonzero().squeeze(1)
            if differ.numel():
                a, b = i.index_select(0, differ + 1), i.index_select(0, differ)
                equal = (t.index_select(0, a) == t.index_select(0, b)).all(dim=1)
                same.index_copy_(0, differ, same.index_select(0, differ) & equal)
        return same

# Indexing goes through index_select / masked_select / index_copy_ only: on CPU, advanced
# indexing (x[idx], x[mask], x[idx] = v) is up to 20x slower for these 1-D arrays.


def _flat_nonzero(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, flat index) of the True entries of a 2-D mask, row-major."""
    flat = mask.reshape(-1).nonzero().squeeze(1)
    return torch.div(flat, mask.shape[1], rounding_mode="floor"), flat


def _split_points(ta: torch.Tensor, tb: torch.Tensor, roots: torch.Tensor, tol: float):
    """Split each interval at its roots (rows of `roots` [I, R]; NaN/inf/outside are ignored).

    Returns (parent [P], left [P], right [P]) for the new pieces in order, or None if nothing splits.
    """
    valid = (roots > (ta + tol)[:, None]) & (roots < (tb - tol)[:, None])
    row, flat = _flat_nonzero(valid)
    return _split_at(ta, tb, row, roots.reshape(-1).index_select(0, flat), tol)


def _split_at(ta: torch.Tensor, tb: torch.Tensor, row: torch.Tensor, v: torch.Tensor, tol: float):
    """Split interval row[j] at v[j] (any order; ends and near-duplicates are dropped)."""
    inside = (v > ta.index_select(0, row) + tol) & (v < tb.index_select(0, row) - tol)
    row, v = row.masked_select(inside), v.masked_select(inside)
    if row.numel() == 0:
        return None
    order = torch.argsort(v)
    row = row.index_select(0, order)
    by_row = torch.argsort(row, stable=True)  # now by interval, then by t
    row, v = row.index_select(0, by_row), v.index_select(0, order.index_select(0, by_row))
    keep = torch.ones_like(row, dtype=torch.bool)
    keep[1:] = (row[1:] != row[:-1]) | (v[1:] - v[:-1] > tol)  # ties: one breakpoint
    row, v = row.masked_select(keep), v.masked_select(keep)
    n = ta.shape[0]
    k = torch.bincount(row, minlength=n)
    pieces = k + 1
    parent = torch.repeat_interleave(torch.arange(n, device=ta.device), pieces)
    first = torch.cumsum(pieces, 0) - pieces
    left = torch.empty(parent.shape[0], dtype=ta.dtype, device=ta.device)
    right = torch.empty_like(left)
    left.index_copy_(0, first, ta)
    right.index_copy_(0, first + k, tb)
    rank = torch.arange(row.shape[0], device=ta.device) - (torch.cumsum(k, 0) - k).index_select(0, row)
    pos = first.index_select(0, row) + rank
    right.index_copy_(0, pos, v)
    left.index_copy_(0, pos + 1, v)
    return parent, left, right


def _apply_split(p: _Pieces, split) -> _Pieces:
    """The pieces after a split: every live value is moved to its new piece's midpoint (exact,
    each value is affine in t on its piece), not only the one being split on."""
    parent, left, right = split
    shift = (left + right) / 2 - p.tm.index_select(0, parent)
    vals = {}
    for j, (h, dh) in p.vals.items():
        dh = dh.index_select(0, parent)
        h = h.index_select(0, parent)
        h.addcmul_(dh, shift.to(h.dtype).reshape((-1,) + (1,) * (dh.dim() - 1)))
        vals[j] = (h, dh)
    return _Pieces(p.seg.index_select(0, parent), left, right, vals, p.bits.index_select(parent),
                   p.uncertain.index_select(0, parent))


def _sign_split(p: _Pieces, z: torch.Tensor, dz: torch.Tensor, tol: float):
    """Where to split at the zeros of every unit of z (a live value): (parent, left, right) or
    None (applied in chunks by `_descend` when the new pieces would not fit in memory at once).
    A zero t* = tm - z/dz lies within half-width w of the midpoint iff |z| < w |dz|: that test
    needs no division over all units (dz = 0 never splits), and the roots are computed for the
    few candidates only."""
    z, dz = z.reshape(z.shape[0], -1), dz.reshape(z.shape[0], -1)
    w = (p.tb - p.ta) / 2 - tol
    row, flat = _flat_nonzero(torch.lt(z.abs(), dz.abs().mul_(w[:, None].to(dz.dtype))))
    roots = p.tm.index_select(0, row) - z.reshape(-1).index_select(0, flat) / dz.reshape(-1).index_select(0, flat)
    return _split_at(p.ta, p.tb, row, roots, tol)


def _select(p: _Pieces, rows: torch.Tensor) -> _Pieces:
    vals = {j: (h.index_select(0, rows), dh.index_select(0, rows)) for j, (h, dh) in p.vals.items()}
    return _Pieces(p.seg.index_select(0, rows), p.ta.index_select(0, rows), p.tb.index_select(0, rows),
                   vals, p.bits.index_select(rows), p.uncertain.index_select(0, rows))


def _near_zero(z: torch.Tensor, dz: torch.Tensor, half: torch.Tensor, dtol: float) -> torch.Tensor:
    """bool [I]: some unit stays within dtol of its layer's scale over the whole piece (so its
    sign is decided by rounding). z, dz [I, n] at the midpoint, half [I] the half-widths.

    A unit exactly 0 with derivative exactly 0 is not counted: its bit 0 is the definition's
    answer for a unit that is zero on the piece (dead rows, zero biases after an all-off layer,
    exact cancellation of representable values); float64 rounding leaves +-1e-17, not 0, when it
    decides."""
    reach = z.abs().to(torch.float64) + dz.abs().to(torch.float64) * half[:, None]
    scale = reach.amax(1, keepdim=True)
    return ((reach <= dtol * scale) & (reach > 0)).any(1)


def _window_elements(layer: MaxPool2d, z: torch.Tensor, fill: float) -> list:
    """The kh * kw elements of every window, row-major, as strided views [B, C, Ho, Wo] (no copy
    without padding). F.unfold (im2col) took 80% of a CNN traversal's time for the same values."""
    ph, pw = layer.padding
    if ph or pw:
        z = F.pad(z, (pw, pw, ph, ph), value=fill)
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.stride, layer.dilation
    ho, wo = (z.shape[2] - dh * (kh - 1) - 1) // sh + 1, (z.shape[3] - dw * (kw - 1) - 1) // sw + 1
    return [z[:, :, i * dh: i * dh + sh * (ho - 1) + 1: sh, j * dw: j * dw + sw * (wo - 1) + 1: sw]
            for i in range(kh) for j in range(kw)]


def _maxpool_crossings(layer: MaxPool2d, h: torch.Tensor, dh: torch.Tensor, tm: torch.Tensor, half: torch.Tensor):
    """(row, t) of the points where a window element meets its window's max at the midpoint, for
    the elements that can (interval bound: gap < half * |slope difference|, as in `_sign_split`;
    the argmax itself and elements that stay below it on the whole piece need no division)."""
    top, index = layer.pool(h)
    dtop = layer.take(dh, index)
    rows, roots = [], []
    for e, de in zip(_window_elements(layer, h, float("-inf")), _window_elements(layer, dh, 0.0)):
        gap, slope = top - e, de - dtop  # element - max = -gap + (t - tm) slope
        row, flat = _flat_nonzero(torch.lt(gap, slope.abs().mul_(half.reshape(-1, 1, 1, 1))).reshape(h.shape[0], -1))
        if row.numel():
            rows.append(row)
            roots.append(tm.index_select(0, row) + gap.reshape(-1).index_select(0, flat) / slope.reshape(-1).index_select(0, flat))
    if not rows:
        return None
    return torch.cat(rows), torch.cat(roots)


def _split_maxpool(layer: MaxPool2d, p: _Pieces, j: int, tol: float, max_pieces: int | None = None):
    """Split until every piece keeps one argmax per window of value j (the pool's input): split at the points where some window
    element meets the argmax at the piece's midpoint, then look again at the new pieces only
    (a piece with no crossing is settled). Pieces are tracked as (source row of p, ta, tb) and
    materialised once at the end (h is affine on a source row, dh constant), so a pass costs
    only the pieces still unsettled. Returns (pieces, settled); settled is False (and p is
    returned unchanged) when the result would outgrow `max_pieces`: the caller refines p in chunks."""
    n = p.seg.shape[0]
    src, ta, tb = torch.arange(n, device=p.seg.device), p.ta, p.tb
    active = src  # indices into (src, ta, tb) still to examine
    hj_h, hj_dh = p.vals[j]
    k = layer.kernel_size[0] * layer.kernel_size[1]
    step = max(1, (max_pieces or n) // 2)
    for it in range(4 * k + 16):
        found_rows, found_t = [], []
        for a in range(0, active.shape[0], step):
            rows = active[a:a + step]
            if it == 0:  # every piece as it is: views, no copy
                lo, hi, h, dh = p.ta[a:a + step], p.tb[a:a + step], hj_h[a:a + step], hj_dh[a:a + step]
                tm = (lo + hi) / 2
            else:
                s = src.index_select(0, rows)
                lo, hi = ta.index_select(0, rows), tb.index_select(0, rows)
                tm = (lo + hi) / 2
                dh = hj_dh.index_select(0, s)
                h = hj_h.index_select(0, s).addcmul_(dh, (tm - p.tm.index_select(0, s)).to(dh.dtype).reshape((-1,) + (1,) * (dh.dim() - 1)))
            got = _maxpool_crossings(layer, h, dh, tm, ((hi - lo) / 2 - tol).to(h.dtype))
            if got is not None:
                found_rows.append(rows.index_select(0, got[0]))
                found_t.append(got[1])
        if not found_rows:
            break
        split = _split_at(ta, tb, torch.cat(found_rows), torch.cat(found_t), tol)
        if split is None:
            break
        parent, ta, tb = split
        moved = torch.bincount(parent, minlength=src.shape[0]) > 1  # rows that were split
        src = src.index_select(0, parent)
        active = moved.index_select(0, parent).nonzero().squeeze(1)
        if max_pieces is not None and src.shape[0] > max_pieces and n > 1:
            return p, False
    else:
        raise RuntimeError(f"layer {layer.name!r}: max-pool splitting did not settle; please report this input")
    if src.shape[0] == n:
        return p, True
    return _apply_split(p, (src, ta, tb)), True


def _affine_pieces(layer: AbstractAffine, h: torch.Tensor, dh: torch.Tensor, budget: int):
    """(layer.forward(h), layer.linear(dh)) for all pieces. A convolution runs in row chunks:
    torch's float64 convolution on the CPU unfolds its whole batch (in_channels * kh * kw values
    per output position: 5 MB per piece for the tangent CNN's second conv at width 64, 35x its
    output), which took a width-32 traversal to 9 GB against a 2 GiB budget. The unfolded
    chunk gets a quarter of the budget."""
    n = h.shape[0]
    if not isinstance(layer, Conv2d) or n <= 1:
        return layer.forward(h), layer.linear(dh)
    first = layer.forward(h[:1])
    w = layer.weight
    per_row = w.shape[1] * layer.groups * w.shape[2] * w.shape[3] * first[0, 0].numel() * h.element_size()
    rows = max(1, budget // 4 // max(per_row, 1))
    if rows >= n:
        return layer.forward(h), layer.linear(dh)
    out, dout = first.new_empty((n,) + first.shape[1:]), first.new_empty((n,) + first.shape[1:])
    for a in range(0, n, rows):
        out[a:a + rows] = layer.forward(h[a:a + rows])
        dout[a:a + rows] = layer.linear(dh[a:a + rows])
    return out, dout


def _leaky_relu_jvp_(layer: LeakyReLU, z: torch.Tensor, dz: torch.Tensor, on: torch.Tensor):
    """`layer.jvp(z, dz)` computed in place: z and dz belong to the traversal, and the pieces'
    tensors are the largest it holds, so saving two allocations per layer matters."""
    if layer.negative_slope:
        return F.leaky_relu_(z, layer.negative_slope), dz.mul_(torch.full_like(dz, layer.negative_slope).masked_fill_(on, 1.0))
    return z.clamp_(min=0), dz.masked_fill_(~on, 0.0)


def _maxpool_near_tie(layer: MaxPool2d, p: _Pieces, h: torch.Tensor, dh: torch.Tensor, dtol: float,
                      top: torch.Tensor, dtop: torch.Tensor) -> torch.Tensor:
    """bool [I]: in some window, an element other than the argmax stays within rounding of the
    max over the whole piece. Exact ties (two zeros after a ReLU, the argmax itself) have reach
    0 and are exact. `top`, `dtop`: the pooled max and its derivative (`_maxpool_jvp`)."""
    top, dtop = top.to(torch.float64), dtop.to(torch.float64)
    half = ((p.tb - p.ta) / 2).reshape(-1, 1, 1, 1)
    elements = _window_elements(layer, h, 0.0)  # padding 0 only for the scale: |0| never raises it
    scale = torch.stack([e.abs().flatten(1).amax(1) for e in elements], 1).amax(1).to(torch.float64)
    cut = (dtol * scale).reshape(-1, 1, 1, 1)
    near = torch.zeros(h.shape[0], dtype=torch.bool, device=h.device)
    for e, de in zip(_window_elements(layer, h, float("-inf")), _window_elements(layer, dh, 0.0)):
        reach = (de.to(torch.float64) - dtop).abs_().mul_(half).add_(top - e.to(torch.float64))
        near |= ((reach <= cut) & (reach > 0)).flatten(1).any(1)
    return near


def _maxpool_jvp(layer: MaxPool2d, p: _Pieces, h: torch.Tensor, dh: torch.Tensor, dtol: float):
    """Max pooling on settled pieces with one pooling pass: marks near ties in p.uncertain,
    appends the one-hot argmax bits to p.bits and returns (h, dh) after the layer."""
    top, index = layer.pool(h)
    dtop = layer.take(dh, index)
    p.uncertain |= _maxpool_near_tie(layer, p, h, dh, dtol, top, dtop)
    k = layer.kernel_size[0] * layer.kernel_size[1]
    p.bits.append(F.one_hot(layer._window_position(index, h.shape[-1]), k).bool().reshape(top.shape[0], -1))
    return top, dtop


def _merge_equal(seg, ta, tb, patterns, uncertain):
    """Merge adjacent pieces of one segment whose patterns (a bool tensor or `_Bits`) are equal."""
    if isinstance(patterns, _Bits):
        same = (seg[1:] == seg[:-1]) & patterns.same_as_previous(seg.shape[0], seg.device)
    else:
        same = (seg[1:] == seg[:-1]) & (patterns[1:] == patterns[:-1]).all(dim=1)
    start = torch.ones_like(seg, dtype=torch.bool)
    start[1:] = ~same
    end = torch.ones_like(start)
    end[:-1] = start[1:]
    first, last = start.nonzero().squeeze(1), end.nonzero().squeeze(1)
    group = torch.cumsum(start, 0) - 1  # merged piece of each piece
    merged = torch.zeros(first.shape[0], dtype=torch.bool, device=seg.device)
    merged.index_put_((group,), uncertain, accumulate=True)
    rows = patterns.rows(first) if isinstance(patterns, _Bits) else patterns.index_select(0, first)
    return seg.index_select(0, first), ta.index_select(0, first), tb.index_select(0, last), rows, merged


# ---------------------------------------------------------------- the plan: which nodes, when to free


class _OutputSigns:
    """The output units' signs as a last pseudo-activation (include_output)."""

    name = "output"


@dataclass(frozen=True)
class _Step:
    """One node of the walk: node index `node` (-2 for the output signs), its layer and inputs,
    the values that nobody reads after it (`free`), and whether its own output is read later."""

    node: int
    layer: object
    inputs: tuple[int, ...]
    free: tuple[int, ...]
    used: bool


def _plan(net: Network, include_output: bool) -> list[_Step]:
    """The nodes a traversal must run, in topological order: those that feed an activation (or
    the output, with include_output). Nothing after the last activation can change the pattern,
    and a branch that only feeds the output is not computed at all."""
    nodes = net.nodes
    acts = [i for i, n in enumerate(nodes) if isinstance(n.layer, AbstractActivation)]
    needed = set(acts)
    if include_output:
        needed.add(len(nodes) - 1)
    for i in range(len(nodes) - 1, -1, -1):
        if i in needed:
            needed.update(j for j in nodes[i].inputs if j != INPUT)
    order = sorted(needed)
    steps = [(i, nodes[i].layer, nodes[i].inputs) for i in order]
    if include_output:
        steps.append((-2, _OutputSigns(), (len(nodes) - 1,)))
    last: dict[int, int] = {}
    for s, (_, _, inputs) in enumerate(steps):
        for j in inputs:
            last[j] = s
    plan = []
    for s, (i, layer, inputs) in enumerate(steps):
        free = tuple(sorted({j for j in inputs if last[j] == s}))
        plan.append(_Step(i, layer, inputs, free, i in last))
    return plan


def _owns(p: _Pieces, j: int) -> bool:
    """Whether value j shares no memory with another live value (a Flatten or a Sum with one
    unit coefficient returns a view of its input), so it may be overwritten in place."""
    h, dh = p.vals[j]
    mine = {h.untyped_storage().data_ptr(), dh.untyped_storage().data_ptr()}
    return not any(k != j and (a.untyped_storage().data_ptr() in mine or b.untyped_storage().data_ptr() in mine)
                   for k, (a, b) in p.vals.items())


# ---------------------------------------------------------------- refinement, one node at a time


@dataclass
class _Walk:
    tol: float
    dtol: float
    max_pieces: int
    leaves: list  # (seg, ta, tb, patterns, uncertain) per finished chunk, in order
    bar: object = None  # progress over nodes, advanced by the first chunk's path only
    memory_budget: int = DEFAULT_MEMORY_BUDGET  # bytes; bounds the convolutions' unfolded buffers


def _affine(step: _Step, p: _Pieces, walk: _Walk) -> None:
    """An affine node maps the tuple of its input values (multi-input: Sum, Cat)."""
    if len(step.inputs) == 1:
        p.vals[step.node] = _affine_pieces(step.layer, *p.vals[step.inputs[0]], walk.memory_budget)
        return
    ins = [p.vals[j] for j in step.inputs]
    p.vals[step.node] = (step.layer.forward(*[h for h, _ in ins]), step.layer.linear(*[dh for _, dh in ins]))


def _sign_bits(step: _Step, p: _Pieces, walk: _Walk) -> None:
    """Bits and jvp of a (Leaky)ReLU, or the output signs, on pieces that no longer split."""
    j = step.inputs[0]
    h, dh = p.vals[j]
    n = h.shape[0]
    p.uncertain |= _near_zero(h.reshape(n, -1), dh.reshape(n, -1), (p.tb - p.ta) / 2, walk.dtol)
    if isinstance(step.layer, _OutputSigns):
        p.bits.append(h.reshape(n, -1) > 0)
        return
    on = step.layer.bits(h)
    p.bits.append(on)
    if not step.used:
        return  # the last activation: its output is never read
    if j in step.free and _owns(p, j):
        p.vals[step.node] = _leaky_relu_jvp_(step.layer, h, dh, on.reshape(h.shape))
    else:  # the pre-activation is read again later (or shares memory with a value that is)
        p.vals[step.node] = step.layer.jvp(h, dh)


def _maxpool_bits(step: _Step, p: _Pieces, walk: _Walk) -> None:
    """Near ties, bits and jvp of a max-pool node on settled pieces, from one pooling pass."""
    out = _maxpool_jvp(step.layer, p, *p.vals[step.inputs[0]], walk.dtol)
    if step.used:
        p.vals[step.node] = out


def _free(step: _Step, p: _Pieces) -> None:
    for j in step.free:
        del p.vals[j]


def _finish(p: _Pieces, walk: _Walk) -> None:
    walk.leaves.append(_merge_equal(p.seg, p.ta, p.tb, p.bits, p.uncertain))


def _descend(plan: list, s0: int, p: _Pieces, walk: _Walk, post_split: bool = False, top: bool = True) -> None:
    """Refine pieces from step s0 of the plan on, depth first: when a split would make more than
    `walk.max_pieces` pieces, the new pieces go through the rest of the graph in chunks, so memory
    stays within the budget whatever the number of pieces. Finished chunks go to walk.leaves."""
    for s in range(s0, len(plan)):
        step = plan[s]
        layer = step.layer
        if isinstance(layer, AbstractAffine):
            _affine(step, p, walk)
        elif isinstance(layer, (LeakyReLU, _OutputSigns)):
            if not (post_split and s == s0):
                split = _sign_split(p, *p.vals[step.inputs[0]], walk.tol)
                if split is not None:
                    n_new, m = split[0].shape[0], walk.max_pieces
                    if n_new > m:
                        for a in range(0, n_new, m):
                            sub = tuple(t[a:a + m] for t in split)
                            _descend(plan, s, _apply_split(p, sub), walk, post_split=True, top=False)
                        if top and walk.bar is not None:
                            walk.bar.update(len(plan) - s)
                        return
                    p = _apply_split(p, split)
            _sign_bits(step, p, walk)
        elif isinstance(layer, MaxPool2d):
            p, settled = _split_maxpool(layer, p, step.inputs[0], walk.tol, walk.max_pieces)
            if not settled:
                # chunks strictly smaller than p: a chunk that again outgrows the budget halves again
                n = p.seg.shape[0]
                m = max(1, min(walk.max_pieces // 2, (n + 1) // 2))
                for a in range(0, n, m):
                    rows = torch.arange(a, min(n, a + m), device=p.seg.device)
                    _descend(plan, s, _select(p, rows), walk, top=False)
                if top and walk.bar is not None:
                    walk.bar.update(len(plan) - s)
                return
            _maxpool_bits(step, p, walk)
        elif isinstance(layer, AbstractActivation):
            raise TypeError(f"layer {layer.name!r} ({type(layer).__name__}) has no exact traversal")
        else:
            raise TypeError(f"layer {layer.name!r}: unknown layer type {type(layer).__name__}")
        _free(step, p)
        if top and walk.bar is not None:
            walk.bar.update()
    _finish(p, walk)


def _traverse_chunk(net: Network, x0: torch.Tensor, x1: torch.Tensor, include_output: bool,
                    memory_budget: int = DEFAULT_MEMORY_BUDGET, bar=None, tolerance: float = TOLERANCE,
                    checked: bool = False) -> Traversals:
    """Traverse a batch of segments; pieces are refined in chunks of at most memory_budget
    bytes of working memory (`_descend`). The result stays flat (`Traversals`). `checked`:
    proposed in float32, checked in float64 (`checked.py`)."""
    if checked:
        from .checked import traverse_checked_float32
        return traverse_checked_float32(net, x0, x1, include_output, memory_budget, tolerance)
    s = x0.shape[0]
    dx = x1 - x0
    per_piece = _bytes_per_piece(net, x0[:1], include_output)
    walk = _Walk(t_tolerance(x0.dtype, tolerance), decision_tolerance(x0.dtype),
                 max(2, memory_budget // per_piece), [], bar, memory_budget)
    ones = torch.ones(s, dtype=torch.float64, device=x0.device)  # t stays float64 in any dtype
    p = _Pieces(torch.arange(s, device=x0.device), 0 * ones, ones, {INPUT: (x0 + 0.5 * dx, dx)}, _Bits(),
                torch.zeros(s, dtype=torch.bool, device=x0.device))
    plan = _plan(net, include_output)
    for step in plan:
        if isinstance(step.layer, AbstractActivation) and not isinstance(step.layer, (LeakyReLU, MaxPool2d)):
            net.require_piecewise_linear(_WHAT)
    if bar is not None:
        bar.reset(total=len(plan))
    _descend(plan, 0, p, walk)
    leaves = walk.leaves
    parts = [torch.cat([leaf[i] for leaf in leaves]) for i in range(5)] if len(leaves) > 1 else list(leaves[0])
    seg, ta, tb, patterns, uncertain = _merge_equal(*parts) if len(leaves) > 1 else parts
    return Traversals.from_pieces(seg, ta, tb, patterns, uncertain, s, dtype_name(x0.dtype), walk.tol)


def _warn_uncertain(bad: int, total: int, dtype: str, what: str) -> None:
    """One PrecisionWarning for the `bad` of `total` segments with a piece decided within rounding."""
    if bad:
        why = ("in float64 this happens on slivers where an endpoint sits on a region boundary (zero "
               "pixels make ties after a ReLU or max-pool) or with hand-built weights that cancel "
               "exactly" if dtype == "float64"
               else f"expected in {dtype}, whose rounding is coarse")
        warnings.warn(
            f"{what}: on {bad} of {total} segment(s) some unit stayed within rounding of "
            f"zero (or a max-pool window within rounding of a tie) over a whole piece, so its bit "
            f"follows rounding, not exact arithmetic (Traversal.uncertain marks those pieces); {why}",
            PrecisionWarning,
            stacklevel=3,
        )


# ---------------------------------------------------------------- public entry points


def _prepare(model, x0, x1, *, batched: bool, dtype=Precision.FLOAT64, what: str = "traverse"):
    x0, x1 = as_float_tensor(x0, "x0"), as_float_tensor(x1, "x1")
    same_device(x0=x0, x1=x1)
    net = to_network(model)
    if batched:
        if x0.dim() < 2 or x1.dim() < 2 or x0.shape[1:] != x1.shape[1:]:
            raise ValueError(
                f"x1: expected a batch [B, ...] of inputs shaped like those of x0 {list(x0.shape)}, "
                f"got {list(x1.shape)}"
            )
    else:
        if x0.shape != x1.shape:
            raise ValueError(f"x1: expected the shape of x0 {list(x0.shape)}, got {list(x1.shape)}")
        x0 = as_single(x0, "x0", net.input_shape, batch_function="traverse_many")
        x1 = as_single(x1, "x1", net.input_shape, batch_function="traverse_many")
    if net.input_shape is None:
        net = net.with_input_shape(x0.shape[1:])
    check_batch(x0, "x0", net.input_shape)
    check_batch(x1, "x1", net.input_shape)
    net.require_piecewise_linear(_WHAT)
    work = analysed_dtype(net.dtype, as_precision(dtype), what)
    net = net.to(dtype=work, device=x0.device)
    x0, x1 = x0.to(work), x1.to(device=x0.device, dtype=work)
    # x1 - x0 and the layers' values along the path must stay finite in float64: endpoints of
    # 1e308 once gave one piece because x1 - x0 overflowed. Refuse instead of answering wrongly.
    big = max(float(x0.abs().max()), float(x1.abs().max())) if x0.numel() else 0.0
    if big > _INPUT_LIMIT:
        raise ValueError(
            f"x0, x1: entries up to {big:.3g} are beyond what exact traversal resolves in float64 "
            f"(|x| <= {_INPUT_LIMIT:.0e}); rescale the inputs (and the first layer's weights)"
        )
    return net, x0, x1


def _checked(dtype) -> bool:
    return as_precision(dtype) is Precision.CHECKED_FLOAT32


_INPUT_LIMIT = 1e100  # leaves ~200 orders of magnitude for weights and depth before overflow


def _check_tolerance(tolerance) -> float:
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 < tolerance < 0.5:
        raise ValueError(f"tolerance: expected a resolution in t with 0 < tolerance < 0.5 (segments have length 1), "
                         f"got {tolerance!r}")
    return float(tolerance)


def traverse(model: ModelLike, x0: ArrayLike, x1: ArrayLike, *, include_output: bool = False, progress: bool = False,
             dtype: Precision | str = Precision.FLOAT64, memory_budget: int = DEFAULT_MEMORY_BUDGET,
             tolerance: float = TOLERANCE) -> Traversal:
    """Every linear region met along the segment from `x0` to `x1`, in order, exactly (float64).

    `model`: a torch.nn.Module of the supported layers or a `Network` (a chain or a graph with
    residual additions, concatenations and the like), with ReLU, LeakyReLU and MaxPool2d
    activations only (smooth ones raise TypeError: use `traverse_bisection`).
    `x0`, `x1`: one input each, shaped like the network input (a leading batch dimension of 1 is
    accepted). With `include_output`, sign changes of the output units split pieces too and their
    bits are appended to the patterns. Runs on x0's device. See the module docstring for ties.
    `tolerance`: the resolution in t (segments have length 1; default `TOLERANCE` = 1e-12): roots
    closer than this to a piece's end or to each other are one breakpoint, so shorter pieces are
    not resolved. `progress` shows a bar over the network's layers (for deep nets).
    `dtype`: "float64" (default) analyses the float64 copy of the
    model (a PrecisionWarning says so for float16/bfloat16 models); "model" analyses it in its own
    dtype, resolving t only to a few ulps of that dtype (`Traversal.tolerance`); "float32-checked"
    traverses in float32 and checks every piece in float64, traversing again in float64 where a
    check fails: the float64 answer (same pieces and patterns, breakpoints within `tolerance`). Pieces whose bit
    was decided within rounding are marked in `Traversal.uncertain`, with a PrecisionWarning.
    `memory_budget` (bytes) bounds the working memory: pieces are refined depth first in chunks
    that fit (the result itself, one pattern row per piece, is not counted).
    """
    memory_budget = check_memory_budget(memory_budget)
    tolerance = _check_tolerance(tolerance)
    net, x0, x1 = _prepare(model, x0, x1, batched=False, dtype=dtype, what="traverse")
    with torch.no_grad():
        rows_within_budget(_bytes_per_piece(net, x0[:1], include_output), memory_budget, what="piece of a segment")
    with torch.no_grad(), tqdm(disable=not progress, desc="traverse", unit="layer") as bar:
        out = _traverse_chunk(net, x0, x1, include_output, memory_budget, bar, tolerance, _checked(dtype))
    _warn_uncertain(int(out.n_uncertain[0] > 0), 1, out.dtype, "traverse")
    return out[0]


def traverse_many(
    model: ModelLike,
    x0: ArrayLike,
    x1: ArrayLike,
    *,
    include_output: bool = False,
    pairs: str = "given",
    progress: bool = False,
    batch_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    dtype: Precision | str = Precision.FLOAT64,
    tolerance: float = TOLERANCE,
) -> Traversals:
    """`traverse` for many segments at once, batched over segments and pieces.

    `x0` [A, ...], `x1` [B, ...]. pairs="given" (A == B) traverses x0[i] -> x1[i] and returns A
    results; pairs="all" traverses every x0[a] -> x1[b] and returns A * B results, index a * B + b.
    The result is a `Traversals`: flat arrays with per-segment offsets, a sequence whose items
    (`len`, `[i]`, iteration) are the per-segment `Traversal`s, built only when read.
    Segments are refined together in batches sized to stay within `memory_budget` bytes (on a
    GPU also within its free memory), from the most pieces per segment seen so far (an estimate:
    the first batch is one segment and a batch at most doubles the previous one); `batch_size`
    caps the batch (default: no cap). A batch that still runs out of memory is halved and
    retried; a single segment that does not fit raises MemoryBudgetError. Within a batch, pieces
    are refined depth first in chunks that fit the budget. `dtype`, `tolerance`: as for `traverse`.
    """
    if pairs not in ("given", "all"):
        raise ValueError(f"pairs: expected 'given' or 'all', got {pairs!r}")
    batch_size = None if batch_size is None else check_int(batch_size, "batch_size", what="or None")
    budget = check_memory_budget(memory_budget)
    tolerance = _check_tolerance(tolerance)
    net, x0, x1 = _prepare(model, x0, x1, batched=True, dtype=dtype, what="traverse_many")
    a, b = x0.shape[0], x1.shape[0]
    if pairs == "given" and a != b:
        raise ValueError(f"x1: pairs = 'given' needs as many rows as x0 ({a}), got {b}; use pairs='all' for every pair")
    parts = list(_stream(net, x0, x1, include_output=include_output, pairs=pairs, batch_size=batch_size,
                         memory_budget=budget, tolerance=tolerance, progress=progress, checked=_checked(dtype)))
    if not parts:
        empty = torch.zeros(0, dtype=torch.float64, device=x0.device)
        return Traversals(empty, torch.zeros(0, 0, dtype=torch.bool, device=x0.device), torch.zeros(1, dtype=torch.int64),
                          dtype_name(x0.dtype), t_tolerance(x0.dtype, tolerance), torch.zeros(0, dtype=torch.bool))
    out = Traversals.concat(parts)
    _warn_uncertain(int((out.n_uncertain > 0).sum()), len(out), out.dtype, "traverse_many")
    return out


def _free_bytes(device: torch.device, budget: int) -> int:
    """The budget, capped by the free memory of a CUDA device (the batch must fit there too)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return min(budget, int(0.8 * free))  # leave room for the allocator's fragmentation
    return budget


def _stream(net: Network, x0: torch.Tensor, x1: torch.Tensor, *, include_output: bool, pairs: str = "given",
            batch_size: int | None = None, memory_budget: int = DEFAULT_MEMORY_BUDGET, tolerance: float = TOLERANCE,
            progress: bool = False, checked: bool = False):
    """Yield `Traversals` of consecutive batches of segments (x0, x1 prepared by `_prepare`), so a
    caller that only needs a summary per segment (chi) never holds more than one batch."""
    b = x1.shape[0]
    total = x0.shape[0] if pairs == "given" else x0.shape[0] * b
    with torch.no_grad():
        per_piece = _bytes_per_piece(net, x0[:1], include_output) if total else 1
    rows_within_budget(per_piece, memory_budget, what="piece of a segment")  # refuses if not even one fits
    pieces, size, start = 1, 1, 0
    with torch.no_grad(), tqdm(total=total, disable=not progress, desc="traverse", unit="seg") as bar:
        while start < total:
            idx = torch.arange(start, min(total, start + size), device=x0.device)
            ia, ib = (idx, idx) if pairs == "given" else (idx // b, idx % b)
            try:
                chunk = _traverse_chunk(net, x0.index_select(0, ia), x1.index_select(0, ib), include_output,
                                        memory_budget, None, tolerance, checked)
            except (MemoryError, RuntimeError) as err:  # the estimate was too low: halve the batch
                if not _out_of_memory(err):
                    raise
                if size == 1:
                    raise MemoryBudgetError(
                        f"traverse_many: segment {start} alone needs more memory than is available "
                        f"(about {per_piece} bytes per piece, at least {pieces} pieces seen per segment, "
                        f"memory_budget={memory_budget}); traverse shorter segments or a smaller network"
                    ) from None
                size = max(1, size // 2)
                continue
            yield chunk
            start += idx.shape[0]
            bar.update(idx.shape[0])
            pieces = max(pieces, int(chunk.n_pieces.max()))
            # the estimate per piece is ~1.4x what a 784-1024-1024-10 net used (26 KB measured);
            # unseen segments may have more pieces than any so far, so the batch at most doubles
            fit = _free_bytes(x0.device, memory_budget) // (per_piece * pieces)
            size = max(1, min(2 * idx.shape[0], fit, batch_size or fit))


def _bytes_per_piece(net: Network, probe: torch.Tensor, include_output: bool) -> int:
    """Working bytes of one interval in `_traverse_chunk` (an estimate, used to size chunks and
    batches), the busiest node of the plan counted: at an activation, while a split is applied,
    the old and the new pieces' h and dh of every live value (its input, values kept for later
    nodes such as a residual shortcut) with two temporaries of the input's size (six values per
    unit in a chain); at an affine node, h and dh of the live values and of its output. Plus the
    pattern bits of every layer, copied once. Convolutions' unfolded buffers are bounded apart
    (`_affine_pieces`). Measured on the tangent CNN (width 16, float64): peak growth of the
    process within the budget."""
    values = net.values(probe)
    size = {INPUT: probe[0].numel(), **{i: v[0].numel() for i, v in enumerate(values)}}
    live, peak, units = {INPUT}, 0, 0
    for step in _plan(net, include_output):
        held = sum(size[j] for j in live)
        if isinstance(step.layer, AbstractAffine):
            peak = max(peak, 2 * (held + size[step.node]))
        else:
            peak = max(peak, 4 * held + 2 * size[step.inputs[0]])
        if isinstance(step.layer, AbstractActivation):
            units += step.layer.bits(values[step.inputs[0]] if step.inputs[0] >= 0 else probe).shape[1]
        elif isinstance(step.layer, _OutputSigns):
            units += size[step.inputs[0]]
        live = (live - set(step.free)) | ({step.node} if step.used else set())
    return 8 * peak + 2 * units + 64


def _out_of_memory(err: BaseException) -> bool:
    if isinstance(err, MemoryError) or type(err).__name__ == "OutOfMemoryError":
        return True
    text = str(err)
    return "can't allocate memory" in text or "out of memory" in text.lower()


def traverse_pairs(model: ModelLike, x0: ArrayLike, x1: ArrayLike, **options) -> Traversals:
    """Every segment x0[a] -> x1[b]: `traverse_many(..., pairs="all")`, index a * B + b (same
    options, `tolerance` included)."""
    return traverse_many(model, x0, x1, pairs="all", **options)
