"""The dense engine's max-pool passes compiled with numba: one pass over every window of every
piece instead of ~10 torch passes over [pieces, C, H, W] per window element.

Same arithmetic and order as `_maxpool` (the argmax is the first maximum, row-major, as torch's
max_pool2d; the crossing test is gap < |slope| * half (beyond rounding: `_maxpool_crossings`) and
its root tm + gap / slope; the near-tie
reach is |de - dtop| * half + (top - e) against dtol times the largest |element| of any window),
so both give the same pieces, bit for bit (tests/test_traversal.py runs both). float64 only; the
torch passes serve every other dtype and device. Loaded through `_compiled.load_kernels`.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._grid_nb import window
from ._pieces import LINE_TOL64

__all__ = ["crossings", "pool_jvp"]


@njit(cache=True, nogil=True, inline="always")
def _argmax(h, i, c, cells, pos, ne):
    """(max, its cell, its position in the window) of one window: the first maximum."""
    top, cell, at = -np.inf, -1, -1
    for e in range(ne):
        if h[i, c, cells[e]] > top:
            top, cell, at = h[i, c, cells[e]], cells[e], pos[e]
    return top, cell, at


@njit(cache=True, nogil=True, parallel=True)
def crossings(h, dh, W, tm, half, kh, kw, sh, sw, ph, pw, dy, dx, Ho, Wo, write, count, start, rows, roots):
    """Every (piece, t) where a window element meets its window's max at the piece's midpoint
    within `half` of it (`_maxpool._maxpool_crossings`). h, dh: [n, C, H * W] (flat maps).
    First pass (write False) counts per piece."""
    n, C, HW = h.shape
    for i in prange(n):
        cells, pos = np.empty(kh * kw, np.int64), np.empty(kh * kw, np.int64)
        k = 0
        for c in range(C):
            for oy in range(Ho):
                for ox in range(Wo):
                    ne = window(oy, ox, HW // W, W, kh, kw, sh, sw, ph, pw, dy, dx, cells, pos)
                    top, cell, _ = _argmax(h, i, c, cells, pos, ne)
                    dtop = dh[i, c, cell]
                    for e in range(ne):
                        gap = top - h[i, c, cells[e]]
                        slope = dh[i, c, cells[e]] - dtop
                        reach = abs(slope) * half[i]
                        if gap < reach and reach > LINE_TOL64 * max(abs(top), abs(h[i, c, cells[e]])):
                            if write:
                                rows[start[i] + k] = i
                                roots[start[i] + k] = tm[i] + gap / slope
                            k += 1
        count[i] = k


@njit(cache=True, nogil=True, parallel=True)
def pool_jvp(h, dh, W, Wo, half, dtol, kh, kw, sh, sw, ph, pw, dy, dx, out, dout, bits, near):
    """Max pooling of settled pieces (`_maxpool._maxpool_jvp`): out/dout [n, C, Ho * Wo] the
    argmax's value and derivative, bits the one-hot argmax (channel, window, position), near
    whether some element other than the argmax stays within dtol of the scale (the largest
    |element| of any window) below the max over the whole piece (reach 0, an exact tie, does not
    count). h, dh: [n, C, H * W] (flat maps)."""
    n, C, HW = h.shape
    L = out.shape[2]
    kk = kh * kw
    for i in prange(n):
        cells, pos = np.empty(kk, np.int64), np.empty(kk, np.int64)
        scale = 0.0
        for c in range(C):
            for q in range(L):
                ne = window(q // Wo, q % Wo, HW // W, W, kh, kw, sh, sw, ph, pw, dy, dx, cells, pos)
                top, cell, at = _argmax(h, i, c, cells, pos, ne)
                out[i, c, q] = top
                dout[i, c, q] = dh[i, c, cell]
                bits[i, (c * L + q) * kk + at] = True
                for e in range(ne):
                    scale = max(scale, abs(h[i, c, cells[e]]))
        cut = dtol * scale
        hit = False
        for c in range(C):
            for q in range(L):
                ne = window(q // Wo, q % Wo, HW // W, W, kh, kw, sh, sw, ph, pw, dy, dx, cells, pos)
                top, dtop = out[i, c, q], dout[i, c, q]
                for e in range(ne):
                    reach = abs(dh[i, c, cells[e]] - dtop) * half[i] + (top - h[i, c, cells[e]])
                    if reach <= cut and reach > 0:
                        hit = True
        near[i] = hit
