"""Compiled kernels of the sparse front (`_front`): every unit of a layer as the list of affine
functions of t it takes along the segment, one record (start time, alpha, beta) per change.

A unit's record r holds f(t) = alpha + beta t from T[r] until the unit's next record (or t = 1).
A layer's lists are stored flat: unit u's records are start[u] .. start[u] + count[u] - 1 (lists
may leave gaps between units; `count` says how many records are used). Kernels run one unit per
iteration of a `prange`, so each writes only its own slots, and come in two passes (count, then
fill) so nothing is allocated beyond what the result needs.

numba is optional (the `fast` extra): `_front` imports this module and the dense engine runs alone
without it. Kernels are compiled on first use and cached on disk (`cache=True`).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._conv_nb import conv_bound, conv_fill, conv_rows, conv_start, row_blocks
from ._grid_nb import unit_of_output, window
from ._pieces import LINE_TOL64

__all__ = ["act_pass", "conv_bound", "changes", "conv_fill", "conv_rows", "conv_start", "pool_pass", "build_table",
           "materialize", "flat_events", "act_candidates", "pool_candidates", "row_blocks"]


@njit(cache=True, nogil=True, inline="always")
def _end(T, start, count, u, i):
    """End of record i of unit u: the next record's start, or 1."""
    return T[start[u] + i + 1] if i + 1 < count[u] else 1.0


# ---------------------------------------------------------------- (Leaky)ReLU


@njit(cache=True, nogil=True, parallel=True)
def act_pass(start, count, T, A, B, slope, write, ostart, ocount, oT, oA, oB, fstart, fcount, fT, fOn, fRoot, bit0):
    """A (Leaky)ReLU on every unit's list. Each record is cut at its root (a root strictly inside),
    each part keeps the pre-activation's sign at its midpoint (the bit is z > 0 there, as
    `LeakyReLU.bits` at a piece's midpoint) and becomes (alpha, beta) or slope * (alpha, beta);
    a part equal to the previous one adds no record (an inactive unit stays one record).
    Flips of the bit are events: (time, new bit, whether at a root strictly inside a record;
    otherwise at a record's start, where the input changed). First pass (write False): fills
    ocount and fcount with the numbers of records and flips; second pass fills the rest."""
    n = start.shape[0]
    for u in prange(n):
        k = 0
        f = 0
        last_a, last_b = 0.0, 0.0
        state = -1
        for i in range(count[u]):
            j = start[u] + i
            s = T[j]
            e = _end(T, start, count, u, i)
            a, b = A[j], B[j]
            r = 2.0  # no root inside
            if b != 0.0:
                q = -a / b
                if s < q < e:
                    r = q
            for part in range(2):
                if part == 0:
                    lo, hi = s, (r if r < 2.0 else e)
                else:
                    if r >= 2.0:
                        break
                    lo, hi = r, e
                on = a + b * (0.5 * (lo + hi)) > 0.0
                pa, pb = (a, b) if on else (slope * a, slope * b)
                if k == 0 or pa != last_a or pb != last_b:
                    if write:
                        w = ostart[u] + k
                        oT[w], oA[w], oB[w] = lo, pa, pb
                    k += 1
                    last_a, last_b = pa, pb
                st = 1 if on else 0
                if state == -1:
                    if write:
                        bit0[u] = on
                elif st != state:
                    if write:
                        w = fstart[u] + f
                        fT[w], fOn[w], fRoot[w] = lo, on, part == 1
                    f += 1
                state = st
        ocount[u] = k
        fcount[u] = f


# ---------------------------------------------------------------- changes in time order


@njit(cache=True, nogil=True)
def changes(start, count, T):
    """Every record after a unit's first (a change of that unit) as flat arrays (time, unit, record)."""
    n = 0
    for u in range(count.shape[0]):
        n += count[u] - 1
    t = np.empty(n)
    unit = np.empty(n, np.int64)
    slot = np.empty(n, np.int64)
    i = 0
    for u in range(count.shape[0]):
        for j in range(start[u] + 1, start[u] + count[u]):
            t[i], unit[i], slot[i] = T[j], u, j
            i += 1
    return t, unit, slot


# ---------------------------------------------------------------- max pooling




@njit(cache=True, nogil=True, inline="always")
def _same_line(a1, b1, a2, b2):
    """Two window elements are one line up to rounding: their functions differ by a few ulps of
    their size. The dense engine computes such elements (equal inputs and weights, zeros after a
    ReLU) as the same number and the first position wins; here their histories of changes may
    round apart, and a 1-ulp gap must not decide the argmax (the rounding check flags the piece
    where the dense engine's values differ within rounding)."""
    scale = max(abs(a1) + abs(b1), abs(a2) + abs(b2))
    return abs(a1 - a2) <= LINE_TOL64 * scale and abs(b1 - b2) <= LINE_TOL64 * scale


@njit(cache=True, nogil=True, parallel=True)
def pool_pass(start, count, T, A, B, C, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw, dh, dw, write,
              ostart, ocount, oT, oA, oB, fstart, fcount, fT, fPos, fRoot, pos0):
    """Max pooling on every window's elements' lists. Between changes of its elements a window's
    max is the upper envelope of k lines: the argmax just after the interval's start (largest
    value, then largest slope, then first position: the tie rule of `MaxPool2d.bits`), then each
    time an element with a larger slope overtakes it (earliest first; at equal times the largest
    slope, then the first position). Each switch strictly raises the slope, so an interval has
    fewer than k switches. Elements whose functions agree within a few ulps count as one line
    (`_same_line`): they never switch. The output is the argmax's function (a record where it changes); the
    argmax position's changes are events (time, position, whether at a crossing strictly inside
    an interval). Padding never wins (it is -inf)."""
    k_max = kh * kw
    for v in prange(C * Ho * Wo):
        c, oy, ox = unit_of_output(v, Ho, Wo)
        units = np.empty(k_max, np.int64)
        pos = np.empty(k_max, np.int64)
        ptr = np.zeros(k_max, np.int64)
        ne = window(oy, ox, H, W, kh, kw, sh, sw, ph, pw, dh, dw, units, pos)
        for e in range(ne):
            units[e] += c * H * W
        k = 0
        f = 0
        cur_pos = -1
        last_a, last_b, last_t = 0.0, 0.0, -1.0
        a = 0.0
        while True:
            b = 1.0  # the interval [a, b): no element changes inside
            for e in range(ne):
                u = units[e]
                if ptr[e] + 1 < count[u]:
                    nt = T[start[u] + ptr[e] + 1]
                    if nt < b:
                        b = nt
            best = 0
            for e in range(1, ne):
                j, jb = start[units[e]] + ptr[e], start[units[best]] + ptr[best]
                if _same_line(A[j], B[j], A[jb], B[jb]):
                    continue  # one line, up to rounding: the first position keeps it
                ve, vb = A[j] + B[j] * a, A[jb] + B[jb] * a
                if ve > vb or (ve == vb and B[j] > B[jb]):
                    best = e
            t = a
            at_start = True
            while True:
                jc = start[units[best]] + ptr[best]
                ca_, cb_ = A[jc], B[jc]
                if k == 0 or ca_ != last_a or cb_ != last_b:
                    if k > 0 and t == last_t:  # a zero-length switch: replace the record
                        if write:
                            w = ostart[v] + k - 1
                            oA[w], oB[w] = ca_, cb_
                    else:
                        if write:
                            w = ostart[v] + k
                            oT[w], oA[w], oB[w] = t, ca_, cb_
                        k += 1
                    last_a, last_b, last_t = ca_, cb_, t
                if pos[best] != cur_pos:
                    if cur_pos == -1:
                        if write:
                            pos0[v] = pos[best]
                    else:
                        if write:
                            w = fstart[v] + f
                            fT[w], fPos[w], fRoot[w] = t, pos[best], not at_start
                        f += 1
                    cur_pos = pos[best]
                nxt = -1
                tc_best = b
                for e in range(ne):
                    if e == best:
                        continue
                    j = start[units[e]] + ptr[e]
                    if B[j] > cb_ and not _same_line(A[j], B[j], ca_, cb_):
                        tc = (ca_ - A[j]) / (B[j] - cb_)
                        if tc < t:
                            tc = t  # rounding: it is above already, switch now
                        if tc < tc_best:
                            tc_best, nxt = tc, e
                        elif tc == tc_best and nxt >= 0:
                            jn = start[units[nxt]] + ptr[nxt]
                            if B[j] > B[jn]:
                                nxt = e
                if nxt == -1:
                    break
                best, t, at_start = nxt, tc_best, tc_best == a
            if b >= 1.0:
                break
            for e in range(ne):
                u = units[e]
                if ptr[e] + 1 < count[u] and T[start[u] + ptr[e] + 1] == b:
                    ptr[e] += 1
            a = b
        ocount[v] = k
        fcount[v] = f


# ---------------------------------------------------------------- bits, values, candidates


@njit(cache=True, nogil=True)
def build_table(row0, clear, set_, keys):
    """A layer's pattern after each of its events, packed eight bits to a byte as
    `pack_patterns` packs (bit j of byte b is unit 8 b + j): uint8 [E + 1, ceil(units / 8)], row 0
    from row0 and row i from row i - 1 with bit clear[i - 1] cleared and bit set_[i - 1] set (-1:
    none). Also each row's hash: the XOR of keys[u] over its set bits (kept up to date with two
    XORs an event), so two rows with different hashes differ and only equal hashes need a look."""
    e, units = clear.shape[0], row0.shape[0]
    out = np.zeros((e + 1, (units + 7) // 8), np.uint8)
    hashes = np.empty(e + 1, np.int64)
    h = 0
    for u in range(units):
        if row0[u]:
            out[0, u >> 3] |= np.uint8(1 << (u & 7))
            h ^= keys[u]
    hashes[0] = h
    for i in range(e):
        out[i + 1] = out[i]
        c, s = clear[i], set_[i]
        if c >= 0 and (out[i + 1, c >> 3] >> (c & 7)) & 1:
            out[i + 1, c >> 3] &= np.uint8(255 - (1 << (c & 7)))
            h ^= keys[c]
        if s >= 0 and not (out[i + 1, s >> 3] >> (s & 7)) & 1:
            out[i + 1, s >> 3] |= np.uint8(1 << (s & 7))
            h ^= keys[s]
        hashes[i + 1] = h
    return out, hashes


@njit(cache=True, nogil=True)
def flat_events(fstart, fcount, fT, fRoot):
    """Every unit's events as flat arrays (time, unit, slot, at a root) in unit order."""
    n = 0
    for u in range(fcount.shape[0]):
        n += fcount[u]
    t = np.empty(n)
    unit = np.empty(n, np.int64)
    slot = np.empty(n, np.int64)
    root = np.empty(n, np.bool_)
    i = 0
    for u in range(fcount.shape[0]):
        for j in range(fstart[u], fstart[u] + fcount[u]):
            t[i], unit[i], slot[i], root[i] = fT[j], u, j, fRoot[j]
            i += 1
    return t, unit, slot, root


@njit(cache=True, nogil=True, parallel=True)
def materialize(start, count, T, A, B, ev_t, ev_unit, ev_slot, tm, h, dh):
    """h[p, u], dh[p, u]: unit u's value and slope at the sorted times tm[p]. Rows are written
    whole, in time order: every unit's current record is kept and only the changes (ev_*, sorted
    by time) between two times are applied, so the work is the rows plus the changes. Blocks of
    rows run in parallel, each starting from its first time's records (found by bisection)."""
    n, m = start.shape[0], tm.shape[0]
    blocks = max(1, min(m, 16))
    for k in prange(blocks):
        p0, p1 = (m * k) // blocks, (m * (k + 1)) // blocks
        if p0 >= p1:
            continue
        a = np.empty(n)
        b = np.empty(n)
        for u in range(n):
            s, c = start[u], count[u]
            j = s + np.searchsorted(T[s:s + c], tm[p0], side="right") - 1
            a[u], b[u] = A[j], B[j]
        e = np.searchsorted(ev_t, tm[p0], side="right")
        for p in range(p0, p1):
            t = tm[p]
            while e < ev_t.shape[0] and ev_t[e] <= t:
                j = ev_slot[e]
                a[ev_unit[e]], b[ev_unit[e]] = A[j], B[j]
                e += 1
            for u in range(n):
                h[p, u] = a[u] + b[u] * t
                dh[p, u] = b[u]


@njit(cache=True, nogil=True, inline="always")
def _mark_within(ta, tb, lo, hi, s, e, marks):
    """Mark the pieces lying inside [lo, hi] whose midpoint lies in [s, e)."""
    i = np.searchsorted(ta, lo)
    while i < ta.shape[0] and ta[i] <= hi:
        if tb[i] <= hi:
            m = 0.5 * (ta[i] + tb[i])
            if s <= m < e:
                marks[i] = True
        i += 1


@njit(cache=True, nogil=True, inline="always")
def _mark_near_zero(a, b, s, e, c, shortest, ta, tb, marks):
    """Mark the pieces (midpoint in [s, e)) on which f = a + b t may stay within c of zero. The
    reach of f on a piece is max |f| at its ends, so reach <= c holds only within c / |b| of the
    root: a slope too steep for the shortest piece to fit there marks nothing. f exactly 0 is
    not counted (the dense engine's rule: an exact zero or tie decides nothing by rounding)."""
    if (a == 0.0 and b == 0.0) or abs(b) * shortest > 2.0 * c:
        return
    if b == 0.0:
        if abs(a) <= c:
            _mark_within(ta, tb, s, e, s, e, marks)
        return
    r, w = -a / b, c / abs(b)
    _mark_within(ta, tb, r - w, r + w, s, e, marks)


@njit(cache=True, nogil=True)
def _scale_bound(start, count, T, A, B):
    """The largest |f| at any record's ends: at least the layer's scale on every piece."""
    s = 0.0
    for u in range(start.shape[0]):
        for i in range(count[u]):
            j = start[u] + i
            e = _end(T, start, count, u, i)
            s = max(s, abs(A[j] + B[j] * T[j]), abs(A[j] + B[j] * e))
    return s


@njit(cache=True, nogil=True)
def act_candidates(start, count, T, A, B, ta, tb, dtol):
    """bool [pieces]: the pieces on which some unit may stay within dtol of the layer's scale
    (the `_near_zero` test of the dense engine, which then decides on these pieces only), from
    every record (`_mark_near_zero`)."""
    marks = np.zeros(ta.shape[0], np.bool_)
    c = dtol * _scale_bound(start, count, T, A, B)
    if ta.shape[0] == 0:
        return marks
    shortest = np.min(tb - ta)
    for u in range(start.shape[0]):
        for i in range(count[u]):
            j = start[u] + i
            _mark_near_zero(A[j], B[j], T[j], _end(T, start, count, u, i), c, shortest, ta, tb, marks)
    return marks


@njit(cache=True, nogil=True)
def pool_candidates(start, count, T, A, B, ostart, ocount, oT, oA, oB, C, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw, dh, dw,
                    ta, tb, dtol):
    """bool [pieces]: the pieces on which some window element other than the argmax may stay
    within dtol of the layer's scale below the max (the dense engine's near-tie test decides on
    these). As `act_candidates`, on the gap max - element over each stretch where both are fixed."""
    marks = np.zeros(ta.shape[0], np.bool_)
    c = dtol * _scale_bound(start, count, T, A, B)
    if ta.shape[0] == 0:
        return marks
    shortest = np.min(tb - ta)
    cells, pos = np.empty(kh * kw, np.int64), np.empty(kh * kw, np.int64)
    for v in range(C * Ho * Wo):
        ch, oy, ox = unit_of_output(v, Ho, Wo)
        for k in range(window(oy, ox, H, W, kh, kw, sh, sw, ph, pw, dh, dw, cells, pos)):
            u = ch * H * W + cells[k]
            i, q = 0, 0  # walk the element's records and the max's together
            s = 0.0
            while True:
                je, jm = start[u] + i, ostart[v] + q
                e1 = _end(T, start, count, u, i)
                e2 = _end(oT, ostart, ocount, v, q)
                e = min(e1, e2)
                _mark_near_zero(oA[jm] - A[je], oB[jm] - B[je], s, e, c, shortest, ta, tb, marks)  # max - element
                if e >= 1.0:
                    break
                if e1 == e:
                    i += 1
                if e2 == e:
                    q += 1
                s = e
    return marks
