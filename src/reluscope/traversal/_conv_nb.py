"""Compiled kernels of a convolution on the sparse front's lists (`_sparse_nb` describes the
records): as lists again (`conv_fill`, when the layers after it stay sparse) or as dense rows at
the pieces' midpoints (`conv_rows`, the handover to the dense engine).

Both walk the inputs' changes in time order and add each weighted change to the outputs it feeds,
with compensated sums, so the work follows the changes, not pieces x map size. Both keep, per
output, the count of its inputs that are not exactly 0 (0 + 0 t): when none is left the sums
restart at exactly (bias, 0), the dense convolution's value of a window of zeros, not the rounding
residue of the changes that led there (zeros after a ReLU tie exactly downstream). One thread per
output channel walks all changes, so each output is written in time order by one thread.
"""

from __future__ import annotations

import numpy as np
from numba import get_num_threads, njit, prange

from ._grid_nb import tap, unit_of_output, window

__all__ = ["conv_bound", "conv_fill", "conv_start", "conv_rows", "row_blocks"]


@njit(cache=True, nogil=True, inline="always")
def _add(s, c, x):
    """Compensated sum (s, c) + x: the exact rounding error of s + x (Knuth's TwoSum, branch-free
    so a loop over channels vectorises) goes to c. A unit's alpha after hundreds of changes then
    carries the rounding of one dot product, as the dense engine's, not of hundreds of additions."""
    t = s + x
    z = t - s
    return t, c + ((s - (t - z)) + (x - z))


@njit(cache=True, nogil=True, parallel=True)
def conv_bound(count, C, H, W, Co, Ho, Wo, kh, kw, sh, sw, ph, pw, dh, dw, groups):
    """Records each output unit of the convolution can have: 1 + the changes of its inputs."""
    out = np.empty(Co * Ho * Wo, np.int64)
    cig, cog = C // groups, Co // groups
    for v in prange(Co * Ho * Wo):
        co, oy, ox = unit_of_output(v, Ho, Wo)
        g = co // cog
        cells, pos = np.empty(kh * kw, np.int64), np.empty(kh * kw, np.int64)
        ne = window(oy, ox, H, W, kh, kw, sh, sw, ph, pw, dh, dw, cells, pos)
        tot = 1
        for ci in range(g * cig, (g + 1) * cig):
            for e in range(ne):
                tot += count[ci * H * W + cells[e]] - 1
        out[v] = tot
    return out


@njit(cache=True, nogil=True, inline="always")
def _live_inputs(start, A, B, g, cig, q, H, W, Wo, kh, kw, sh, sw, ph, pw, dh, dw, cells, pos):
    """How many inputs of output q (in channel group g) are not exactly 0 at t = 0."""
    n = 0
    ne = window(q // Wo, q % Wo, H, W, kh, kw, sh, sw, ph, pw, dh, dw, cells, pos)
    for ci in range(g * cig, (g + 1) * cig):
        for k in range(ne):
            j0 = start[ci * H * W + cells[k]]
            if A[j0] != 0.0 or B[j0] != 0.0:
                n += 1
    return n


@njit(cache=True, nogil=True, inline="always")
def _fed(u, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw, dh, dw, qs, kys, kxs):
    """Input unit u's channel, and the outputs q (per output channel) it feeds with their taps
    (ky, kx), written to qs, kys, kxs; returns (channel, how many)."""
    ci = u // (H * W)
    rem = u - ci * H * W
    iy = rem // W
    ix = rem - iy * W
    n = 0
    for ky in range(kh):
        oy = tap(iy, ph, ky, dh, sh, Ho)
        if oy < 0:
            continue
        for kx in range(kw):
            ox = tap(ix, pw, kx, dw, sw, Wo)
            if ox >= 0:
                qs[n], kys[n], kxs[n] = oy * Wo + ox, ky, kx
                n += 1
    return ci, n


@njit(cache=True, nogil=True, inline="always")
def _apply(sa, ca, sb, cb, live, v, w, dA, dB, turned, bias):
    """Output v's sums after one input's change (w dA, w dB); `turned` is +1 when that input
    stops being exactly 0, -1 when it becomes exactly 0."""
    live[v] += turned
    if live[v] == 0:
        sa[v], ca[v], sb[v], cb[v] = bias, 0.0, 0.0, 0.0
    else:
        sa[v], ca[v] = _add(sa[v], ca[v], w * dA)
        sb[v], cb[v] = _add(sb[v], cb[v], w * dB)


@njit(cache=True, nogil=True, inline="always")
def _turned(A, B, j):
    was = 1 if (A[j - 1] != 0.0 or B[j - 1] != 0.0) else 0
    now = 1 if (A[j] != 0.0 or B[j] != 0.0) else 0
    return now - was


@njit(cache=True, nogil=True, parallel=True)
def conv_fill(start, A, B, ev_t, ev_unit, ev_slot, weight, bias, a0, b0, C, H, W, Co, Ho, Wo, sh, sw, ph, pw, dh, dw,
              groups, ostart, ocount, oT, oA, oB):
    """Each output unit's list: its function at t = 0 (a0, b0: the dense convolution of the
    inputs' first records), then, for every change of an input in time order (ev_*, sorted by
    time), the weighted change added to the outputs that input feeds (a record per output and
    time; equal times are one record)."""
    kh, kw = weight.shape[2], weight.shape[3]
    cig, cog = C // groups, Co // groups
    hw = Ho * Wo
    for co in prange(Co):
        g = co // cog
        sa, ca = a0[co * hw:(co + 1) * hw].copy(), np.zeros(hw)
        sb, cb = b0[co * hw:(co + 1) * hw].copy(), np.zeros(hw)
        live = np.zeros(hw, np.int64)
        cells, pos = np.empty(kh * kw, np.int64), np.empty(kh * kw, np.int64)
        for q in range(hw):
            v = co * hw + q
            o = ostart[v]
            oT[o], oA[o], oB[o] = 0.0, a0[v], b0[v]
            ocount[v] = 1
            live[q] = _live_inputs(start, A, B, g, cig, q, H, W, Wo, kh, kw, sh, sw, ph, pw, dh, dw, cells, pos)
        qs, kys, kxs = np.empty(kh * kw, np.int64), np.empty(kh * kw, np.int64), np.empty(kh * kw, np.int64)
        for e in range(ev_t.shape[0]):
            if (ev_unit[e] // (H * W)) // cig != g:
                continue
            ci, n = _fed(ev_unit[e], H, W, Ho, Wo, kh, kw, sh, sw, ph, pw, dh, dw, qs, kys, kxs)
            j, t = ev_slot[e], ev_t[e]
            dA, dB, turned = A[j] - A[j - 1], B[j] - B[j - 1], _turned(A, B, j)
            for k in range(n):
                q = qs[k]
                _apply(sa, ca, sb, cb, live, q, weight[co, ci - g * cig, kys[k], kxs[k]], dA, dB, turned, bias[co])
                v = co * hw + q
                last = ostart[v] + ocount[v] - 1
                na, nb = sa[q] + ca[q], sb[q] + cb[q]
                if oT[last] == t:  # another change at the same time: one record
                    oA[last], oB[last] = na, nb
                elif na != oA[last] or nb != oB[last]:
                    oT[last + 1], oA[last + 1], oB[last + 1] = t, na, nb
                    ocount[v] += 1


@njit(cache=True, nogil=True, parallel=True)
def conv_start(start, A, B, a0, b0, C, H, W, Co, Ho, Wo, kh, kw, sh, sw, ph, pw, dh, dw, groups, sa, ca, sb, cb, live):
    """The state of `conv_rows` at t = 0: sums (a0, b0: the dense convolution of the inputs'
    first records, [Co, Ho, Wo]) stored output position first ([Ho * Wo, Co], so a change updates
    contiguous channels), no compensation yet, and per block of `conv_rows` (live: [blocks,
    Ho * Wo, groups]) each output position's count of live inputs in each channel group."""
    cig = C // groups
    hw = Ho * Wo
    for q in prange(hw):
        cells, pos = np.empty(kh * kw, np.int64), np.empty(kh * kw, np.int64)
        for co in range(Co):
            sa[q * Co + co], ca[q * Co + co] = a0[co * hw + q], 0.0
            sb[q * Co + co], cb[q * Co + co] = b0[co * hw + q], 0.0
        for g in range(groups):
            n = _live_inputs(start, A, B, g, cig, q, H, W, Wo, kh, kw, sh, sw, ph, pw, dh, dw, cells, pos)
            for blk in range(live.shape[0]):
                live[blk, q, g] = n


def row_blocks(channels: int) -> int:
    """How many blocks of channels `conv_rows` runs in parallel: one per thread, 8 channels at least."""
    return max(1, min(get_num_threads(), channels // 8))


@njit(cache=True, nogil=True, parallel=True)
def conv_rows(A, B, ev_t, ev_unit, ev_slot, wt, bias, C, H, W, Co, Ho, Wo, sh, sw, ph, pw, dh, dw, groups,
              sa, ca, sb, cb, live, nxt, tm, h, dh_out):
    """h[p, v], dh_out[p, v]: output unit v ([Co, Ho, Wo] flattened) at the sorted times tm[p],
    every input change up to tm[p] applied. wt: the weight as [C / groups, kh, kw, Co]. The
    channels are split in blocks (live.shape[0], one thread each); the state (`conv_start`;
    nxt[block], the block's next change) carries over between calls on consecutive chunks."""
    kh, kw = wt.shape[1], wt.shape[2]
    cig, cog = C // groups, Co // groups
    hw = Ho * Wo
    blocks = live.shape[0]
    for blk in prange(blocks):
        c0, c1 = (Co * blk) // blocks, (Co * (blk + 1)) // blocks
        qs, kys, kxs = np.empty(kh * kw, np.int64), np.empty(kh * kw, np.int64), np.empty(kh * kw, np.int64)
        e = nxt[blk]
        for p in range(tm.shape[0]):
            t = tm[p]
            while e < ev_t.shape[0] and ev_t[e] <= t:
                ci, n = _fed(ev_unit[e], H, W, Ho, Wo, kh, kw, sh, sw, ph, pw, dh, dw, qs, kys, kxs)
                g = ci // cig
                lo, hi = max(c0, g * cog), min(c1, (g + 1) * cog)
                if lo < hi:
                    j = ev_slot[e]
                    dA, dB, turned = A[j] - A[j - 1], B[j] - B[j - 1], _turned(A, B, j)
                    for k in range(n):
                        q = qs[k]
                        live[blk, q, g] += turned
                        r = q * Co
                        if live[blk, q, g] == 0:
                            for co in range(lo, hi):
                                sa[r + co], ca[r + co], sb[r + co], cb[r + co] = bias[co], 0.0, 0.0, 0.0
                        else:
                            for co in range(lo, hi):
                                w = wt[ci - g * cig, kys[k], kxs[k], co]
                                sa[r + co], ca[r + co] = _add(sa[r + co], ca[r + co], w * dA)
                                sb[r + co], cb[r + co] = _add(sb[r + co], cb[r + co], w * dB)
                e += 1
            for co in range(c0, c1):
                for q in range(hw):
                    b = sb[q * Co + co] + cb[q * Co + co]
                    h[p, co * hw + q] = (sa[q * Co + co] + ca[q * Co + co]) + b * t
                    dh_out[p, co * hw + q] = b
        nxt[blk] = e
