"""The sweep's working state: the complex as an edge list, cut by one unit's zero line at a time.

See `reluscope.regions.partition` for the algorithm and its tolerances. Face 0 is the outside of
the box; real faces are 1..F (so no -1 needs remapping inside the hot loop).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["Buf", "Complex"]


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


class Complex:
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

    def cut(self, j: int, tol: float, origin: Buf) -> None:
        """Split every face crossed by the zero line of pre-activation j."""
        z = self.R.view()[:, j]
        if float(z.abs().min()) <= tol:
            return self._cut_general(j, tol, origin)
        # fast path: no vertex on the line, so each cut face has exactly two crossing edges
        pos = z > 0
        Ev = self.E.view()
        pe = pos.index_select(0, Ev[:, :2].reshape(-1)).view(-1, 2)
        ci = (pe[:, 0] != pe[:, 1]).nonzero().squeeze(1)
        if ci.shape[0] == 0:
            return
        rows = Ev.index_select(0, ci)
        a, b = rows[:, 0], rows[:, 1]
        nv = self._interpolate(z, a, b, j)
        # the two new vertices of each cut face, found by sorting (face, vertex) incidences
        pf = rows[:, 2:].reshape(-1)
        pv = nv.repeat_interleave(2)
        order = torch.argsort(pf)
        pf, pv = pf[order], pv[order]
        k0 = int((pf == 0).sum())
        cut_faces, ends = pf[k0::2], pv[k0:].reshape(-1, 2)
        if ends.shape[0] != cut_faces.shape[0] or not bool((cut_faces == pf[k0 + 1::2]).all()):
            raise FloatingPointError(
                "regions_2d: a face met a unit's zero line in other than two boundary points "
                "(numerically degenerate network); try a larger rtol"
            )
        # split edges: (a, b) -> (a, m) in place, plus (m, b); negative sides move to new faces
        Ev[ci, 1] = nv
        split = torch.cat([torch.stack([nv, b], 1), rows[:, 2:]], 1)
        self._finish(~pe[:, 0], split, ~pos.index_select(0, b), cut_faces, ends, origin)

    def _finish(self, neg_old, split, neg_split, cut_faces, ends, origin):
        """Append the split edges, move everything on the negative side of a cut face to a new
        face, then add the cut edges (positive side: old id, negative side: new id)."""
        n_cut = cut_faces.shape[0]
        nf1 = self.n_faces + 1
        new_ids = torch.arange(nf1, nf1 + n_cut, device=self.device)
        # id f of an edge on the negative side -> remap[f + nf1] (the new id if f was cut)
        remap = torch.arange(nf1, device=self.device).repeat(2)
        remap[cut_faces + nf1] = new_ids
        self.E.append(split)
        Ev = self.E.view()
        shift = torch.cat([neg_old, neg_split]).to(torch.int64).mul_(nf1).unsqueeze(1)
        Ev[:, 2:] = remap.index_select(0, (Ev[:, 2:] + shift).view(-1)).view(-1, 2)
        self.E.append(torch.stack([ends[:, 0], ends[:, 1], cut_faces, new_ids], 1))
        origin.append(origin.view().index_select(0, cut_faces))
        self.n_faces += n_cut

    def cut_where(self, z: torch.Tensor, tol: float, origin: Buf, allowed: torch.Tensor):
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
        sg = (z > tol).to(torch.int8) - (z < -tol).to(torch.int8)
        Ev = self.E.view()
        sub, Es = None, Ev
        if allowed is not None:  # only the edges of allowed faces matter: work on those
            sub = (allowed[Ev[:, 2]] | allowed[Ev[:, 3]]).nonzero().squeeze(1)
            Es = Ev.index_select(0, sub)
        se = sg.index_select(0, Es[:, :2].reshape(-1)).view(-1, 2)
        sa, sb = se[:, 0], se[:, 1]
        nf1 = self.n_faces + 1
        has_pos = torch.zeros(nf1, dtype=torch.bool, device=self.device)
        has_neg = torch.zeros(nf1, dtype=torch.bool, device=self.device)
        has_pos[Es[(sa > 0) | (sb > 0), 2:].flatten()] = True
        has_neg[Es[(sa < 0) | (sb < 0), 2:].flatten()] = True
        cut = has_pos & has_neg
        cut[0] = False
        pos_only = None
        if allowed is not None:
            pos_only = (allowed & has_pos & ~has_neg).nonzero().squeeze(1)
            cut &= allowed
        cut_faces = cut.nonzero().squeeze(1)
        if cut_faces.shape[0] == 0:
            return cut_faces, pos_only
        ci = ((sa * sb) < 0).nonzero().squeeze(1)
        if sub is not None:  # crossing edges of faces not cut stay whole
            ci = sub[ci[cut[Es[ci, 2]] | cut[Es[ci, 3]]]]
        rows = Ev.index_select(0, ci)
        a, b = rows[:, 0], rows[:, 1]
        nv = self._interpolate(z, a, b, j)
        n_all = self.R.n
        pf = [rows[:, 2], rows[:, 3]]
        pv = [nv, nv]
        zero_end = ((sa == 0) | (sb == 0)).nonzero().squeeze(1)
        if zero_end.shape[0]:
            ez = Es.index_select(0, zero_end)  # crossing edges have no zero end: rows unchanged
            zf, zv = [], []
            for k in (2, 3):
                for i, s in ((0, sa[zero_end]), (1, sb[zero_end])):
                    keep = (s == 0) & cut[ez[:, k]]
                    zf.append(ez[keep, k])
                    zv.append(ez[keep, i])
            # each zero vertex of a face boundary is met twice (its two edges): keep one
            key = torch.unique(torch.cat(zf) * n_all + torch.cat(zv))
            pf.append(key // n_all)
            pv.append(key % n_all)
        pf, pv = torch.cat(pf), torch.cat(pv)
        keep = cut[pf]
        pf, pv = pf[keep], pv[keep]
        order = torch.argsort(pf * n_all + pv)
        pf, pv = pf[order], pv[order]
        n_cut = cut_faces.shape[0]
        if pf.shape[0] != 2 * n_cut or not bool((pf[0::2] == cut_faces).all() and (pf[1::2] == cut_faces).all()):
            raise FloatingPointError(
                "regions_2d: a face met a unit's zero line in other than two boundary points "
                "(numerically degenerate network); try a larger rtol"
            )
        Ev[ci, 1] = nv
        sg_all = torch.cat([sg, torch.zeros(nv.shape[0], dtype=torch.int8, device=self.device)])
        split = torch.cat([torch.stack([nv, b], 1), rows[:, 2:]], 1)
        if sub is None:
            neg = sg_all.index_select(0, Ev[:, :2].reshape(-1)).view(-1, 2).sum(1) < 0
        else:  # edges of faces not cut keep their faces whatever their side
            neg = torch.zeros(Ev.shape[0], dtype=torch.bool, device=self.device)
            neg[sub] = sg_all.index_select(0, Ev[sub, :2].reshape(-1)).view(-1, 2).sum(1) < 0
        neg_split = sg.index_select(0, b) < 0
        self._finish(neg, split, neg_split, cut_faces, pv.reshape(-1, 2), origin)
        return cut_faces, pos_only

    def face_sums(self, Z: torch.Tensor) -> torch.Tensor:
        """Sum of Z over each face's vertex incidences [F + 1, n] (twice the vertex sum), as a
        sparse (face x vertex) incidence matrix times Z (3x faster than scattering rows)."""
        Ev = self.E.view()
        faces = torch.cat([Ev[:, 2], Ev[:, 2], Ev[:, 3], Ev[:, 3]])
        verts = torch.cat([Ev[:, 0], Ev[:, 1], Ev[:, 0], Ev[:, 1]])
        ones = torch.ones(faces.shape[0], dtype=Z.dtype, device=Z.device)
        M = torch.sparse_coo_tensor(torch.stack([faces, verts]), ones, (self.n_faces + 1, Z.shape[0]), check_invariants=False)
        return torch.sparse.mm(M, Z)
