"""The dense engine's max-pool passes compiled with numba: one pass over every window of every
piece instead of ~10 torch passes over [pieces, C, H, W] per window element.

Same arithmetic and order as `_maxpool` (the argmax is the first maximum, row-major, as torch's
max_pool2d; the crossing test is gap < |slope| * half and its root tm + gap / slope; the near-tie
reach is |de - dtop| * half + (top - e) against dtol times the largest |element| of any window),
so both give the same pieces, bit for bit (tests/test_traversal.py runs both). float64 only; the
torch passes serve every other dtype and device. Loaded through `_compiled.load_kernels`.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["crossings", "pool_jvp"]


@njit(cache=True, nogil=True, inline="always")
def _argmax(h, i, c, oy, ox, H, W, kh, kw, sh, sw, ph, pw, dy, dx):
    """(max, row, column, position in the window) of one window: the first maximum."""
    top, ty, tx, tp = -np.inf, -1, -1, -1
    for ky in range(kh):
        iy = oy * sh - ph + ky * dy
        if iy < 0 or iy >= H:
            continue
        for kx in range(kw):
            ix = ox * sw - pw + kx * dx
            if 0 <= ix < W and h[i, c, iy, ix] > top:
                top, ty, tx, tp = h[i, c, iy, ix], iy, ix, ky * kw + kx
    return top, ty, tx, tp


@njit(cache=True, nogil=True, parallel=True)
def crossings(h, dh, tm, half, kh, kw, sh, sw, ph, pw, dy, dx, Ho, Wo, write, count, start, rows, roots):
    """Every (piece, t) where a window element meets its window's max at the piece's midpoint
    within `half` of it (`_maxpool._maxpool_crossings`). First pass (write False) counts per piece."""
    n, C, H, W = h.shape
    for i in prange(n):
        k = 0
        for c in range(C):
            for oy in range(Ho):
                for ox in range(Wo):
                    top, ty, tx, _ = _argmax(h, i, c, oy, ox, H, W, kh, kw, sh, sw, ph, pw, dy, dx)
                    dtop = dh[i, c, ty, tx]
                    for ky in range(kh):
                        iy = oy * sh - ph + ky * dy
                        if iy < 0 or iy >= H:
                            continue
                        for kx in range(kw):
                            ix = ox * sw - pw + kx * dx
                            if ix < 0 or ix >= W:
                                continue
                            gap = top - h[i, c, iy, ix]
                            slope = dh[i, c, iy, ix] - dtop
                            if gap < abs(slope) * half[i]:
                                if write:
                                    rows[start[i] + k] = i
                                    roots[start[i] + k] = tm[i] + gap / slope
                                k += 1
        count[i] = k


@njit(cache=True, nogil=True, parallel=True)
def pool_jvp(h, dh, half, dtol, kh, kw, sh, sw, ph, pw, dy, dx, out, dout, bits, near):
    """Max pooling of settled pieces (`_maxpool._maxpool_jvp`): out/dout the argmax's value and
    derivative, bits the one-hot argmax (channel, window, position), near whether some element
    other than the argmax stays within dtol of the scale (the largest |element| of any window)
    below the max over the whole piece (reach 0, an exact tie, does not count)."""
    n, C, H, W = h.shape
    Ho, Wo = out.shape[2], out.shape[3]
    kk = kh * kw
    for i in prange(n):
        scale = 0.0
        for c in range(C):
            for oy in range(Ho):
                for ox in range(Wo):
                    top, ty, tx, tp = _argmax(h, i, c, oy, ox, H, W, kh, kw, sh, sw, ph, pw, dy, dx)
                    out[i, c, oy, ox] = top
                    dout[i, c, oy, ox] = dh[i, c, ty, tx]
                    bits[i, ((c * Ho + oy) * Wo + ox) * kk + tp] = True
                    for ky in range(kh):
                        iy = oy * sh - ph + ky * dy
                        if iy < 0 or iy >= H:
                            continue
                        for kx in range(kw):
                            ix = ox * sw - pw + kx * dx
                            if 0 <= ix < W:
                                scale = max(scale, abs(h[i, c, iy, ix]))
        cut = dtol * scale
        hit = False
        for c in range(C):
            for oy in range(Ho):
                for ox in range(Wo):
                    top, dtop = out[i, c, oy, ox], dout[i, c, oy, ox]
                    for ky in range(kh):
                        iy = oy * sh - ph + ky * dy
                        if iy < 0 or iy >= H:
                            continue
                        for kx in range(kw):
                            ix = ox * sw - pw + kx * dx
                            if ix < 0 or ix >= W:
                                continue
                            reach = abs(dh[i, c, iy, ix] - dtop) * half[i] + (top - h[i, c, iy, ix])
                            if reach <= cut and reach > 0:
                                hit = True
        near[i] = hit
