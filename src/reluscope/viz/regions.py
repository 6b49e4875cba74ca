"""Plots of region maps: faces coloured by a hash of their pattern (stable across training) with
the decision boundary, the dual graph coloured by Fiedler side, Betti curves and counts vs loss.
matplotlib is imported inside the functions."""

from __future__ import annotations

import numpy as np

from ._common import axes_or_new

__all__ = ["plot_regions", "plot_fiedler", "plot_betti_curves", "plot_counts_vs_loss", "plot_region_frames"]


def _face_colours(region_map) -> np.ndarray:
    """RGB [F, 3] in a pleasant pastel range from each face's pattern hash."""
    keys = region_map.pattern_keys()
    rgb = np.stack([(keys >> np.uint64(s)) & np.uint64(255) for s in (0, 8, 16)], 1).astype(np.float64) / 255
    return 0.35 + 0.6 * rgb


def _polys(region_map):
    off = region_map.face_offsets
    return [region_map.vertices[region_map.face_vertices[off[f]:off[f + 1]]] for f in range(region_map.n_regions)]


def decision_segments(region_map, *, output: int | None = None) -> np.ndarray:
    """Segments [K, 2, 2]: the decision boundary (g = 0 of the binary decision function) in each
    face it crosses; g = output for one output, output 1 - output 0 for two, else output `output`."""
    A, c = region_map.A, region_map.c
    if output is not None:
        a, b = A[:, output], c[:, output]
    elif A.shape[1] == 1:
        a, b = A[:, 0], c[:, 0]
    elif A.shape[1] == 2:
        a, b = A[:, 1] - A[:, 0], c[:, 1] - c[:, 0]
    else:  # multi-class: boundaries between the argmax classes are drawn face by face below
        return np.zeros((0, 2, 2))
    fv, off = region_map.face_vertices, region_map.face_offsets
    F = region_map.n_regions
    face_of = np.repeat(np.arange(F), np.diff(off))
    nxt = np.arange(fv.shape[0]) + 1
    nxt[off[1:] - 1] = off[:-1]
    p, q = region_map.vertices[fv], region_map.vertices[fv[nxt]]
    gp = np.einsum("ni,ni->n", a[face_of], p) + b[face_of]
    gq = np.einsum("ni,ni->n", a[face_of], q) + b[face_of]
    cross = (gp > 0) != (gq > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = gp / (gp - gq)  # used only where the signs differ, so gp != gq
        x = p + t[:, None] * (q - p)
    fc, xc = face_of[cross], x[cross]
    order = np.argsort(fc, kind="stable")
    fc, xc = fc[order], xc[order]
    if not fc.size:
        return np.zeros((0, 2, 2))
    first = np.nonzero(np.r_[True, fc[1:] != fc[:-1]])[0]  # a convex face is crossed twice
    first = first[(first + 1 < fc.size)]
    first = first[fc[first + 1] == fc[first]]
    return np.stack([xc[first], xc[first + 1]], 1)



def _draw_decision_boundary(ax, region_map) -> None:
    from matplotlib.collections import LineCollection

    seg = decision_segments(region_map)
    if len(seg):
        ax.add_collection(LineCollection(seg, colors="black", linewidths=1.6))


def _fit_box(ax, region_map) -> None:
    x0, x1, y0, y1 = region_map.box
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")

def plot_regions(region_map, *, ax=None, edges: bool = True, decision_boundary: bool = True, points=None, labels=None, linewidth: float = 0.3):
    """Faces coloured by pattern hash, region edges, decision boundary (black) and optional data."""
    from matplotlib.collections import PolyCollection

    ax = axes_or_new(ax, figsize=(5, 5))
    ax.add_collection(PolyCollection(_polys(region_map), facecolors=_face_colours(region_map),
                                     edgecolors="white" if edges else "face", linewidths=linewidth if edges else 0))
    if decision_boundary:
        _draw_decision_boundary(ax, region_map)
    if points is not None:
        pts = np.asarray(points)
        ax.scatter(pts[:, 0], pts[:, 1], c=None if labels is None else np.asarray(labels), s=6, cmap="coolwarm", edgecolors="none", alpha=0.7)
    _fit_box(ax, region_map)
    ax.set_title(f"{region_map.n_regions} linear regions")
    return ax


def plot_fiedler(region_map, partition, *, ax=None, graph: bool = True, decision_boundary: bool = True):
    """Faces coloured by Fiedler side (blue/orange, shade by |vector|), dual graph on top."""
    from matplotlib.collections import LineCollection, PolyCollection

    ax = axes_or_new(ax, figsize=(5, 5))
    v = partition.vector / (np.abs(partition.vector).max() or 1)
    base = np.where(partition.side[:, None], [[0.95, 0.55, 0.2]], [[0.25, 0.45, 0.85]])
    shade = 0.45 + 0.55 * np.abs(v)[:, None]
    colours = 1 - shade * (1 - base)
    ax.add_collection(PolyCollection(_polys(region_map), facecolors=colours, edgecolors="white", linewidths=0.2))
    if graph and partition.graph.pairs.shape[0]:
        cen = region_map.centroids
        seg = np.stack([cen[partition.graph.pairs[:, 0]], cen[partition.graph.pairs[:, 1]]], 1)
        ax.add_collection(LineCollection(seg, colors="0.25", linewidths=0.3, alpha=0.6))
    if decision_boundary:
        _draw_decision_boundary(ax, region_map)
    _fit_box(ax, region_map)
    ax.set_title(f"Fiedler partition (lambda2={partition.value:.3g})")
    return ax


def plot_betti_curves(summary: dict, *, ax=None, label: str = ""):
    """Mean beta_0 and beta_1 of random filtrations against the fraction of faces added."""
    ax = axes_or_new(ax)
    ax.plot(summary["t"], summary["beta0"], label=f"beta0 {label}".strip())
    ax.plot(summary["t"], summary["beta1"], label=f"beta1 {label}".strip())
    ax.set_xlabel("fraction of faces added (random order)")
    ax.set_ylabel("Betti number (mean over orders)")
    ax.legend(fontsize=8)
    return ax


def plot_counts_vs_loss(records: list, *, keys=("faces", "random_max_beta1"), ax=None):
    """Loss (log scale, left) and the given record keys (right, normalised) against step."""
    ax = axes_or_new(ax, figsize=(7, 4))
    steps = [r["step"] for r in records]
    if any("loss" in r for r in records):
        ax.plot([r["step"] for r in records if "loss" in r], [r["loss"] for r in records if "loss" in r], color="black", label="loss")
        ax.set_yscale("log")
        ax.set_ylabel("training loss")
    ax2 = ax.twinx()
    for k in keys:
        vals = np.array([r.get(k, np.nan) for r in records], dtype=float)
        top = np.nanmax(np.abs(vals)) if np.isfinite(vals).any() else 1.0
        ax2.plot(steps, vals / (top or 1), label=f"{k} (max {top:.3g})")
    ax2.set_ylabel("normalised")
    ax.set_xlabel("step")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper right")
    return ax


def plot_region_frames(frames, *, axes):
    """One `plot_regions` per (step, region map) in `frames`, on the given axes (a frame strip)."""
    for ax, (step, rm) in zip(np.ravel(axes), frames):
        plot_regions(rm, ax=ax, linewidth=0.15)
        ax.set_title(f"step {step}: {rm.n_regions} regions", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    return axes
