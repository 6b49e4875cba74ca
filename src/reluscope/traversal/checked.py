"""Exact traversal in float32, checked in float64 (`Precision.CHECKED_FLOAT32`).

The float64 answer is what `traverse` promises. Float32 arithmetic is cheaper (on GPUs by far),
but its rounding can merge two close breakpoints, drop a piece shorter than its resolution
(1.2e-7 in t) or decide a unit's sign wrongly. So the float32 traversal is only a proposal, and
each of its pieces is accepted only when float64 confirms it:

1. the float64 pattern at the piece's midpoint m is the float32 pattern;
2. every breakpoint is where float64 says a unit crosses: at the breakpoint between two pieces,
   the first unit (in pattern order) whose bit differs has its float64 root there, computed from
   either side's affine pre-activation (the same function: every earlier layer's pattern is the
   same on both sides) to within `tolerance`; that root is the breakpoint returned;
3. on the piece between those roots, no unit's float64 affine pre-activation (for the piece's
   pattern, from a float64 jvp at m) has a root more than `tolerance` inside the piece, and no
   unit stays within rounding of zero over the whole piece (the test `traverse` uses to mark
   pieces uncertain).

Check 3 on the pattern at m proves the pattern constant on the piece (the first layer whose sign
would change inside is affine there, and has no root), and 2 proves it changes at each end, so
the accepted pieces are the float64 ones up to `tolerance`. A run of rejected pieces is traversed
again in float64, from the midpoint of the accepted piece before it to the midpoint of the one
after (or the segment's end), and spliced in; adjacent equal patterns are merged as in `traverse`.
Networks with max-pooling (their crossings are not unit roots), and inputs or weights beyond
float32's range, are traversed in float64 directly.
"""

from __future__ import annotations

import torch

from ..network.layers import AbstractAffine, LeakyReLU
from ..network.network import INPUT, Network
from ._pieces import _merge_equal, _near_zero
from ._refine import _OutputSigns, _bytes_per_piece, _plan
from .exact import _traverse_chunk
from .precision import decision_tolerance
from .results import Traversals

__all__ = ["traverse_checked_float32"]


def traverse_checked_float32(net: Network, x0: torch.Tensor, x1: torch.Tensor, include_output: bool,
                             memory_budget: int, tolerance: float) -> Traversals:
    """`_traverse_chunk` for the float64 `net` and segments x0 -> x1 (float64), proposed in float32
    and checked in float64 (module docstring). Returns the float64 answer."""
    plan = _plan(net, include_output)
    if any(not isinstance(s.layer, (AbstractAffine, LeakyReLU, _OutputSigns)) for s in plan):
        return _traverse_chunk(net, x0, x1, include_output, memory_budget, None, tolerance)
    net32, y0, y1 = net.to(dtype=torch.float32), x0.float(), x1.float()
    if not all(bool(torch.isfinite(v).all()) for v in (y0, y1, *net32._tensors())):  # beyond float32's range
        return _traverse_chunk(net, x0, x1, include_output, memory_budget, None, tolerance)
    proposal = _traverse_chunk(net32, y0, y1, include_output, memory_budget, None, tolerance)
    seg = proposal.segment
    n = seg.shape[0]
    rows = torch.arange(n, device=seg.device)
    ta, tb = proposal.t.index_select(0, rows + seg), proposal.t.index_select(0, rows + seg + 1)
    first = torch.ones(n, dtype=torch.bool, device=seg.device)  # first piece of its segment
    first[1:] = seg[1:] != seg[:-1]
    last = torch.ones_like(first)
    last[:-1] = first[1:]
    pats = proposal.patterns
    # the first unit whose bit differs from the previous piece's (patterns of a segment's
    # consecutive pieces differ); unit 0 for first pieces, unused there
    change = torch.zeros(n, dtype=torch.long, device=seg.device)
    if n > 1 and pats.shape[1]:
        change[1:] = (pats[1:] != pats[:-1]).to(torch.uint8).argmax(1)
    lo, hi, ok = _check(net, plan, x0, x1, seg, (ta + tb) / 2, pats, change, first, last, include_output,
                        memory_budget, tolerance)
    # both sides of a breakpoint must put it at the same root
    agree = (lo[1:] - hi[:-1]).abs() <= tolerance
    inner = ~first[1:]
    bad = inner & ~agree & ok[1:] & ok[:-1]  # (a rejected piece's neighbour ends at its own midpoint)
    ok[1:] &= ~bad
    ok[:-1] &= ~bad
    start = torch.where(first, torch.zeros_like(lo), torch.cat([lo[:1], hi[:-1]]))  # the left side's root
    end = torch.where(last, torch.ones_like(hi), hi)
    if bool(ok.all()):
        uncertain = torch.zeros(n, dtype=torch.bool, device=seg.device)
        return Traversals.from_pieces(seg, start, end, pats, uncertain, x0.shape[0], "float64", tolerance)
    return _splice(net, x0, x1, include_output, memory_budget, tolerance, seg, start, end, (ta + tb) / 2,
                   pats, ok, first, last)


def _check(net, plan, x0, x1, seg, mid, pats, change, first, last, include_output, memory_budget, tolerance):
    """(lo, hi, ok) per proposed piece: its float64 ends (the roots of the units that change
    there; 0 and 1 at the segment's ends) and whether checks 1-3 of the module docstring pass."""
    n = seg.shape[0]
    lo, hi = torch.empty(n, dtype=torch.float64, device=seg.device), torch.empty(n, dtype=torch.float64, device=seg.device)
    ok = torch.empty(n, dtype=torch.bool, device=seg.device)
    nxt = torch.cat([change[1:], change[:1]])  # the unit that changes at the piece's right end
    dtol = decision_tolerance(torch.float64)
    step = max(1, memory_budget // _bytes_per_piece(net, x0[:1], include_output))
    dx = x1 - x0
    for a in range(0, n, step):
        r = torch.arange(a, min(n, a + step), device=seg.device)
        s, m = seg.index_select(0, r), mid.index_select(0, r)
        d = dx.index_select(0, s)
        layers = _pre_activations(plan, x0.index_select(0, s), d, m, s, pats.index_select(0, r))
        ends = []
        for units, edge, default in ((change, first, 0.0), (nxt, last, 1.0)):  # the roots at both ends
            u = units.index_select(0, r)
            zu, dzu, at = torch.zeros_like(m), torch.ones_like(m), 0
            for z, dz in layers:
                k = z.shape[1]
                inside = (u >= at) & (u < at + k)
                col = (u - at).clamp(0, k - 1)[:, None]
                zu = torch.where(inside, z.gather(1, col).squeeze(1), zu)
                dzu = torch.where(inside, dz.gather(1, col).squeeze(1), dzu)
                at += k
            ends.append(torch.where(edge.index_select(0, r), torch.full_like(m, default), m - zu / dzu))
        a_, b_ = ends
        good = torch.isfinite(a_) & torch.isfinite(b_) & (a_ < m) & (m < b_) & (b_ - a_ > 2 * tolerance)
        c, w = (a_ + b_) / 2, (b_ - a_) / 2
        shift, inner = (c - m)[:, None], (w - tolerance)[:, None]
        p, at = pats.index_select(0, r), 0  # (the proposal's patterns of this chunk)
        for z, dz in layers:
            k = z.shape[1]
            good &= ((z > 0) == p[:, at:at + k]).all(1)  # check 1 (these layers' bits are z > 0)
            zc = z.addcmul(dz, shift)  # at the piece's centre c
            good &= ~(zc.abs() < dz.abs() * inner).any(1)  # check 3: no root inside
            good &= ~_near_zero(zc, dz, w, dtol)  # check 3: no unit within rounding of zero on the whole piece
            at += k
        lo.index_copy_(0, r, a_)
        hi.index_copy_(0, r, b_)
        ok.index_copy_(0, r, good)
    return lo, hi, ok


def _pre_activations(plan, x0, dx, mid, seg, pats):
    """[(z, dz)] of every sign node of the plan (activations, then the output signs), in pattern
    order, at each piece's midpoint (x0 + mid dx) and along dx, in float64. Pieces in a row that
    share the segment and the proposed bits of every earlier sign node share one affine function
    there: it is computed once, at the first of them, and moved to the others' midpoints (as the
    traversal carries its pieces). Activations apply the proposed bits: for a piece whose float64
    bits are the proposed ones (check 1) these are its own values; any other is rejected."""
    n = mid.shape[0]
    start = torch.ones(n, dtype=torch.bool, device=mid.device)
    start[1:] = seg[1:] != seg[:-1]
    rep = start.nonzero().squeeze(1)
    group = torch.cumsum(start, 0) - 1

    def shaped(v, like):
        return v.reshape((-1,) + (1,) * (like.dim() - 1))

    d = dx.index_select(0, rep)
    vals = {INPUT: (x0.index_select(0, rep).addcmul(d, shaped(mid.index_select(0, rep), d)), d)}
    out, at = [], 0
    for step in plan:
        layer = step.layer
        if isinstance(layer, AbstractAffine):
            ins = [vals[j] for j in step.inputs]
            vals[step.node] = (layer.forward(*[h for h, _ in ins]), layer.linear(*[d for _, d in ins]))
        else:
            z, dz = vals[step.inputs[0]]
            k = z[0].numel()
            z, dz = z.reshape(z.shape[0], -1), dz.reshape(z.shape[0], -1)
            dzi = dz.index_select(0, group)
            shift = (mid - mid.index_select(0, rep).index_select(0, group))[:, None]
            out.append((z.index_select(0, group).addcmul_(dzi, shift), dzi))
            if isinstance(layer, LeakyReLU) and step.used:
                bits = pats[:, at:at + k]
                split = start.clone()
                split[1:] |= (bits[1:] != bits[:-1]).any(1)
                if not torch.equal(split, start):  # regroup: move every live value to the new firsts
                    new = split.nonzero().squeeze(1)
                    old = group.index_select(0, new)
                    move = mid.index_select(0, new) - mid.index_select(0, rep).index_select(0, old)
                    vals = {j: (h.index_select(0, old).addcmul_(dh.index_select(0, old), shaped(move, dh)),
                                dh.index_select(0, old)) for j, (h, dh) in vals.items()}
                    start, rep, group = split, new, torch.cumsum(split, 0) - 1
                z, dz = vals[step.inputs[0]]
                on = bits.index_select(0, rep).reshape(z.shape)
                slope = torch.full_like(z, layer.negative_slope).masked_fill_(on, 1.0)
                vals[step.node] = (z * slope, dz * slope)
            at += k
        for j in step.free:
            del vals[j]
    return out


def _splice(net, x0, x1, include_output, memory_budget, tolerance, seg, start, end, mid, pats, ok, first, last):
    """The accepted pieces, with every run of rejected ones traversed again in float64 from the
    previous accepted piece's midpoint to the next one's (or the segment's ends)."""
    bad = ~ok
    run_start = bad & (first | torch.cat([bad.new_ones(1), ok[:-1]]))
    run_end = bad & (last | torch.cat([ok[1:], bad.new_ones(1)]))
    i0, i1 = run_start.nonzero().squeeze(1), run_end.nonzero().squeeze(1)
    a = torch.where(first.index_select(0, i0), torch.zeros_like(i0, dtype=torch.float64), mid.index_select(0, (i0 - 1).clamp_min(0)))
    b = torch.where(last.index_select(0, i1), torch.ones_like(i1, dtype=torch.float64), mid.index_select(0, (i1 + 1).clamp_max(seg.shape[0] - 1)))
    # the accepted neighbours keep their half up to the midpoint where the new traversal starts
    end = end.clone()
    start = start.clone()
    before, after = i0 - 1, i1 + 1
    has_before, has_after = ~first.index_select(0, i0), ~last.index_select(0, i1)
    end.index_copy_(0, before.masked_select(has_before), a.masked_select(has_before))
    start.index_copy_(0, after.masked_select(has_after), b.masked_select(has_after))
    keep = ok.nonzero().squeeze(1)
    parts = [(seg.index_select(0, keep), start.index_select(0, keep), end.index_select(0, keep),
              pats.index_select(0, keep), torch.zeros(keep.shape[0], dtype=torch.bool, device=seg.device))]
    s = seg.index_select(0, i0)
    dx = x1 - x0
    length = b - a
    # one float64 traversal per octave of run length, at a resolution of `tolerance` in the
    # whole segment's t (within a factor 2)
    octave = torch.floor(torch.log2(length))
    for o in torch.unique(octave).tolist():
        sel = (octave == o).nonzero().squeeze(1)
        ss, aa, bb = s.index_select(0, sel), a.index_select(0, sel), b.index_select(0, sel)
        d = dx.index_select(0, ss)
        shape = (-1,) + (1,) * (d.dim() - 1)
        y0 = x0.index_select(0, ss).addcmul(d, aa.reshape(shape))
        y1 = x0.index_select(0, ss).addcmul(d, bb.reshape(shape))
        again = _traverse_chunk(net, y0, y1, include_output, memory_budget, None,
                                min(0.25, tolerance / float((bb - aa).max())))
        sub = again.segment
        r = torch.arange(sub.shape[0], device=sub.device)
        u, v = again.t.index_select(0, r + sub), again.t.index_select(0, r + sub + 1)
        base, top = aa.index_select(0, sub), bb.index_select(0, sub)
        lo = torch.where(u == 0, base, base + u * (top - base))
        hi = torch.where(v == 1, top, base + v * (top - base))
        parts.append((ss.index_select(0, sub), lo, hi, again.patterns,
                      again.uncertain if again.uncertain is not None else torch.zeros_like(sub, dtype=torch.bool)))
    seg_all, ta, tb, p, unc = (torch.cat([part[i] for part in parts]) for i in range(5))
    order = torch.argsort(seg_all.to(torch.float64) * 4 + ta, stable=True)  # t in [0, 1]: by segment, then t
    seg_all, ta, tb, p, unc = (v.index_select(0, order) for v in (seg_all, ta, tb, p, unc))
    seg_all, ta, tb, p, unc = _merge_equal(seg_all, ta, tb, p, unc)
    return Traversals.from_pieces(seg_all, ta, tb, p, unc, x0.shape[0], "float64", tolerance)
