"""Max pooling in the 2-D sweep: argmax cells cut exactly, then merged back to pattern classes.

Inside a face every window entry is affine, so the face splits into the cells where one entry is
the window's maximum; two cells meet where two entries are equal, the zero line of their
difference (the same cut as a ReLU, on a difference of pre-activations). Per window, each face
starts from the argmax at an interior point (the mean of its vertices) and is cut by the line
where another entry meets that argmax, only inside faces with that argmax (`cut_where`); the side
where the other entry wins takes it as its argmax, and this repeats until no face is cut: then the
argmax is constant on every face. Such cuts can split one argmax cell into several faces (a cell
reached through two different entries), so afterwards faces with the same origin (face at the
node's start) and the same argmax in every window are merged: each pattern class of a
piecewise-linear net is convex, so the merged face is one convex polygon, and the vertices left
inside it or in the middle of a straight side are dropped.
"""

from __future__ import annotations

import numpy as np
import torch

from ..network import MaxPool2d
from ._cut import Buf, _np

__all__ = ["window_columns", "maxpool_bits", "cut_windows", "merge_equal_faces"]


def window_columns(layer: MaxPool2d, shape) -> np.ndarray:
    """int [C * L, K]: the flat input column of each entry of each window (-1: padding)."""
    c, h, w = shape
    idx = torch.arange(c * h * w, dtype=torch.float64).reshape(1, c, h, w)
    win = layer.windows(idx, fill=-1.0)[0]  # [C, K, L]
    return win.permute(0, 2, 1).reshape(-1, win.shape[1]).to(torch.int64).numpy()


def maxpool_bits(layer: MaxPool2d, sums, shape) -> torch.Tensor:
    """bool [F + 1, C * L * K]: the one-hot argmax of every window (first maximum on ties, the
    layer's own `bits` order) from each face's vertex sums (a positive multiple of the value at an
    interior point)."""
    s = torch.as_tensor(sums)
    return layer.bits(s.reshape(s.shape[0], *shape))  # torch's pooling indices, not unfolded windows


def cut_windows(st, cols: np.ndarray, colmax: np.ndarray, rtol: float, progress=None) -> None:
    """Cut the complex of sweep state `st` until every window's argmax is constant on every face."""
    for w in range(cols.shape[0]):
        entries = [int(e) for e in cols[w] if e >= 0]
        if len(entries) > 1:
            _settle_window(st, entries, colmax, rtol)
        if progress is not None:
            progress(w)


def _settle_window(st, entries, colmax, rtol) -> None:
    cx = st.cx
    Rv = cx.R.view()
    sums = cx.face_sums(Rv[:, entries])
    a = sums.argmax(1)  # first maximum, numpy and torch alike
    a[0] = -1  # the outside face
    m = len(entries)
    changed = True
    while changed:
        changed = False
        for p in range(m):
            for q in range(m):
                if q == p:
                    continue
                if st.maybe_to_torch():
                    a = torch.from_numpy(a)
                cx = st.cx
                Rv = cx.R.view()
                cp, cq = entries[p], entries[q]
                tol = rtol * max(colmax[cp], colmax[cq])
                d = Rv[:, cq] - Rv[:, cp]
                if float(d.max()) <= tol:
                    continue
                allowed = a == p
                if not bool(allowed.any()):
                    break
                cut_faces, pos_only = cx.cut_where(d, tol, st.origin, allowed)
                if cut_faces.shape[0]:
                    a = (np.concatenate if st.on_cpu else torch.cat)([a, a[cut_faces]])
                    a[cut_faces] = q
                    changed = True
                if pos_only.shape[0]:
                    a[pos_only] = q
                    changed = True


def merge_equal_faces(st, bits: torch.Tensor) -> torch.Tensor:
    """Merge adjacent faces with the same origin and the same `bits` (bool torch [F + 1, k]); returns
    the bits of the merged faces. Updates st.cx (edges, vertices, face count) and st.origin."""
    cx = st.cx
    origin = _np(st.origin.view())
    b = _np(bits)
    key = np.concatenate([origin[:, None].astype(np.int64), np.packbits(b, axis=1).astype(np.int64)], 1)
    uniq, first, inv = np.unique(key, axis=0, return_index=True, return_inverse=True)
    inv = inv.reshape(-1)
    if uniq.shape[0] == key.shape[0]:
        return bits
    # face 0 (the outside, origin 0) is the smallest key, so it keeps id 0
    E = _np(cx.E.view()).copy()
    keep = inv[E[:, 2]] != inv[E[:, 3]]
    E = E[keep]
    E[:, 2:] = inv[E[:, 2:]]
    E = _splice_straight_vertices(E, _np(cx.R.view()).shape[0])
    R = _np(cx.R.view())
    used = np.zeros(R.shape[0], dtype=bool)
    used[E[:, :2].ravel()] = True
    used[:4] = True  # the box corners keep ids 0..3
    new_id = np.cumsum(used) - 1
    E[:, :2] = new_id[E[:, :2]]
    R = R[used]
    if st.on_cpu:
        cx.E, cx.R = Buf(E), Buf(np.ascontiguousarray(R))
        st.origin = Buf(origin[first])
    else:
        dev = cx.device
        cx.E, cx.R = Buf(torch.from_numpy(E).to(dev)), Buf(torch.from_numpy(R).to(dev))
        st.origin = Buf(torch.from_numpy(origin[first]).to(dev))
    cx.n_faces = uniq.shape[0] - 1
    return torch.from_numpy(b[first]).to(bits.device)


def _splice_straight_vertices(E: np.ndarray, n_vertices: int) -> np.ndarray:
    """Join the two edges at every vertex left with exactly two edges between the same two faces
    (a point in the middle of a straight side of a merged convex face; box corners excepted)."""
    ends = E[:, :2]
    deg = np.bincount(ends.ravel(), minlength=n_vertices)
    deg[:4] = 0
    cand = np.nonzero(deg == 2)[0]
    if cand.shape[0] == 0:
        return E
    inc = ends.ravel()
    order = np.argsort(inc, kind="stable")
    start = np.searchsorted(inc[order], cand)
    e1, e2 = order[start] // 2, order[start + 1] // 2
    E = E.copy()
    parent = np.arange(E.shape[0])
    dead = np.zeros(E.shape[0], dtype=bool)

    def find(e):
        while parent[e] != e:
            parent[e] = parent[parent[e]]
            e = parent[e]
        return e

    for v, x, y in zip(cand.tolist(), e1.tolist(), e2.tolist()):
        x, y = find(x), find(y)
        if x == y or {int(E[x, 2]), int(E[x, 3])} != {int(E[y, 2]), int(E[y, 3])}:
            continue
        ox = E[x, 0] if E[x, 1] == v else E[x, 1]
        oy = E[y, 0] if E[y, 1] == v else E[y, 1]
        E[x, 0], E[x, 1] = ox, oy
        parent[y], dead[y] = x, True
    return E[~dead]
