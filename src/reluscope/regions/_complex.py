"""From the sweep's edge list to the final complex: ordered face polygons, areas, centroids and
each face's affine map of the output."""

from __future__ import annotations

import numpy as np
import torch

from ..network import MaxPool2d, Network
from ..network.layers import AbstractAffine
from ..network.network import INPUT

__all__ = ["polygon_edges", "polygon_moments", "polygon_areas", "order_faces", "fit_affine", "pushed_affine_maps", "NUMPY_ASSEMBLY"]


def polygon_edges(fv: np.ndarray, off: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The walk around every face polygon at once: for each entry i of `fv`, the face it belongs
    to (`face_of[i]`) and the entry of the next vertex on that face (`nxt[i]`, wrapping around)."""
    face_of = np.repeat(np.arange(off.shape[0] - 1), np.diff(off))
    nxt = np.arange(fv.shape[0]) + 1
    nxt[off[1:] - 1] = off[:-1]
    return face_of, nxt


def polygon_moments(V, fv, off):
    """Shoelace areas [F] and area centroids [F, 2] of counter-clockwise polygons.

    Coordinates are taken relative to each face's first vertex: tiny faces far from the origin
    would otherwise lose all their digits to cancellation.
    """
    n_f = off.shape[0] - 1
    face_of, nxt = polygon_edges(fv, off)
    ref = V[fv[off[:-1]]][face_of]
    p, q = V[fv] - ref, V[fv[nxt]] - ref
    cross = p[:, 0] * q[:, 1] - p[:, 1] * q[:, 0]
    area = np.bincount(face_of, cross, n_f) / 2
    cx = np.bincount(face_of, (p[:, 0] + q[:, 0]) * cross, n_f)
    cy = np.bincount(face_of, (p[:, 1] + q[:, 1]) * cross, n_f)
    with np.errstate(invalid="ignore", divide="ignore"):
        cen = np.stack([cx, cy], 1) / (6 * area[:, None])
    return area, cen + V[fv[off[:-1]]]



def polygon_areas(V, fv, off):
    """Shoelace areas [F] of counter-clockwise polygons (`polygon_moments` without centroids)."""
    return polygon_moments(V, fv, off)[0]


def order_faces(X: np.ndarray, EV: np.ndarray, EF: np.ndarray, n_faces: int):
    """Counter-clockwise vertex lists of every face from the edge list."""
    f = np.concatenate([EF[:, 0], EF[:, 0], EF[:, 1], EF[:, 1]])
    v = np.concatenate([EV[:, 0], EV[:, 1], EV[:, 0], EV[:, 1]])
    inside = f >= 0
    f, v = f[inside], v[inside]
    # every boundary vertex of a face is met exactly twice (its two edges of that face)
    centre = np.stack([np.bincount(f, X[v, 0], n_faces), np.bincount(f, X[v, 1], n_faces)], 1) / np.bincount(f, minlength=n_faces)[:, None]
    d = X[v] - centre[f]
    angle = np.arctan2(d[:, 1], d[:, 0])
    order = np.lexsort((v, angle, f))[::2]
    f, v = f[order], v[order]
    off = np.zeros(n_faces + 1, dtype=np.int64)
    np.cumsum(np.bincount(f, minlength=n_faces), out=off[1:])
    return v.astype(np.int64), off


def fit_affine(X, out, fv, off):
    """Least-squares affine maps from each face's vertex outputs, plus each face's width (sqrt
    of the smallest eigenvalue of its vertex scatter), which says how well-posed the fit is."""
    n_f = off.shape[0] - 1
    counts = np.diff(off)
    face_of = np.repeat(np.arange(n_f), counts)
    starts = off[:-1]  # fv is grouped by face, every face has >= 3 vertices: sums by reduceat

    def S(x):  # noqa: N802 - the (face x incidence) summation
        return np.add.reduceat(x, starts, axis=0)

    p, o = X[fv], out[fv]
    pm, om = S(p) / counts[:, None], S(o) / counts[:, None]
    dp, do = p - pm[face_of], o - om[face_of]
    M = S((dp[:, :, None] * dp[:, None, :]).reshape(-1, 4)).reshape(n_f, 2, 2)
    B = S((dp[:, :, None] * do[:, None, :]).reshape(fv.shape[0], -1)).reshape(n_f, 2, -1)
    det = M[:, 0, 0] * M[:, 1, 1] - M[:, 0, 1] ** 2
    half_tr = (M[:, 0, 0] + M[:, 1, 1]) / 2
    lam_min = half_tr - np.sqrt(np.maximum(half_tr**2 - det, 0))
    adj = np.stack([np.stack([M[:, 1, 1], -M[:, 0, 1]], 1), np.stack([-M[:, 0, 1], M[:, 0, 0]], 1)], 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        A = ((adj @ B) / det[:, None, None]).transpose(0, 2, 1)  # [F, out, 2]
    c = om - np.einsum("foi,fi->fo", A, pm)
    return A, c, np.sqrt(np.maximum(lam_min, 0) / counts)



# The engines' `assembly` (see `partition._assemble`): the numba engine has compiled twins.
NUMPY_ASSEMBLY = (order_faces, polygon_areas, fit_affine)


def pushed_affine_maps(net: Network, plane, patterns: torch.Tensor, device, chunk_floats: int = 2**25):
    """A [F, out, 2], c [F, out]: push (offset, du, dv) through the graph with each face's pattern
    (a ReLU's bit picks its slope, a max-pool window's one-hot bits pick the entry it copies)."""
    if plane is None:
        base = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64, device=device)
    else:
        base = torch.stack([plane.origin, plane.u, plane.v]).to(device)
    n_f = patterns.shape[0]
    widths = [2]
    with torch.no_grad():
        for layer, z in net.trace(base[:1]):
            widths.append(sum(t[0].numel() for t in z) if isinstance(z, tuple) else z[0].numel())
    step = max(1, chunk_floats // (3 * max(widths)))
    As, cs = [], []
    with torch.no_grad():
        for s in range(0, max(n_f, 1), step):
            off, dirs = _push(net, base, patterns[s:s + step])
            k = off.shape[0]
            As.append(dirs.reshape(k, 2, -1).transpose(1, 2))
            cs.append(off.reshape(k, -1))
    return torch.cat(As).cpu().numpy(), torch.cat(cs).cpu().numpy()


def _push(net: Network, base: torch.Tensor, pat: torch.Tensor):
    """(offset [k, *out], directions [k, 2, *out]) of the output on k faces of given patterns."""
    k = pat.shape[0]
    vals = {INPUT: (base[:1].expand(k, *base.shape[1:]), base[1:].unsqueeze(0).expand(k, 2, *base.shape[1:]))}
    start = 0
    for step in net.schedule():
        layer = step.layer
        ins = [vals[j] for j in step.inputs]
        if isinstance(layer, AbstractAffine):
            off = layer.forward(*[o for o, _ in ins])
            d = layer.linear(*[d.reshape(k * 2, *d.shape[2:]) for _, d in ins])
            dirs = d.reshape(k, 2, *d.shape[1:])
        elif isinstance(layer, MaxPool2d):
            (off, dirs), kk = ins[0], layer.kernel_size[0] * layer.kernel_size[1]
            c = off.shape[1]
            bits = pat[:, start:start + layer.bits(off[:1]).shape[1]]
            start += bits.shape[1]
            pick = bits.reshape(k, c, -1, kk).to(torch.int64).argmax(3)  # [k, C, L]
            oh, ow = layer.output_hw(*off.shape[2:])
            wo = layer.windows(off, fill=0.0)  # padding is never the argmax
            off = wo.gather(2, pick.unsqueeze(2)).reshape(k, c, oh, ow)
            wd = layer.windows(dirs.reshape(k * 2, *dirs.shape[2:]), fill=0.0)
            dirs = wd.gather(2, pick.repeat_interleave(2, 0).unsqueeze(2)).reshape(k, 2, c, oh, ow)
        else:
            off, dirs = ins[0]
            n = off[0].numel()
            bits = pat[:, start:start + n]
            start += n
            slope = torch.full(bits.shape, float(layer.negative_slope), dtype=torch.float64, device=bits.device).masked_fill_(bits, 1.0)
            off = (off.reshape(k, n) * slope).reshape(off.shape)
            dirs = (dirs.reshape(k, 2, n) * slope.unsqueeze(1)).reshape(dirs.shape)
        vals[step.index] = (off, dirs)
        for j in step.free:
            del vals[j]
    return vals[len(net.nodes) - 1]
