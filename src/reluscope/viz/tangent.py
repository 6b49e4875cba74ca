"""Displays for tangent similarities: per-input gap histograms and (eps, gamma) goodness curves."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..tangent import goodness_curve, per_input_gap, tangent_similarity
from ._common import Display, label_axes

from collections.abc import Sequence
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from typing import Any
    from ..tangent.quality import GoodnessCurve
    from matplotlib.axes import Axes
    from .._types import ArrayLike
    from .._types import ModelLike

__all__ = ["GapHistogramDisplay", "GoodnessDisplay", "plot_gap_histograms", "plot_goodness_curves"]


class GapHistogramDisplay(Display):
    """Overlaid histograms of per-input gaps, one per metric ({name: gaps}); gaps are scaled by
    each metric's own spread (std) so metrics of different magnitudes share one axis."""

    def __init__(self, per_input_gaps: Mapping):
        self.per_input_gaps = dict(per_input_gaps)

    @classmethod
    def from_result(cls, per_input_gaps: Mapping) -> GapHistogramDisplay:
        """{metric name: per-input gaps} (from `per_input_gap`)."""
        return cls(per_input_gaps)

    @classmethod
    def from_model(cls, model: ModelLike, x: ArrayLike, labels: ArrayLike, *, metrics: Sequence[str] = ("block",), **similarity_kw: Any) -> GapHistogramDisplay:
        """`tangent_similarity(model, x, metric=m)` for each metric, then their per-input gaps."""
        return cls({m: per_input_gap(tangent_similarity(model, x, metric=m, **similarity_kw), labels).numpy()
                    for m in metrics})

    def plot(self, ax: Axes | None = None, *, bins: int = 40, title: str | None = None) -> GapHistogramDisplay:
        ax = self._axes(ax)
        for name, gaps in self.per_input_gaps.items():
            g = np.asarray(gaps, dtype=float)
            g = g[np.isfinite(g)]
            if g.size == 0:
                continue
            scale = g.std() or 1.0
            ax.hist(g / scale, bins=bins, alpha=0.5, label=f"{name} (mean {g.mean() / scale:.2f})")
        ax.axvline(0.0, color="k", lw=0.8)
        label_axes(ax, "per-input gap / std (same-class mean - cross-class mean)", "inputs", title=title)
        return self


class GoodnessDisplay(Display):
    """eps against gamma for several `GoodnessCurve` results ({name: curve})."""

    def __init__(self, curves: Mapping):
        self.curves = dict(curves)

    @classmethod
    def from_result(cls, curves: GoodnessCurve | Mapping[str, GoodnessCurve]) -> GoodnessDisplay:
        """One `GoodnessCurve` or a mapping {name: GoodnessCurve}."""
        return cls(curves if isinstance(curves, Mapping) else {"similarity": curves})

    @classmethod
    def from_model(cls, model: ModelLike, x: ArrayLike, labels: ArrayLike, *, metrics: Sequence[str] = ("block",), **similarity_kw: Any) -> GoodnessDisplay:
        return cls({m: goodness_curve(tangent_similarity(model, x, metric=m, **similarity_kw), labels) for m in metrics})

    def plot(self, ax: Axes | None = None, *, title: str | None = None) -> GoodnessDisplay:
        ax = self._axes(ax)
        for name, curve in self.curves.items():
            ax.plot(curve.gamma, curve.eps, label=name)
        label_axes(ax, "gamma", "eps (share of inputs with gap < gamma)", title=title)
        return self


def plot_gap_histograms(per_input_gaps: dict, *, bins: int = 40, ax: Axes | None = None, title: str | None = None):
    """`GapHistogramDisplay.from_result(per_input_gaps).plot(...)`; returns the Axes."""
    return GapHistogramDisplay.from_result(per_input_gaps).plot(ax, bins=bins, title=title).ax_


def plot_goodness_curves(curves: dict, *, ax: Axes | None = None, title: str | None = None):
    """`GoodnessDisplay.from_result(curves).plot(...)`; returns the Axes."""
    return GoodnessDisplay.from_result(curves).plot(ax, title=title).ax_
