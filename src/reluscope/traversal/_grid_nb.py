"""Which cells of a [H, W] map a window reads: the one index arithmetic of the compiled kernels
(`_sparse_nb`, `_maxpool_nb`) for convolutions and max-pools (stride, padding, dilation)."""

from __future__ import annotations

from numba import njit

__all__ = ["window", "tap", "unit_of_output"]


@njit(cache=True, nogil=True, inline="always")
def window(oy, ox, H, W, kh, kw, sh, sw, ph, pw, dy, dx, cells, pos):
    """The cells (iy * W + ix) inside the map that output (oy, ox)'s window reads, row-major, and
    their positions in the window (ky * kw + kx), written to cells and pos; returns how many
    (cells in the padding are left out: zeros for a convolution, never the max of a pool)."""
    n = 0
    for ky in range(kh):
        iy = oy * sh - ph + ky * dy
        if iy < 0 or iy >= H:
            continue
        for kx in range(kw):
            ix = ox * sw - pw + kx * dx
            if 0 <= ix < W:
                cells[n] = iy * W + ix
                pos[n] = ky * kw + kx
                n += 1
    return n


@njit(cache=True, nogil=True, inline="always")
def tap(i, pad, k, dil, stride, n):
    """Along one axis: the output whose window reads input index i through tap k, or -1 (the
    inverse of `window`, for pushing an input's change to the outputs it feeds)."""
    m = i + pad - k * dil
    if m < 0 or m % stride != 0:
        return -1
    o = m // stride
    return o if o < n else -1


@njit(cache=True, nogil=True, inline="always")
def unit_of_output(v, Ho, Wo):
    """(channel, row, column) of unit v of a [C, Ho, Wo] map, flattened row-major."""
    co = v // (Ho * Wo)
    rem = v - co * Ho * Wo
    oy = rem // Wo
    return co, oy, rem - oy * Wo
