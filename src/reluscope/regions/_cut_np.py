"""The sweep's working state in numpy, for the CPU: the same algorithm as `_cut.Complex` (the cut
itself is `_cut.Cuts`, written once; here the numpy spelling of its array operations).

A cut is a few dozen operations on small arrays. numpy does each in about a microsecond where
torch's dispatcher takes several, which is the whole running time for small nets (measured in
bench/regions.py). The GPU keeps the torch version. Both are checked against the same grid
reference in tests/test_regions.py.
"""

from __future__ import annotations

import operator
from functools import partial
from operator import methodcaller

import numpy as np

import torch

from ._cut import Buf, Complex, Cuts

__all__ = ["NpComplex"]



def _nz(mask: np.ndarray) -> np.ndarray:
    return mask.nonzero()[0]


def _cols(*cols) -> np.ndarray:
    """np.stack(cols, 1) without its per-call checks (this is called per cut)."""
    out = np.empty((cols[0].shape[0], len(cols)), dtype=cols[0].dtype)
    for i, c in enumerate(cols):
        out[:, i] = c
    return out


class NpComplex(Cuts):
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

    # the array operations of `Cuts`, in numpy: C-level callables where one exists (no Python
    # frame per operation, so the shared cut costs what the numpy-only one did)
    _nz = staticmethod(_nz)
    _take = _pairs = staticmethod(operator.getitem)  # numpy indexes by an [k, 2] array directly
    _cols = staticmethod(_cols)
    _cat = staticmethod(np.concatenate)
    _unique = staticmethod(np.unique)
    _argsort = staticmethod(np.argsort)
    _sort_faces = staticmethod(partial(np.argsort, kind="stable"))
    _repeat2 = staticmethod(partial(np.repeat, repeats=2))
    _equal = staticmethod(np.array_equal)
    _arange = staticmethod(np.arange)
    _zeros_bool = staticmethod(partial(np.zeros, dtype=np.bool_))
    _zeros_int8 = staticmethod(partial(np.zeros, dtype=np.int8))
    _count = staticmethod(np.count_nonzero)
    _int8 = staticmethod(methodcaller("astype", np.int8))
    _int64 = staticmethod(methodcaller("astype", np.int64))

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
