"""The sweep's cut compiled with numba: the same algorithm and arithmetic as `_cut_np`, in loops.

A cut of the numpy engine is ~30 array calls of about a microsecond each, which is the whole
running time for small nets; here one cut is one compiled call (about 0.4 us of dispatch) doing
O(edges) work, and `cut_layer` does a chain's whole activation node (every unit, then the bits) in
one call. The operations and their order are those of `_cut_np` (same interpolation
formula, same face numbering, same summation order in `face_sums`), so both engines give the same
complex bit for bit (tests/test_regions.py compares them, the torch engine and a grid).

numba is optional (the `fast` extra): this module imports it, and `partition` falls back to the
numpy engine when that import fails. Kernels are compiled on first use and cached on disk (`cache=True`: next to
this file, or numba's user cache directory when that is not writable), so the compile cost
(seconds) is paid once per machine, not per process (figures in the README).
"""

from __future__ import annotations

import numpy as np

from numba import njit  # optional (the `fast` extra): partition falls back to numpy without it

from ._cut import Buf, degenerate_face
from ._cut_np import NpComplex

__all__ = ["NbComplex"]


@njit(cache=True, nogil=True)
def _interpolate(R, n_v, E, ci, k, j):
    """New vertex q on crossing edge ci[q] = (a, b): R[a] + t (R[b] - R[a]), t = za / (za - zb),
    column j set to 0 (the numpy engine's formula, op for op)."""
    m = R.shape[1]
    for q in range(k):
        e = ci[q]
        a, b = E[e, 0], E[e, 1]
        za = R[a, j]
        t = za / (za - R[b, j])
        for c in range(m):
            ra = R[a, c]
            R[n_v + q, c] = ra + t * (R[b, c] - ra)
        R[n_v + q, j] = 0.0


@njit(cache=True, nogil=True)
def _cut_kernel(R, n_v, E, n_e, origin, n_o, n_faces, j, tol):
    """Cut every face crossed by the zero line of column j of R (rows n_v, n_e, n_o in use).
    Returns (status, n_v, n_e, n_o, n_faces) after the cut: status 0 done, 1 a face met the line
    in other than two boundary points, 2 nothing done because R, E or origin is too short: the
    rows needed are returned instead of the counts."""
    return _cut_with(R, n_v, E, n_e, origin, n_o, n_faces, j, tol, np.empty(n_v, np.int8),
                     np.empty(n_e, np.int64), np.empty((_FACE_ROWS, n_faces + 1), np.int64))


_FACE_ROWS = 7  # per-face scratch rows of `_cut_with`: cut, has +, has -, end 1, end 2, ends, new id


@njit(cache=True, nogil=True)
def _cut_with(R, n_v, E, n_e, origin, n_o, n_faces, j, tol, sg, ci, fw):
    """`_cut_kernel` on scratch arrays (sg >= n_v, ci >= n_e, fw [7, >= faces + 1]) that a caller
    cutting many times allocates once: the allocations cost as much as a small cut."""
    nf1 = n_faces + 1
    general = False
    for v in range(n_v):
        if abs(R[v, j]) <= tol:
            general = True
            break
    # sg: side of each vertex: 1, -1, or 0 on the line (general case)
    for v in range(n_v):
        z = R[v, j]
        if general:
            sg[v] = 1 if z > tol else (-1 if z < -tol else 0)
        else:
            sg[v] = 1 if z > 0 else -1
    is_cut, has_pos, has_neg, v1, v2, count, new_id = fw[0], fw[1], fw[2], fw[3], fw[4], fw[5], fw[6]
    is_cut[:nf1] = 0
    n_cut = 0
    if general:  # only faces with vertices strictly on both sides are cut
        has_pos[:nf1] = 0
        has_neg[:nf1] = 0
        for e in range(n_e):
            sa, sb = sg[E[e, 0]], sg[E[e, 1]]
            if sa > 0 or sb > 0:
                has_pos[E[e, 2]] = 1
                has_pos[E[e, 3]] = 1
            if sa < 0 or sb < 0:
                has_neg[E[e, 2]] = 1
                has_neg[E[e, 3]] = 1
        for f in range(1, nf1):
            if has_pos[f] and has_neg[f]:
                is_cut[f] = 1
                n_cut += 1
        if n_cut == 0:
            return 0, n_v, n_e, n_o, n_faces
    k = 0
    for e in range(n_e):
        if sg[E[e, 0]] * sg[E[e, 1]] < 0:
            ci[k] = e
            k += 1
    if not general:
        if k == 0:
            return 0, n_v, n_e, n_o, n_faces
        n_cut = k  # at most: each cut face has two of the k crossing edges, each edge two faces
    if R.shape[0] < n_v + k or E.shape[0] < n_e + k + n_cut or origin.shape[0] < n_o + n_cut:
        return 2, n_v + k, n_e + k + n_cut, n_o + n_cut, n_faces
    _interpolate(R, n_v, E, ci, k, j)
    # the two boundary points of each cut face (vertex ids ascending, as the numpy engine sorts)
    v1[:nf1] = -1
    v2[:nf1] = -1
    count[:nf1] = 0
    for q in range(k):
        e = ci[q]
        for s in range(2, 4):
            f = E[e, s]
            if f == 0 or (general and not is_cut[f]):
                continue
            if not general:
                is_cut[f] = 1
            if count[f] == 0:
                v1[f] = n_v + q
            elif count[f] == 1:
                v2[f] = n_v + q
            count[f] += 1
    if general:  # old vertices on the line, each met twice per face (its two edges): once
        for e in range(n_e):
            for i in range(2):
                v = E[e, i]
                if sg[v] != 0:
                    continue
                for s in range(2, 4):
                    f = E[e, s]
                    if not is_cut[f] or v == v1[f] or v == v2[f]:
                        continue
                    if count[f] == 0:
                        v1[f] = v
                    elif count[f] == 1:
                        v2[f] = v
                    count[f] += 1
    for f in range(nf1):  # cut face f -> its new face (the negative side), ascending f
        new_id[f] = f
    n_cut = 0
    for f in range(1, nf1):
        if is_cut[f]:
            if count[f] != 2:
                return 1, n_v, n_e, n_o, n_faces
            new_id[f] = nf1 + n_cut
            n_cut += 1
    # split the crossing edges: (a, b) -> (a, m) in place plus (m, b) appended
    for q in range(k):
        e = ci[q]
        b = E[e, 1]
        E[e, 1] = n_v + q
        E[n_e + q, 0] = n_v + q
        E[n_e + q, 1] = b
        E[n_e + q, 2] = E[e, 2]
        E[n_e + q, 3] = E[e, 3]
    # everything on the negative side of a cut face moves to its new face
    for e in range(n_e + k):
        if e < n_e:
            a = E[e, 0]
            b = E[e, 1]
            neg = sg[a] + (sg[b] if b < n_v else 0) < 0
        else:
            neg = sg[E[e, 1]] < 0
        if neg:
            E[e, 2] = new_id[E[e, 2]]
            E[e, 3] = new_id[E[e, 3]]
    n_e += k
    for f in range(1, nf1):
        if is_cut[f]:
            lo, hi = (v1[f], v2[f]) if v1[f] < v2[f] else (v2[f], v1[f])
            E[n_e, 0] = lo
            E[n_e, 1] = hi
            E[n_e, 2] = f
            E[n_e, 3] = new_id[f]
            n_e += 1
            origin[n_o] = origin[f]
            n_o += 1
    return 0, n_v + k, n_e, n_o, n_faces + n_cut


@njit(cache=True, nogil=True)
def _face_sums_kernel(E, n_e, Z, n, n_faces):
    """The numpy engine's face sums of Z's first n columns in its summation order: per face,
    incidences (left face, end a), (left, b), (right, a), (right, b), each in edge order."""
    out = np.zeros((n_faces + 1, n))
    for s in range(2, 4):
        for i in range(2):
            for e in range(n_e):
                f, v = E[e, s], E[e, i]
                for c in range(n):
                    out[f, c] += Z[v, c]
    return out


@njit(cache=True, nogil=True)
def _grow(a, n, rows, factor):
    """a with room for `rows` rows, its first n kept: itself, or a copy `factor` times longer."""
    if rows <= a.shape[0]:
        return a
    b = np.empty((max(rows, factor * a.shape[0], 64),) + a.shape[1:], a.dtype)
    b[:n] = a[:n]
    return b


@njit(cache=True, nogil=True)
def cut_layer(Z, xy, E, n_e, n_faces, patterns, rtol, per_face, budget):
    """One activation node of a chain in one call: what `NbComplex.start_layer`, `_walk.cut_relu`
    (with its budget check after every unit) and `State.add_bits` do, in the same arithmetic.

    Z [V, n] the node's input at the vertices xy [V, 2]; E (rows n_e in use) the edges;
    patterns [F + 1, u] the faces' bits so far. Returns (status, units done, estimated faces, R,
    vertices, E, edges, faces, patterns): status 0 done (R = [Z | xy] at the new vertices), 1 a
    face met a line in other than two boundary points, 3 the estimate is over the budget."""
    v, n = Z.shape
    R = np.empty((2 * v + 16, n + 2))
    R[:v, :n] = Z
    R[:v, n:] = xy
    tols = np.empty(n)
    for j in range(n):  # rtol * max |z_j| over the vertices at the node's start
        m = 0.0
        for r in range(v):
            m = max(m, abs(Z[r, j]))
        tols[j] = rtol * m
    origin = np.empty(2 * n_faces + 64, np.int64)
    for f in range(n_faces + 1):
        origin[f] = f
    n_v, n_o, f_start, est = v, n_faces + 1, n_faces, 0.0
    sg = np.empty(R.shape[0], np.int8)
    ci = np.empty(E.shape[0], np.int64)
    fw = np.empty((_FACE_ROWS, origin.shape[0]), np.int64)
    for j in range(n):
        while True:
            if sg.shape[0] < n_v:  # scratch as long as the tables it indexes
                sg = np.empty(R.shape[0], np.int8)
            if ci.shape[0] < n_e:
                ci = np.empty(E.shape[0], np.int64)
            if fw.shape[1] < n_faces + 1:
                fw = np.empty((_FACE_ROWS, origin.shape[0]), np.int64)
            status, nv, ne, no, nf = _cut_with(R, n_v, E, n_e, origin, n_o, n_faces, j, tols[j], sg, ci, fw)
            if status != 2:
                break
            R = _grow(R, n_v, nv, 2)
            E = _grow(E, n_e, ne, 4)
            origin = _grow(origin, n_o, no, 4)
        if status == 1:
            return 1, j, est, R, n_v, E, n_e, n_faces, patterns
        n_v, n_e, n_o, n_faces = nv, ne, no, nf
        est = f_start + (n_faces - f_start) * n / (j + 1)
        if est * per_face > budget and n_faces > 64:
            return 3, j + 1, est, R, n_v, E, n_e, n_faces, patterns
    sums = _face_sums_kernel(E, n_e, R, n, n_faces)  # the bits: the numpy engine's face sums
    u = patterns.shape[1]
    out = np.empty((n_faces + 1, u + n), np.bool_)
    for f in range(n_faces + 1):
        out[f, :u] = patterns[origin[f]]
        for c in range(n):
            out[f, u + c] = sums[f, c] > 0
    return 0, n, est, R, n_v, E, n_e, n_faces, out


def _reserve(buf: Buf, rows: int, factor: int = 2) -> None:
    """Grow buf (by `factor`) so it holds `rows` rows."""
    if rows > buf.t.shape[0]:
        bigger = np.empty((max(rows, factor * buf.t.shape[0], 64), *buf.t.shape[1:]), dtype=buf.t.dtype)
        bigger[: buf.n] = buf.t[: buf.n]
        buf.t = bigger


class NbComplex(NpComplex):
    """`NpComplex` with the cut, the face sums and the final assembly compiled (numba); same
    state, same results. `assembly` (NpComplex's, overridden after the compiled functions below):
    the compiled (order_faces, polygon_areas, fit_affine) for `partition._assemble`."""

    def start_layer(self, Z: np.ndarray, carry: np.ndarray | None = None) -> None:
        """R = [Z | carry | xy] as in `NpComplex.start_layer`, with as many spare rows again: the
        layer's cuts then seldom stop to grow R."""
        v, n = Z.shape
        k = 0 if carry is None else carry.shape[1]
        R = np.empty((2 * v + 16, n + k + 2))
        R[:v, :n], R[:v, n + k:] = Z, self.xy
        if k:
            R[:v, n:n + k] = carry
        self.R = Buf(R)
        self.R.n = v

    def cut(self, j: int, tol: float, origin: Buf) -> None:
        """Split every face crossed by the zero line of pre-activation j."""
        R, E = self.R, self.E
        while True:
            status, nv, ne, no, nf = _cut_kernel(R.t, R.n, E.t, E.n, origin.t, origin.n, self.n_faces, j, tol)
            if status == 0:
                R.n, E.n, origin.n, self.n_faces = nv, ne, no, nf
                return
            if status == 1:
                raise degenerate_face()
            _reserve(R, nv)  # start_layer left spare rows: doubling suffices for the wide vertex table
            _reserve(E, ne, 4)  # narrow int tables, starting small every layer (origin): grow faster
            _reserve(origin, no, 4)

    def face_sums(self, Z: np.ndarray) -> np.ndarray:
        """Sum of Z over each face's vertex incidences [F + 1, n] (twice the vertex sum)."""
        return _face_sums_kernel(self.E.t, self.E.n, np.ascontiguousarray(Z), Z.shape[1], self.n_faces)


# ------------------------------------------------------------------ the final complex (`_complex`)


@njit(cache=True, nogil=True)
def order_faces(X, EV, EF, n_faces):
    """`_complex.order_faces` compiled: each face's vertices counter-clockwise (by angle about the
    mean of its vertex incidences, ties by vertex id), faces concatenated with offsets."""
    n_e = EV.shape[0]
    deg = np.zeros(n_faces, np.int64)
    sx = np.zeros(n_faces)
    sy = np.zeros(n_faces)
    for s in range(2):  # the incidence order of the numpy version's bincount sums
        for i in range(2):
            for e in range(n_e):
                f = EF[e, s]
                if f >= 0:
                    v = EV[e, i]
                    deg[f] += 1
                    sx[f] += X[v, 0]
                    sy[f] += X[v, 1]
    start = np.zeros(n_faces + 1, np.int64)
    for f in range(n_faces):
        start[f + 1] = start[f] + deg[f]
    inc = np.empty(start[n_faces], np.int64)  # every boundary vertex twice (its two edges)
    fill = start[:-1].copy()
    for s in range(2):
        for i in range(2):
            for e in range(n_e):
                f = EF[e, s]
                if f >= 0:
                    inc[fill[f]] = EV[e, i]
                    fill[f] += 1
    ang = np.empty(inc.shape[0])
    off = np.zeros(n_faces + 1, np.int64)
    fv = np.empty(inc.shape[0] // 2, np.int64)
    seen = np.full(X.shape[0], -1, np.int64)
    for f in range(n_faces):
        cx, cy = sx[f] / deg[f], sy[f] / deg[f]
        lo, hi = start[f], start[f + 1]
        # each vertex once (its two incidences have the same key, so the sorted unique vertices
        # are the numpy version's sorted incidences [::2]): half the arctan2 calls
        m = lo
        for i in range(lo, hi):
            if seen[inc[i]] != f:
                seen[inc[i]] = f
                inc[m] = inc[i]
                m += 1
        if 2 * (m - lo) != hi - lo:  # not every vertex twice (a broken complex): as numpy does
            m = hi
            for i in range(lo, hi):
                inc[i] = -1
            fill[f] = lo
            for s in range(2):
                for i in range(2):
                    for e in range(n_e):
                        if EF[e, s] == f:
                            inc[fill[f]] = EV[e, i]
                            fill[f] += 1
        for i in range(lo, m):
            ang[i] = np.arctan2(X[inc[i], 1] - cy, X[inc[i], 0] - cx)
        for i in range(lo + 1, m):  # insertion sort by (angle, vertex): faces are small
            a, v = ang[i], inc[i]
            k = i - 1
            while k >= lo and (ang[k] > a or (ang[k] == a and inc[k] > v)):
                ang[k + 1], inc[k + 1] = ang[k], inc[k]
                k -= 1
            ang[k + 1], inc[k + 1] = a, v
        off[f + 1] = off[f] + (hi - lo) // 2
        step = 1 if m < hi else 2  # the unique vertices, or one of each sorted pair ([::2])
        for i in range(off[f], off[f + 1]):
            fv[i] = inc[lo + step * (i - off[f])]
    return fv, off


@njit(cache=True, nogil=True)
def polygon_areas(V, fv, off):
    """Shoelace areas [F], in the arithmetic of `_complex.polygon_moments` (relative to each
    face's first vertex)."""
    n_f = off.shape[0] - 1
    area = np.zeros(n_f)
    for f in range(n_f):
        lo, hi = off[f], off[f + 1]
        rx, ry = V[fv[lo], 0], V[fv[lo], 1]
        acc = 0.0
        for i in range(lo, hi):
            nx = i + 1 if i + 1 < hi else lo
            px, py = V[fv[i], 0] - rx, V[fv[i], 1] - ry
            qx, qy = V[fv[nx], 0] - rx, V[fv[nx], 1] - ry
            acc += px * qy - py * qx
        area[f] = acc / 2
    return area


@njit(cache=True, nogil=True)
def fit_affine(X, out, fv, off):
    """`_complex.fit_affine` compiled: least-squares affine maps A [F, out, 2], c [F, out] from each
    face's vertex outputs, and each face's width."""
    n_f, n_o = off.shape[0] - 1, out.shape[1]
    A = np.empty((n_f, n_o, 2))
    c = np.empty((n_f, n_o))
    width = np.empty(n_f)
    om = np.empty(n_o)
    b0 = np.empty(n_o)
    b1 = np.empty(n_o)
    for f in range(n_f):
        lo, hi = off[f], off[f + 1]
        cnt = hi - lo
        px = py = 0.0
        om[:] = 0.0
        for i in range(lo, hi):
            v = fv[i]
            px += X[v, 0]
            py += X[v, 1]
            for o in range(n_o):
                om[o] += out[v, o]
        px /= cnt
        py /= cnt
        for o in range(n_o):
            om[o] /= cnt
        m00 = m01 = m11 = 0.0
        b0[:] = 0.0
        b1[:] = 0.0
        for i in range(lo, hi):
            v = fv[i]
            dx, dy = X[v, 0] - px, X[v, 1] - py
            m00 += dx * dx
            m01 += dx * dy
            m11 += dy * dy
            for o in range(n_o):
                d = out[v, o] - om[o]
                b0[o] += dx * d
                b1[o] += dy * d
        det = m00 * m11 - m01**2
        half = (m00 + m11) / 2
        lam = half - np.sqrt(max(half**2 - det, 0.0))
        width[f] = np.sqrt(max(lam, 0.0) / cnt)
        for o in range(n_o):
            a0 = (m11 * b0[o] - m01 * b1[o]) / det
            a1 = (-m01 * b0[o] + m00 * b1[o]) / det
            A[f, o, 0] = a0
            A[f, o, 1] = a1
            c[f, o] = om[o] - (a0 * px + a1 * py)
    return A, c, width


NbComplex.assembly = (order_faces, polygon_areas, fit_affine)  # overrides NpComplex.assembly (numpy's)
NbComplex.cut_layer = staticmethod(cut_layer)  # a chain's activation node in one call (`_walk.walk_chain`)
