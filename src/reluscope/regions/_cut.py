"""The sweep's working state: the complex as an edge list, cut by one unit's zero line at a time.

See `reluscope.regions.partition` for the algorithm and its tolerances. Face 0 is the outside of
the box; real faces are 1..F (so no -1 needs remapping inside the hot loop).

The cut is written once (`Cuts`) for torch (`Complex`, here) and numpy (`_cut_np.NpComplex`):
each engine supplies the dozen array operations spelled differently in the two libraries and its
own interpolation (the one floating-point step); everything else is integer bookkeeping, so both
follow the same steps.
"""

from __future__ import annotations

from operator import methodcaller

import numpy as np
import torch

from ._complex import NUMPY_ASSEMBLY

__all__ = ["Buf", "Cuts", "Complex", "degenerate_face"]


class Buf:
    """A tensor (torch or numpy) with spare rows so appending is amortised O(1) (doubling)."""

    def __init__(self, t: torch.Tensor):
        self.t, self.n = t, t.shape[0]

    def view(self) -> torch.Tensor:
        return self.t[: self.n]

    def append(self, rows: torch.Tensor) -> None:
        need = self.n + rows.shape[0]
        if need > self.t.shape[0]:
            cap = max(need, 2 * self.t.shape[0], 16)
            if isinstance(self.t, torch.Tensor):
                bigger = torch.empty((cap, *self.t.shape[1:]), dtype=self.t.dtype, device=self.t.device)
            else:  # numpy (the CPU sweep, `_cut_np`)
                bigger = np.empty((cap, *self.t.shape[1:]), dtype=self.t.dtype)
            bigger[: self.n] = self.t[: self.n]
            self.t = bigger
        self.t[self.n:need] = rows
        self.n = need


def _np(t) -> np.ndarray:
    """A numpy view of a sweep buffer's contents (numpy already, or a torch tensor on any device)."""
    return t if isinstance(t, np.ndarray) else t.cpu().numpy()


def degenerate_face() -> FloatingPointError:
    return FloatingPointError(
        "regions_2d: a face met a unit's zero line in other than two boundary points "
        "(numerically degenerate network); try a larger rtol"
    )


class Cuts:
    """The cut of every face by one zero line, for any engine with these: `R`, `E` (`Buf`s),
    `n_faces`, `_interpolate(z, a, b, j)`, and the array operations `_nz` (indices of True), `_take`
    (rows), `_pairs` (values at an [k, 2] index), `_cols` (columns -> matrix), `_cat`, `_unique`,
    `_argsort`, `_sort_faces` (the fast path's sort by face), `_repeat2`, `_equal`, `_arange`,
    `_zeros_bool`, `_zeros_int8`, `_int8`, `_int64` (conversions), `_count` (of True, an int).
    `assembly`: the (order_faces, polygon_areas, fit_affine) that `partition._assemble` builds the
    final complex with, on numpy arrays (numba's engine has compiled twins)."""

    assembly = NUMPY_ASSEMBLY

    def cut(self, j: int, tol: float, origin: Buf) -> None:
        """Split every face crossed by the zero line of pre-activation j."""
        z = self.R.view()[:, j]
        if abs(z).min() <= tol:  # numpy: a bool; torch: a 0-d tensor (one sync, as before)
            return self._cut_general(j, tol, origin)
        # fast path: no vertex on the line, so each cut face has exactly two crossing edges
        pos = z > 0
        Ev = self.E.view()
        pe = self._pairs(pos, Ev[:, :2])
        ci = self._nz(pe[:, 0] != pe[:, 1])
        if ci.shape[0] == 0:
            return
        rows = self._take(Ev, ci)
        a, b = rows[:, 0], rows[:, 1]
        nv = self._interpolate(z, a, b, j)
        # the two new vertices of each cut face, found by sorting (face, vertex) incidences
        pf = rows[:, 2:].reshape(-1)
        order = self._sort_faces(pf)
        pf, pv = pf[order], self._repeat2(nv)[order]
        k0 = self._count(pf == 0)
        cut_faces, ends = pf[k0::2], pv[k0:].reshape(-1, 2)
        if ends.shape[0] != cut_faces.shape[0] or not self._equal(cut_faces, pf[k0 + 1::2]):
            raise degenerate_face()
        # split edges: (a, b) -> (a, m) in place, plus (m, b); negative sides move to new faces
        Ev[ci, 1] = nv
        split = self._cols(nv, b, rows[:, 2], rows[:, 3])
        self._finish(~pe[:, 0], split, ~self._take(pos, b), cut_faces, ends, origin)

    def _finish(self, neg_old, split, neg_split, cut_faces, ends, origin):
        """Append the split edges, move everything on the negative side of a cut face to a new
        face, then add the cut edges (positive side: old id, negative side: new id)."""
        n_cut = cut_faces.shape[0]
        nf1 = self.n_faces + 1
        new_ids = self._arange(nf1, nf1 + n_cut)
        # id f of an edge on the negative side -> remap[f + nf1] (the new id if f was cut)
        remap = self._arange(0, 2 * nf1)
        remap[nf1:] -= nf1
        remap[cut_faces + nf1] = new_ids
        self.E.append(split)
        Ev = self.E.view()
        shift = self._int64(self._cat([neg_old, neg_split])) * nf1
        Ev[:, 2:] = self._pairs(remap, Ev[:, 2:] + shift[:, None])
        self.E.append(self._cols(ends[:, 0], ends[:, 1], cut_faces, new_ids))
        origin.append(self._take(origin.view(), cut_faces))
        self.n_faces += n_cut

    def cut_where(self, z, tol: float, origin: Buf, allowed):
        """Cut only the faces in `allowed` (bool [F + 1]) by the zero line of the vertex values z
        (max-pool: a window entry against a face's current argmax). Returns (the cut faces, which
        keep their id on the positive side and give the negative side a new id; the allowed faces
        wholly on the positive side)."""
        return self._cut_general(None, tol, origin, z, allowed)

    def _cut_general(self, j, tol: float, origin: Buf, z=None, allowed=None):
        """The same cut when some vertices lie on the line (within tol): a face may then be cut
        through old vertices, and only faces with vertices strictly on both sides are cut."""
        if z is None:
            z = self.R.view()[:, j]
        sg = self._int8(z > tol) - self._int8(z < -tol)
        Ev = self.E.view()
        sub, Es = None, Ev
        if allowed is not None:  # only the edges of allowed faces matter: work on those
            sub = self._nz(allowed[Ev[:, 2]] | allowed[Ev[:, 3]])
            Es = self._take(Ev, sub)
        se = self._pairs(sg, Es[:, :2])
        sa, sb = se[:, 0], se[:, 1]
        nf1 = self.n_faces + 1
        has_pos = self._zeros_bool(nf1)
        has_neg = self._zeros_bool(nf1)
        has_pos[Es[(sa > 0) | (sb > 0), 2:].reshape(-1)] = True
        has_neg[Es[(sa < 0) | (sb < 0), 2:].reshape(-1)] = True
        cut = has_pos & has_neg
        cut[0] = False
        pos_only = None
        if allowed is not None:
            pos_only = self._nz(allowed & has_pos & ~has_neg)
            cut &= allowed
        cut_faces = self._nz(cut)
        if cut_faces.shape[0] == 0:
            return cut_faces, pos_only
        ci = self._nz((sa * sb) < 0)
        if sub is not None:  # crossing edges of faces not cut stay whole
            ci = sub[ci[cut[Es[ci, 2]] | cut[Es[ci, 3]]]]
        rows = self._take(Ev, ci)
        a, b = rows[:, 0], rows[:, 1]
        nv = self._interpolate(z, a, b, j)
        n_all = self.R.n
        pf = [rows[:, 2], rows[:, 3]]
        pv = [nv, nv]
        zero_end = self._nz((sa == 0) | (sb == 0))
        if zero_end.shape[0]:
            ez = self._take(Es, zero_end)  # crossing edges have no zero end: rows unchanged
            zf, zv = [], []
            for k in (2, 3):
                for i, s in ((0, sa[zero_end]), (1, sb[zero_end])):
                    keep = (s == 0) & cut[ez[:, k]]
                    zf.append(ez[keep, k])
                    zv.append(ez[keep, i])
            # each zero vertex of a face boundary is met twice (its two edges): keep one
            key = self._unique(self._cat(zf) * n_all + self._cat(zv))
            pf.append(key // n_all)
            pv.append(key % n_all)
        pf, pv = self._cat(pf), self._cat(pv)
        keep = cut[pf]
        pf, pv = pf[keep], pv[keep]
        order = self._argsort(pf * n_all + pv)
        pf, pv = pf[order], pv[order]
        n_cut = cut_faces.shape[0]
        if pf.shape[0] != 2 * n_cut or not (self._equal(pf[0::2], cut_faces) and self._equal(pf[1::2], cut_faces)):
            raise degenerate_face()
        Ev[ci, 1] = nv
        sg_all = self._cat([sg, self._zeros_int8(nv.shape[0])])
        split = self._cols(nv, b, rows[:, 2], rows[:, 3])
        if sub is None:
            neg = self._pairs(sg_all, Ev[:, :2]).sum(1) < 0
        else:  # edges of faces not cut keep their faces whatever their side
            neg = self._zeros_bool(Ev.shape[0])
            neg[sub] = self._pairs(sg_all, Ev[sub, :2]).sum(1) < 0
        neg_split = self._take(sg, b) < 0
        self._finish(neg, split, neg_split, cut_faces, pv.reshape(-1, 2), origin)
        return cut_faces, pos_only


class Complex(Cuts):
    """Mutable working state of the sweep. Face 0 is the outside of the box; real faces are 1..F.

    R [V, n + 2]: per vertex the current layer's pre-activations (n columns) then its plane
    coordinates, so one interpolation makes both for a new vertex. E [E, 4]: per edge its two
    vertex ids and the faces on its two sides.
    """

    def __init__(self, box, device):
        x0, x1, y0, y1 = box
        self.xy0 = torch.tensor([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=torch.float64, device=device)
        # counter-clockwise box: face 1 inside, face 0 outside
        self.E = Buf(torch.tensor([[0, 1, 1, 0], [1, 2, 1, 0], [2, 3, 1, 0], [3, 0, 1, 0]], dtype=torch.int64, device=device))
        self.R: Buf | None = None
        self.n_faces = 1
        self.device = device

    @property
    def xy(self) -> torch.Tensor:
        return self.xy0 if self.R is None else self.R.view()[:, -2:]

    def start_layer(self, Z: torch.Tensor, carry: torch.Tensor | None = None) -> None:
        """R = [Z | carry | xy]: `carry` holds other live values of a graph (a residual's shortcut),
        interpolated at new vertices like Z but never cut."""
        self.R = Buf(torch.cat([Z, self.xy] if carry is None else [Z, carry, self.xy], 1))

    def _interpolate(self, z, a, b, j):
        Rv = self.R.view()
        za, zb = z[a], z[b]
        t = (za / (za - zb)).unsqueeze(1)
        ra = Rv.index_select(0, a)
        new = torch.addcmul(ra, t, Rv.index_select(0, b) - ra)
        if j is not None:
            new[:, j] = 0.0
        nv0 = self.R.n
        self.R.append(new)
        return torch.arange(nv0, nv0 + a.shape[0], device=self.device)

    # the array operations of `Cuts`, in torch
    def _nz(self, mask):
        return mask.nonzero().squeeze(1)

    def _take(self, a, idx):
        return a.index_select(0, idx)

    def _pairs(self, a, idx):
        return a.index_select(0, idx.reshape(-1)).view(-1, 2)

    def _cols(self, *cols):
        return torch.stack(cols, 1)

    def _repeat2(self, v):
        return v.repeat_interleave(2)

    def _equal(self, a, b):
        return bool((a == b).all())

    def _arange(self, lo, hi):
        return torch.arange(lo, hi, device=self.device)

    def _zeros_bool(self, n):
        return torch.zeros(n, dtype=torch.bool, device=self.device)

    def _zeros_int8(self, n):
        return torch.zeros(n, dtype=torch.int8, device=self.device)

    def _count(self, mask):
        return int(mask.sum())

    _int8 = staticmethod(methodcaller("to", torch.int8))
    _int64 = staticmethod(methodcaller("to", torch.int64))
    _cat = staticmethod(torch.cat)
    _unique = staticmethod(torch.unique)
    _argsort = staticmethod(torch.argsort)
    _sort_faces = staticmethod(torch.argsort)

    def face_sums(self, Z: torch.Tensor) -> torch.Tensor:
        """Sum of Z over each face's vertex incidences [F + 1, n] (twice the vertex sum), as a
        sparse (face x vertex) incidence matrix times Z (3x faster than scattering rows)."""
        Ev = self.E.view()
        faces = torch.cat([Ev[:, 2], Ev[:, 2], Ev[:, 3], Ev[:, 3]])
        verts = torch.cat([Ev[:, 0], Ev[:, 1], Ev[:, 0], Ev[:, 1]])
        ones = torch.ones(faces.shape[0], dtype=Z.dtype, device=Z.device)
        M = torch.sparse_coo_tensor(torch.stack([faces, verts]), ones, (self.n_faces + 1, Z.shape[0]), check_invariants=False)
        return torch.sparse.mm(M, Z)
