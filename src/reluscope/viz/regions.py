"""Plots of region maps: faces coloured by a hash of their pattern (stable across training) with
the decision boundary, the dual graph coloured by Fiedler side, Betti curves and counts vs loss.
matplotlib is imported inside the functions."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..regions import fiedler_partition, regions_2d
from ..regions.dual import decision_segments
from ._common import Display, axes_or_new, label_axes

if TYPE_CHECKING:
    from typing import Any
    from ..regions.topology import RandomSummary
    from collections.abc import Sequence
    from matplotlib.axes import Axes
    from .._types import ArrayLike
    from .._types import ModelLike
    from ..regions import FiedlerPartition
    from ..regions import RegionMap

__all__ = ["RegionMapDisplay", "FiedlerDisplay", "plot_regions", "plot_fiedler", "plot_betti_curves", "plot_counts_vs_loss", "plot_region_frames"]


def face_colours(region_map: RegionMap) -> np.ndarray:
    """RGB [F, 3] in a pleasant pastel range from each face's pattern hash."""
    keys = region_map.pattern_keys()
    rgb = np.stack([(keys >> np.uint64(s)) & np.uint64(255) for s in (0, 8, 16)], 1).astype(np.float64) / 255
    return 0.35 + 0.6 * rgb


def _polys(region_map):
    off = region_map.face_offsets
    return [region_map.vertices[region_map.face_vertices[off[f]:off[f + 1]]] for f in range(region_map.n_regions)]


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

class RegionMapDisplay(Display):
    """A region map: faces coloured by a hash of their pattern (stable across training), region
    edges, the decision boundary (black) and optional data points."""

    _figsize = (5.0, 5.0)

    def __init__(self, region_map: RegionMap, *, points: ArrayLike | None = None, labels: ArrayLike | None = None):
        self.region_map, self.points, self.labels = region_map, points, labels

    @classmethod
    def from_result(cls, region_map: RegionMap, *, points: ArrayLike | None = None, labels: ArrayLike | None = None) -> RegionMapDisplay:
        return cls(region_map, points=points, labels=labels)

    @classmethod
    def from_model(cls, model: ModelLike, *, points: ArrayLike | None = None, labels: ArrayLike | None = None, **regions_kw: Any) -> RegionMapDisplay:
        """`regions_2d(model, **regions_kw)` (box, plane, ...), then display it."""
        return cls(regions_2d(model, **regions_kw), points=points, labels=labels)

    def plot(self, ax: Axes | None = None, *, edges: bool = True, decision_boundary: bool = True, linewidth: float = 0.3,
             title: bool = True) -> RegionMapDisplay:
        from matplotlib.collections import PolyCollection

        rm = self.region_map
        ax = self._axes(ax)
        ax.add_collection(PolyCollection(_polys(rm), facecolors=face_colours(rm),
                                         edgecolors="white" if edges else "face", linewidths=linewidth if edges else 0))
        if decision_boundary:
            _draw_decision_boundary(ax, rm)
        if self.points is not None:
            pts = np.asarray(self.points)
            ax.scatter(pts[:, 0], pts[:, 1], c=None if self.labels is None else np.asarray(self.labels), s=6,
                       cmap="coolwarm", edgecolors="none", alpha=0.7)
        _fit_box(ax, rm)
        if title:
            ax.set_title(f"{rm.n_regions} linear regions")
        return self


class FiedlerDisplay(Display):
    """Faces coloured by Fiedler side (blue/orange, shade by |vector|), the dual graph on top."""

    _figsize = (5.0, 5.0)

    def __init__(self, region_map: RegionMap, partition: FiedlerPartition):
        self.region_map, self.partition = region_map, partition

    @classmethod
    def from_result(cls, region_map: RegionMap, partition: FiedlerPartition | None = None) -> FiedlerDisplay:
        """`partition` defaults to `fiedler_partition(region_map)`."""
        return cls(region_map, fiedler_partition(region_map) if partition is None else partition)

    @classmethod
    def from_model(cls, model: ModelLike, **regions_kw: Any) -> FiedlerDisplay:
        return cls.from_result(regions_2d(model, **regions_kw))

    def plot(self, ax: Axes | None = None, *, graph: bool = True, decision_boundary: bool = True) -> FiedlerDisplay:
        from matplotlib.collections import LineCollection, PolyCollection

        rm, partition = self.region_map, self.partition
        ax = self._axes(ax)
        v = partition.vector / (np.abs(partition.vector).max() or 1)
        base = np.where(partition.side[:, None], [[0.95, 0.55, 0.2]], [[0.25, 0.45, 0.85]])
        shade = 0.45 + 0.55 * np.abs(v)[:, None]
        colours = 1 - shade * (1 - base)
        ax.add_collection(PolyCollection(_polys(rm), facecolors=colours, edgecolors="white", linewidths=0.2))
        if graph and partition.graph.pairs.shape[0]:
            cen = rm.centroids
            seg = np.stack([cen[partition.graph.pairs[:, 0]], cen[partition.graph.pairs[:, 1]]], 1)
            ax.add_collection(LineCollection(seg, colors="0.25", linewidths=0.3, alpha=0.6))
        if decision_boundary:
            _draw_decision_boundary(ax, rm)
        _fit_box(ax, rm)
        ax.set_title(f"Fiedler partition (lambda2={partition.value:.3g})")
        return self


def plot_regions(region_map: RegionMap, *, ax: Axes | None = None, edges: bool = True, decision_boundary: bool = True, points: ArrayLike | None = None, labels: ArrayLike | None = None,
                 linewidth: float = 0.3):
    """`RegionMapDisplay.from_result(...).plot(...)`; returns the Axes."""
    display = RegionMapDisplay.from_result(region_map, points=points, labels=labels)
    return display.plot(ax, edges=edges, decision_boundary=decision_boundary, linewidth=linewidth).ax_


def plot_fiedler(region_map: RegionMap, partition: FiedlerPartition, *, ax: Axes | None = None, graph: bool = True, decision_boundary: bool = True):
    """`FiedlerDisplay.from_result(region_map, partition).plot(...)`; returns the Axes."""
    return FiedlerDisplay.from_result(region_map, partition).plot(ax, graph=graph, decision_boundary=decision_boundary).ax_


def plot_betti_curves(summary: RandomSummary, *, ax: Axes | None = None, label: str = ""):
    """Mean beta_0 and beta_1 of random filtrations (a `RandomSummary`) against the fraction of faces added."""
    ax = axes_or_new(ax)
    ax.plot(summary.t, summary.beta0, label=f"beta0 {label}".strip())
    ax.plot(summary.t, summary.beta1, label=f"beta1 {label}".strip())
    return label_axes(ax, "fraction of faces added (random order)", "Betti number (mean over orders)")


def plot_counts_vs_loss(records: list, *, keys: Sequence[str] = ("faces", "random_max_beta1"), ax: Axes | None = None):
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


def plot_region_frames(frames: Sequence[tuple[int, RegionMap]], *, axes: Axes | Sequence[Axes] | np.ndarray):
    """One `RegionMapDisplay` per (step, region map) in `frames`, on the given axes (a frame strip)."""
    for ax, (step, rm) in zip(np.ravel(axes), frames):
        RegionMapDisplay.from_result(rm).plot(ax, linewidth=0.15, title=False)
        ax.set_title(f"step {step}: {rm.n_regions} regions", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    return axes
