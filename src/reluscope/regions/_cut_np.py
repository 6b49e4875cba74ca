"""The sweep's working state in numpy, for the CPU: the same algorithm as `_cut.Complex`.

A cut is a few dozen operations on small arrays. numpy does each in about a microsecond where
torch's dispatcher takes several, which is the whole running time for small nets (measured in
bench/regions.py). The GPU keeps the torch version. Both are checked against the same grid
reference in tests/test_regions.py.
"""

from __future__ import annotations

import numpy as np

import torch

from ._cut import Buf, Complex

__all__ = ["NpComplex"]

_I8 = np.int8


def _nz(mask: np.ndarray) -> np.ndarray:
    return mask.nonzero()[0]


def _cols(*cols) -> np.ndarray:
    """np.stack(cols, 1) without its per-call checks (this is called per cut)."""
    out = np.empty((cols[0].shape[0], len(cols)), dtype=cols[0].dtype)
    for i, c in enumerate(cols):
        out[:, i] = c
    return out


class NpComplex:
    """Mutable working state of the sweep (see `_cut.Complex`; same layout, numpy arrays)."""

    def __init__(self, box):
        x0, x1, y0, y1 = box
        self.xy0 = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)
        # counter-clockwise box: face 1 inside, face 0 outside
        self.E = Buf(np.array([[0, 1, 1, 0], [1, 2, 1, 0], [2, 3, 1, 0], [3, 0, 1, 0]], dtype=np.int64))
        self.R: Buf | None = None
        self.n_faces = 1

    @property
    def xy(self) -> np.ndarray:
        return self.xy0 if self.R is None else self.R.view()[:, -2:]

    def to_torch(self, origin: Buf) -> tuple[Complex, Buf]:
        """The same state as a torch `Complex` (sharing memory): large arrays are faster in
        torch's kernels, small ones in numpy."""
        def buf(b):
            out = Buf(torch.from_numpy(b.t))
            out.n = b.n
            return out

        cx = Complex(tuple(self.xy0[[0, 1], 0]) + tuple(self.xy0[[0, 2], 1]), torch.device("cpu"))
        cx.E, cx.R, cx.n_faces = buf(self.E), (None if self.R is None else buf(self.R)), self.n_faces
        return cx, buf(origin)

    def start_layer(self, Z: np.ndarray, carry: np.ndarray | None = None) -> None:
        """R = [Z | carry | xy]: `carry` holds other live values of a graph (a residual's shortcut),
        interpolated at new vertices like Z but never cut."""
        k = 0 if carry is None else carry.shape[1]
        R = np.empty((Z.shape[0], Z.shape[1] + k + 2))
        R[:, :Z.shape[1]], R[:, -2:] = Z, self.xy
        if k:
            R[:, Z.shape[1]:-2] = carry
        self.R = Buf(R)

    def _interpolate(self, z, a, b, j):
        Rv = self.R.view()
        za = z[a]
        t = (za / (za - z[b]))[:, None]
        ra = Rv[a]
        new = ra + t * (Rv[b] - ra)
        if j is not None:
            new[:, j] = 0.0
        nv0 = self.R.n
        self.R.append(new)
        return np.arange(nv0, nv0 + a.shape[0])

    def cut(self, j: int, tol: float, origin: Buf) -> None:
        """Split every face crossed by the zero line of pre-activation j."""
        z = self.R.view()[:, j]
        if np.abs(z).min() <= tol:
            return self._cut_general(j, tol, origin)
        pos = z > 0
        Ev = self.E.view()
        pe = pos[Ev[:, :2]]
        ci = _nz(pe[:, 0] != pe[:, 1])
        if ci.shape[0] == 0:
            return
        rows = Ev[ci]
        a, b = rows[:, 0], rows[:, 1]
        nv = self._interpolate(z, a, b, j)
        pf = rows[:, 2:].reshape(-1)
        order = np.argsort(pf, kind="stable")
        pf, pv = pf[order], np.repeat(nv, 2)[order]
        k0 = int(np.count_nonzero(pf == 0))
        cut_faces, ends = pf[k0::2], pv[k0:].reshape(-1, 2)
        if ends.shape[0] != cut_faces.shape[0] or not np.array_equal(cut_faces, pf[k0 + 1::2]):
            raise FloatingPointError(
                "regions_2d: a face met a unit's zero line in other than two boundary points "
                "(numerically degenerate network); try a larger rtol"
            )
        Ev[ci, 1] = nv
        split = _cols(nv, b, rows[:, 2], rows[:, 3])
        self._finish(~pe[:, 0], split, ~pos[b], cut_faces, ends, origin)

    def _finish(self, neg_old, split, neg_split, cut_faces, ends, origin):
        n_cut = cut_faces.shape[0]
        nf1 = self.n_faces + 1
        new_ids = np.arange(nf1, nf1 + n_cut)
        remap = np.arange(2 * nf1)
        remap[nf1:] -= nf1
        remap[cut_faces + nf1] = new_ids
        self.E.append(split)
        Ev = self.E.view()
        shift = np.concatenate([neg_old, neg_split]).astype(np.int64) * nf1
        Ev[:, 2:] = remap[Ev[:, 2:] + shift[:, None]]
        self.E.append(_cols(ends[:, 0], ends[:, 1], cut_faces, new_ids))
        origin.append(origin.view()[cut_faces])
        self.n_faces += n_cut

    def cut_where(self, z: np.ndarray, tol: float, origin: Buf, allowed: np.ndarray):
        """Cut only the faces in `allowed` (bool [F + 1]) by the zero line of the vertex values z
        (max-pool: a window entry against a face's current argmax). Returns (the cut faces, which
        keep their id on the positive side and give the negative side a new id; the allowed faces
        wholly on the positive side)."""
        return self._cut_general(None, tol, origin, z, allowed)

    def _cut_general(self, j, tol: float, origin: Buf, z=None, allowed=None):
        if z is None:
            z = self.R.view()[:, j]
        sg = (z > tol).astype(_I8) - (z < -tol).astype(_I8)
        Ev = self.E.view()
        sub = None
        Es = Ev
        if allowed is not None:  # only the edges of allowed faces matter: work on those
            sub = _nz(allowed[Ev[:, 2]] | allowed[Ev[:, 3]])
            Es = Ev[sub]
        se = sg[Es[:, :2]]
        sa, sb = se[:, 0], se[:, 1]
        nf1 = self.n_faces + 1
        has_pos = np.zeros(nf1, dtype=bool)
        has_neg = np.zeros(nf1, dtype=bool)
        has_pos[Es[(sa > 0) | (sb > 0), 2:].ravel()] = True
        has_neg[Es[(sa < 0) | (sb < 0), 2:].ravel()] = True
        cut = has_pos & has_neg
        cut[0] = False
        pos_only = None
        if allowed is not None:
            pos_only = _nz(allowed & has_pos & ~has_neg)
            cut &= allowed
        cut_faces = _nz(cut)
        if cut_faces.shape[0] == 0:
            return cut_faces, pos_only
        ci = _nz((sa * sb) < 0)
        if sub is not None:  # crossing edges of faces not cut stay whole
            ci = ci[cut[Es[ci, 2]] | cut[Es[ci, 3]]]
            ci = sub[ci]
        rows = Ev[ci]
        a, b = rows[:, 0], rows[:, 1]
        nv = self._interpolate(z, a, b, j)
        n_all = self.R.n
        pf = [rows[:, 2], rows[:, 3]]
        pv = [nv, nv]
        zero_end = _nz((sa == 0) | (sb == 0))
        if zero_end.shape[0]:
            ez = Es[zero_end]
            zf, zv = [], []
            for k in (2, 3):
                for i, s in ((0, sa[zero_end]), (1, sb[zero_end])):
                    keep = (s == 0) & cut[ez[:, k]]
                    zf.append(ez[keep, k])
                    zv.append(ez[keep, i])
            key = np.unique(np.concatenate(zf) * n_all + np.concatenate(zv))
            pf.append(key // n_all)
            pv.append(key % n_all)
        pf, pv = np.concatenate(pf), np.concatenate(pv)
        keep = cut[pf]
        pf, pv = pf[keep], pv[keep]
        order = np.argsort(pf * n_all + pv)
        pf, pv = pf[order], pv[order]
        n_cut = cut_faces.shape[0]
        if pf.shape[0] != 2 * n_cut or not (np.array_equal(pf[0::2], cut_faces) and np.array_equal(pf[1::2], cut_faces)):
            raise FloatingPointError(
                "regions_2d: a face met a unit's zero line in other than two boundary points "
                "(numerically degenerate network); try a larger rtol"
            )
        Ev[ci, 1] = nv
        sg_all = np.concatenate([sg, np.zeros(nv.shape[0], dtype=_I8)])
        split = _cols(nv, b, rows[:, 2], rows[:, 3])
        if sub is None:
            neg = sg_all[Ev[:, :2]].sum(1) < 0
        else:  # edges of faces not cut keep their faces whatever their side
            neg = np.zeros(Ev.shape[0], dtype=bool)
            neg[sub] = sg_all[Ev[sub, :2]].sum(1) < 0
        neg_split = sg[b] < 0
        self._finish(neg, split, neg_split, cut_faces, pv.reshape(-1, 2), origin)
        return cut_faces, pos_only

    def face_sums(self, Z: np.ndarray) -> np.ndarray:
        """Sum of Z over each face's vertex incidences [F + 1, n] (twice the vertex sum): every
        face, the outside included, has edges, so sorting incidences by face and reducing each
        run gives all rows."""
        Ev = self.E.view()
        faces = np.concatenate([Ev[:, 2], Ev[:, 2], Ev[:, 3], Ev[:, 3]])
        verts = np.concatenate([Ev[:, 0], Ev[:, 1], Ev[:, 0], Ev[:, 1]])
        order = np.argsort(faces, kind="stable")
        starts = np.searchsorted(faces[order], np.arange(self.n_faces + 1))
        return np.add.reduceat(Z[verts[order]], starts, axis=0)
