"""Slow references and invariant checks for `reluscope.regions_2d`.

`check_region_map` asserts what must hold for any exact region map (in the spirit of regioncam's
`check_invariants`); `grid_patterns` is the authors' method (sample a fine grid, collect distinct
activation patterns), kept as an independent reference: every grid pattern must be a face pattern,
and the grid can never see more regions than the exact map has.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from ..network import to_network
from .sampling import function_patterns

if TYPE_CHECKING:
    from .._types import ModelLike
    from ..regions import Plane, RegionMap

__all__ = ["check_region_map", "grid_patterns", "check_against_grid", "check_areas_against_key", "network_on_plane"]


def network_on_plane(region_map: RegionMap, st: np.ndarray, *, include_output: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(outputs [N, out], hidden bits [N, units]) of the region map's network at plane points."""
    net = region_map.network
    st = torch.as_tensor(np.asarray(st, dtype=np.float64))
    x = st if region_map.plane is None else region_map.plane.to_input(st)
    with torch.no_grad():
        out = net.forward(x).reshape(st.shape[0], -1)
        bits = net.bits(x)
    return out.numpy(), bits.numpy()


def _interior_points(rm, n_per_face: int, rng: np.random.Generator):
    """Per face: its centroid and n_per_face random points halfway between it and the boundary."""
    pts, owner = [rm.centroids], [np.arange(rm.n_regions)]
    counts = np.diff(rm.face_offsets)
    for _ in range(n_per_face):
        w = rng.exponential(size=rm.face_vertices.shape[0])
        face_of = np.repeat(np.arange(rm.n_regions), counts)
        tot = np.bincount(face_of, w, rm.n_regions)
        P = rm.vertices[rm.face_vertices] * (w / tot[face_of])[:, None]
        rand = np.stack([np.bincount(face_of, P[:, 0], rm.n_regions), np.bincount(face_of, P[:, 1], rm.n_regions)], 1)
        pts.append(0.5 * rm.centroids + 0.5 * rand)
        owner.append(np.arange(rm.n_regions))
    return np.concatenate(pts), np.concatenate(owner)


def check_region_map(region_map: RegionMap, *, n_interior: int = 2, rtol: float = 1e-7, seed: int = 0) -> None:
    """Raise AssertionError naming the first broken invariant of `region_map`.

    Checked: positive face areas summing to the box area; counter-clockwise convex faces; edges
    whose faces exist, box-boundary edges on the box; each face's affine map reproduces the
    network at its vertices and at interior points; the pattern is constant inside each face
    (interior points' `Network.bits` equal the face pattern); faces across an edge differ; all
    face patterns are distinct (a ReLU net's pattern classes are convex).
    """
    rm = region_map
    x0, x1, y0, y1 = rm.box
    box_area = (x1 - x0) * (y1 - y0)
    scale = max(x1 - x0, y1 - y0)
    F = rm.n_regions
    if rm.patterns.shape[0] != F or rm.A.shape[0] != F or rm.c.shape[0] != F:
        raise AssertionError("per-face arrays disagree on the number of faces")
    if not (rm.areas > 0).all():
        raise AssertionError(f"{int((rm.areas <= 0).sum())} faces have non-positive area (min {rm.areas.min():.3g})")
    if abs(rm.areas.sum() - box_area) > rtol * box_area:
        raise AssertionError(f"face areas sum to {rm.areas.sum():.12g}, the box area is {box_area:.12g}")
    # convexity: every turn of every face is a left turn (collinear T-junction vertices allowed)
    fv, off = rm.face_vertices, rm.face_offsets
    nxt = np.arange(fv.shape[0]) + 1
    nxt[off[1:] - 1] = off[:-1]
    nn = nxt[nxt]
    p, q, r = rm.vertices[fv], rm.vertices[fv[nxt]], rm.vertices[fv[nn]]
    turn = (q[:, 0] - p[:, 0]) * (r[:, 1] - q[:, 1]) - (q[:, 1] - p[:, 1]) * (r[:, 0] - q[:, 0])
    if (turn < -1e-9 * scale**2).any():
        raise AssertionError(f"{int((turn < -1e-9 * scale**2).sum())} vertex turns are not convex")
    ef = rm.edge_faces
    if ef.min() < -1 or ef.max() >= F or (ef[:, 0] == ef[:, 1]).any():
        raise AssertionError("edge_faces must hold two different face ids in [-1, F)")
    bnd = (ef == -1).any(1)
    ends = rm.vertices[rm.edges[bnd]].reshape(-1, 2)
    tol = 1e-9 * scale
    on_box = (np.abs(ends[:, 0] - x0) < tol) | (np.abs(ends[:, 0] - x1) < tol) | (np.abs(ends[:, 1] - y0) < tol) | (np.abs(ends[:, 1] - y1) < tol)
    if not on_box.all():
        raise AssertionError(f"{int((~on_box).sum())} ends of box-boundary edges are not on the box")
    inner = ~bnd
    a, b = rm.patterns[ef[inner, 0]], rm.patterns[ef[inner, 1]]
    same = ~(a != b).any(1)
    if same.any():
        raise AssertionError(f"{int(same.sum())} edges separate faces with equal patterns")
    if F > 1:
        packed = np.packbits(rm.patterns, axis=1)
        if np.unique(packed, axis=0).shape[0] != F:
            raise AssertionError("two faces share one activation pattern")
    # affine maps at vertices (of each face) and at interior points
    counts = np.diff(off)
    face_of = np.repeat(np.arange(F), counts)
    rng = np.random.default_rng(seed)
    ip, owner = _interior_points(rm, n_interior, rng)
    pts = np.concatenate([rm.vertices[fv], ip])
    faces = np.concatenate([face_of, owner])
    out, bits = network_on_plane(rm, pts)
    pred = rm.outputs_at(pts, faces)
    out_scale = max(1.0, float(np.abs(out).max()))
    err = np.abs(pred - out).max(1)
    if (err > rtol * out_scale).any():
        k = int(np.argmax(err))
        raise AssertionError(
            f"face {faces[k]}'s affine map misses the network at {pts[k]} by {err[k]:.3g} "
            f"(output scale {out_scale:.3g})"
        )
    m = fv.shape[0]
    wrong = (bits[m:] != rm.patterns[owner]).any(1)
    if wrong.any():
        k = int(np.argmax(wrong))
        raise AssertionError(f"{int(wrong.sum())} interior points have another pattern than their face (e.g. face {owner[k]})")


def grid_patterns(model: ModelLike, *, box: tuple[float, float, float, float], plane: Plane | None = None,
                  n: int = 200) -> np.ndarray:
    """Distinct hidden-unit patterns on an n x n grid over the box (the authors' sampling)."""
    net = to_network(model, input_shape=plane.input_shape) if plane is not None else to_network(model)
    net = net.to(dtype=torch.float64)
    x0, x1, y0, y1 = box
    s, t = np.linspace(x0, x1, n), np.linspace(y0, y1, n)
    st = torch.as_tensor(np.stack(np.meshgrid(s, t), -1).reshape(-1, 2))
    x = st if plane is None else plane.to_input(st)
    with torch.no_grad():
        bits = net.bits(x).numpy()
    return np.unique(bits, axis=0)


def check_against_grid(region_map: RegionMap, model: ModelLike, *, n: int = 200) -> int:
    """Every grid pattern must be a face pattern; returns the number of grid patterns."""
    grid = grid_patterns(model, box=region_map.box, plane=region_map.plane, n=n)
    faces = {row.tobytes() for row in np.packbits(region_map.patterns, axis=1)}
    missing = [row for row in np.packbits(grid, axis=1) if row.tobytes() not in faces]
    if missing:
        raise AssertionError(f"{len(missing)} of {grid.shape[0]} grid patterns are no face's pattern")
    if grid.shape[0] > region_map.n_regions:
        raise AssertionError(f"the grid sees {grid.shape[0]} patterns, more than the {region_map.n_regions} faces")
    return int(grid.shape[0])


def check_areas_against_key(region_map: RegionMap, model: ModelLike, *, n: int = 200) -> int:
    """Areas against a fine grid, keyed independently of `Network`.

    The region key of every cell centre of an n x n grid is read from the user's own torch forward
    (`sampling.function_patterns`: signs of every activation input, argmax of every max-pool
    window). Each key must be a face's pattern, and each face's area must match its share of the
    grid within what its boundary cells allow (sqrt(2) * perimeter * h + 2 pi h^2 for cell size h).
    Returns the number of faces the grid sees.
    """

    rm = region_map
    x0, x1, y0, y1 = rm.box
    hx, hy = (x1 - x0) / n, (y1 - y0) / n
    s, t = x0 + hx * (np.arange(n) + 0.5), y0 + hy * (np.arange(n) + 0.5)
    st = torch.as_tensor(np.stack(np.meshgrid(s, t), -1).reshape(-1, 2))
    x = st if rm.plane is None else rm.plane.to_input(st)
    keys = np.packbits(function_patterns(model, x).numpy(), axis=1)
    faces = {row.tobytes(): f for f, row in enumerate(np.packbits(rm.patterns, axis=1))}
    owner = np.array([faces.get(row.tobytes(), -1) for row in keys])
    if (owner < 0).any():
        raise AssertionError(f"{int((owner < 0).sum())} of {owner.shape[0]} grid points have a key that is no face's pattern")
    grid_area = np.bincount(owner, minlength=rm.n_regions) * hx * hy
    fv, off = rm.face_vertices, rm.face_offsets
    nxt = np.arange(fv.shape[0]) + 1
    nxt[off[1:] - 1] = off[:-1]
    side = np.linalg.norm(rm.vertices[fv[nxt]] - rm.vertices[fv], axis=1)
    perimeter = np.bincount(np.repeat(np.arange(rm.n_regions), np.diff(off)), side, rm.n_regions)
    h = max(hx, hy)
    bound = np.sqrt(2) * perimeter * h + 2 * np.pi * h * h
    err = np.abs(grid_area - rm.areas)
    if (err > bound).any():
        f = int(np.argmax(err - bound))
        raise AssertionError(f"face {f}: area {rm.areas[f]:.6g}, the grid gives {grid_area[f]:.6g} (allowed {bound[f]:.3g})")
    return int((grid_area > 0).sum())
