"""KCHA's per-block work compiled with numba (optional, the `fast` extra): one pass for the
update, the stopping sums and the column maxima, one for the pruning; `kcha` falls back to the
numpy versions there (same arithmetic, so the same result) when numba does not import."""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["compact", "first_step", "gather", "step"]


@njit(cache=True, nogil=True)
def gather(K, rows, cols):
    """K[rows][:, cols] as a new contiguous array."""
    out = np.empty((rows.shape[0], cols.shape[0]), K.dtype)
    for a in range(rows.shape[0]):
        r = rows[a]
        for b in range(cols.shape[0]):
            out[a, b] = K[r, cols[b]]
    return out


@njit(cache=True, nogil=True)
def compact(buf, m, idx):
    """buf[:m*m] holds an m x m matrix: leave its rows and columns `idx` (increasing) in
    buf[:k*k] as a k x k matrix, in place (each entry moves to a lower address, after it is read)."""
    k = idx.shape[0]
    for a in range(k):
        src = idx[a] * m
        for b in range(k):
            buf[a * k + b] = buf[src + idx[b]]


@njit(cache=True, nogil=True)
def step(C, KC, KUC, prune):
    """C <- C * sqrt(KUC / KC) in place (zeros stay zero), then entries below prune x their
    column's largest set to zero. Returns (sum |new - old|, sum old) in float64, the rows that
    still hold a non-zero, and their count. Loops run along rows with one accumulator per column,
    so they vectorise without reordering any floating-point sum."""
    u, b = C.shape
    diff = np.zeros(b)
    total = np.zeros(b)
    top = np.zeros(b, C.dtype)
    for i in range(u):
        for j in range(b):
            c = C[i, j]
            kc = KC[i, j]
            new = c * np.sqrt(KUC[i, j] / kc) if (kc > 0 and c != 0) else c
            diff[j] += abs(np.float64(new) - np.float64(c))
            total[j] += np.float64(c)
            C[i, j] = new
            top[j] = max(top[j], new)
    for j in range(b):
        top[j] = prune * top[j]
    keep = np.zeros(u, np.bool_)
    kept = 0
    for i in range(u):
        alive = 0
        for j in range(b):
            c = C[i, j]
            c = c if c >= top[j] else 0
            C[i, j] = c
            alive |= c != 0
        keep[i] = alive != 0
        kept += alive != 0
    return diff.sum(), total.sum(), keep, kept


@njit(cache=True, nogil=True)
def first_step(K, inv, cols, prune, dtype_like):
    """Step 1 in closed form for the block `cols`: C1_ij = sqrt(K_ji inv_i) (K symmetric, so row j
    is column j), pruned like `step`. Returns (sum |C1 - 1/N| over the block's columns, the rows
    still non-zero, C1 on those rows in the working dtype)."""
    n, b = K.shape[0], cols.shape[0]
    c0 = 1.0 / n
    diff = 0.0
    top = np.zeros(b)
    for jj in range(b):
        j = cols[jj]
        for i in range(n):
            c = np.sqrt(K[j, i] * inv[i])
            diff += abs(c - c0)
            top[jj] = max(top[jj], c)
    alive = np.zeros(n, np.bool_)
    for jj in range(b):
        j = cols[jj]
        t = prune * top[jj]
        for i in range(n):
            c = np.sqrt(K[j, i] * inv[i])
            if c != 0 and c >= t:
                alive[i] = True
    rows = alive.nonzero()[0]
    C = np.empty((rows.shape[0], b), dtype_like.dtype)
    for jj in range(b):
        j = cols[jj]
        t = prune * top[jj]
        for a in range(rows.shape[0]):
            c = np.sqrt(K[j, rows[a]] * inv[rows[a]])
            C[a, jj] = c if c >= t else 0
    return diff, rows, C
