"""Displays for space folding: running chi curves, chi histograms, the folding study's folding
against depth and against test error; plots of CantorNet's curves. matplotlib is imported only
when drawing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..folding import FoldingProfile, GlobalFolding, global_folding, path_folding
from ._common import Display, axes_or_new

if TYPE_CHECKING:
    from typing import Any
    from ..experiments.folding_study import FoldingSnapshot, FoldingStudyResult
    from ..folding.path import PathFolding
    from matplotlib.axes import Axes
    from .._types import ArrayLike
    from .._types import ModelLike

__all__ = [
    "RunningChiDisplay", "FoldingHistogramDisplay", "FoldingDepthDisplay", "FoldingErrorDisplay",
    "plot_running_chi", "plot_folding_histogram", "plot_cantornet_curves",
]


class RunningChiDisplay(Display):
    """Running chi (chi of the first i patterns) against the position along the walk, 0..1.

    `curves`: label -> running chi array. Walks of different lengths share the x axis as the
    fraction of the walk.
    """

    _figsize = (5.5, 3.5)

    def __init__(self, curves: Mapping[str, np.ndarray]):
        self.curves = dict(curves)

    @classmethod
    def from_result(cls, result: PathFolding | Mapping[str, ArrayLike], label: str = "chi") -> RunningChiDisplay:
        """From a `PathFolding`, a `FoldingProfile`, a list of `PathFolding` (one curve each) or a
        mapping label -> running chi array."""
        if isinstance(result, Mapping):
            return cls(result)
        if isinstance(result, (list, tuple)):
            return cls({f"{label} {i}": _running(r) for i, r in enumerate(result)})
        return cls({label: _running(result)})

    @classmethod
    def from_model(cls, model: ModelLike, x0: ArrayLike, x1: ArrayLike, *, label: str = "chi", **folding_kw: Any) -> RunningChiDisplay:
        """`path_folding(model, x0, x1, **folding_kw)`, then display its running chi."""
        return cls.from_result(path_folding(model, x0, x1, **folding_kw), label=label)

    def plot(self, ax: Axes | None = None, *, title: str | None = None) -> RunningChiDisplay:
        ax = self._axes(ax)
        _draw_running_chi(ax, self.curves, title)
        return self


def _running(result) -> np.ndarray:
    profile = result.profile() if hasattr(result, "profile") else result
    if not isinstance(profile, FoldingProfile):
        raise TypeError(f"result: expected a PathFolding or FoldingProfile, got {type(result).__name__}")
    return profile.running_chi


class FoldingHistogramDisplay(Display):
    """Histogram (outline, so several overlay) of chi over many segments, median of chi > 0 marked."""

    _figsize = (5.5, 3.5)

    def __init__(self, chi: np.ndarray):
        self.chi = np.asarray(chi, dtype=float)

    @classmethod
    def from_result(cls, result: PathFolding | Mapping[str, ArrayLike]) -> FoldingHistogramDisplay:
        """From a `GlobalFolding`, a list of `PathFolding`, or an array of chi values."""
        if isinstance(result, GlobalFolding):
            return cls(result.chi)
        if isinstance(result, (list, tuple)) and result and hasattr(result[0], "chi"):
            return cls(np.array([r.chi for r in result]))
        return cls(result)

    @classmethod
    def from_model(cls, model: ModelLike, x: ArrayLike, y: ArrayLike, **global_kw: Any) -> FoldingHistogramDisplay:
        """`global_folding(model, x, y, **global_kw)`, then display its chi values."""
        return cls.from_result(global_folding(model, x, y, **global_kw))

    def plot(self, ax: Axes | None = None, *, bins: int = 30, title: str | None = None, label: str | None = None) -> FoldingHistogramDisplay:
        ax = self._axes(ax)
        _draw_histogram(ax, self.chi, bins, title, label)
        return self


class FoldingDepthDisplay(Display):
    """Folding against depth (the folding study's first claim): Phi, mean chi and the share of
    folded segments, one panel each, exact walks (o, left of the depth) and the 11-point grid
    (x, right), with the mean per depth as a line.

    `nets`: (depth, snapshot at the target) pairs, as `FoldingStudyResult.at_target()` gives them;
    `depths`: the depths on the x axis. Three panels: `plot(ax=None)` takes three Axes or none.
    """

    _figsize = (13.0, 3.8)
    _panels = 3
    _measures = (("phi", "Phi (median of positive chi)"), ("chi_mean", "mean chi"),
                 ("share_folded", "share of folded segments"))

    def __init__(self, nets: Sequence[tuple[int, FoldingSnapshot]], depths: Sequence[int]):
        self.nets, self.depths = list(nets), list(depths)

    @classmethod
    def from_result(cls, result: FoldingStudyResult) -> FoldingDepthDisplay:
        """The nets of a study that reached its target, on the study's depths."""
        return cls(result.at_target(), result.config.depths)

    def plot(self, ax: Sequence[Axes] | None = None) -> FoldingDepthDisplay:
        axes = self._axes_row(ax)
        nets, depths = self.nets, self.depths
        by_depth = {d: [s for dd, s in nets if dd == d] for d in depths}  # grouped once, not per measure
        for a, (m, label) in zip(axes, self._measures):
            for off, kind, marker in ((-0.1, "exact", "o"), (0.1, "grid", "x")):
                xs = [d + off for d, _ in nets]
                a.scatter(xs, [getattr(s, f"{m}_{kind}") for _, s in nets], marker=marker, alpha=0.6, label=kind)
                means = [np.mean([getattr(s, f"{m}_{kind}") for s in by_depth[d]]) if by_depth[d] else np.nan
                         for d in depths]
                a.plot(np.array(depths) + off, means, "-")
            a.set_xticks(depths)
            a.set_xlabel("hidden layers")
            a.set_title(label)
        axes[0].legend()
        return self


class FoldingErrorDisplay(Display):
    """Folding against test error (the folding study's second claim): Phi (exact) against the test
    error, one panel per depth, one colour per snapshot stage ('level 0.8', 'end').

    `points`: (depth, snapshot) pairs, every snapshot of every net; `depths`: one panel each, in
    that order, so `plot(ax=None)` takes `len(depths)` Axes or none.
    """

    def __init__(self, points: Sequence[tuple[int, FoldingSnapshot]], depths: Sequence[int]):
        self.points, self.depths = list(points), list(depths)
        self._panels = len(self.depths)
        self._figsize = (3.6 * len(self.depths), 3.4)

    @classmethod
    def from_result(cls, result: FoldingStudyResult) -> FoldingErrorDisplay:
        """Every snapshot of every net of a study, on the study's depths."""
        return cls([(r.config.depth, s) for r in result.rows for s in r.snapshots], result.config.depths)

    def plot(self, ax: Sequence[Axes] | None = None) -> FoldingErrorDisplay:
        axes = self._axes_row(ax)
        for a, d in zip(axes, self.depths):
            sel = [s for dd, s in self.points if dd == d]
            for stage in sorted({s.stage for s in sel}):
                pts = [s for s in sel if s.stage == stage]
                a.scatter([s.test_error for s in pts], [s.phi_exact for s in pts], label=stage, alpha=0.7)
            a.set_title(f"{d} hidden layers")
            a.set_xlabel("test error")
        axes[0].set_ylabel("Phi (exact)")
        axes[0].legend(fontsize=7)
        return self


def plot_running_chi(curves: Mapping[str, np.ndarray], *, ax: Axes | None = None, title: str | None = None):
    """`RunningChiDisplay(curves).plot(...)`; returns the Axes."""
    return RunningChiDisplay(curves).plot(ax, title=title).ax_


def plot_folding_histogram(chi: ArrayLike, *, ax: Axes | None = None, bins: int = 30, title: str | None = None, label: str | None = None):
    """`FoldingHistogramDisplay.from_result(chi).plot(...)`; returns the Axes."""
    return FoldingHistogramDisplay.from_result(chi).plot(ax, bins=bins, title=title, label=label).ax_


def _draw_running_chi(ax, curves, title):
    for label, curve in curves.items():
        curve = np.asarray(curve, dtype=float)
        x = np.linspace(0, 1, len(curve)) if len(curve) > 1 else np.zeros(1)
        ax.step(x, curve, where="post", label=label)
    ax.set_xlabel("position along the walk (fraction of patterns)")
    ax.set_ylabel("running chi")
    ax.set_ylim(-0.02, 1.02)
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small")
    return ax


def _draw_histogram(ax, chi, bins, title, label):
    _, _, patches = ax.hist(chi, bins=bins, range=(0, max(1e-9, float(chi.max()) if chi.size else 1.0)),
                            histtype="step", linewidth=1.5, label=label)
    pos = chi[chi > 0]
    if pos.size:
        ax.axvline(float(np.median(pos)), color=patches[0].get_edgecolor(), linestyle="--", linewidth=1,
                   label=f"median of chi > 0 = {np.median(pos):.3f}")
    ax.set_xlabel("chi")
    ax.set_ylabel("segments")
    if title:
        ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:  # nothing to list when unlabelled and no chi > 0
        ax.legend(fontsize="small")
    return ax


def plot_cantornet_curves(rows: Sequence, *, axes: Sequence[Axes] | None = None):
    """Running chi along CantorNet's path, one panel per representation, one curve per k (exact
    solid, grid dashed). `rows`: `cantornet_folding(...)`. Returns the array of Axes."""
    reps = sorted({r.representation for r in rows})
    if axes is None:
        axes = axes_or_new(None, figsize=(4.2 * len(reps), 3.4), panels=len(reps))
    for ax, rep in zip(axes, reps):
        for r in [r for r in rows if r.representation == rep]:
            # exact: region i starts at t_exact[i]; grid: sample i sits at i / (n - 1)
            t_exact = np.append(np.asarray(r.t_exact[:-1]), 1.0)
            line, = ax.step(t_exact, np.append(r.running_exact, r.running_exact[-1]), where="post",
                            label=f"k={r.k} exact ({r.chi_exact:.3f})")
            ax.step(np.linspace(0, 1, len(r.running_grid)), r.running_grid, where="post", linestyle="--",
                    color=line.get_color(), alpha=0.6)
        ax.set_title(f"representation {rep} (dashed: {rows[0].n_points} points)")
        ax.set_xlabel("t along (0, 3/4) -> (1, 3/4)")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize="x-small")
    axes[0].set_ylabel("running chi")
    return axes
