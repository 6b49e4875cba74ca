"""Plots for tangent similarities: per-input gap histograms and (eps, gamma) goodness curves."""

from __future__ import annotations

import numpy as np

from ._common import axes_or_new

__all__ = ["plot_gap_histograms", "plot_goodness_curves"]


def plot_gap_histograms(per_input_gaps: dict, *, bins: int = 40, ax=None, title: str | None = None):
    """Overlaid histograms of per-input gaps, one per metric ({name: gaps}); gaps are scaled by
    each metric's own spread (std) so metrics of different magnitudes share one axis."""
    ax = axes_or_new(ax)
    for name, gaps in per_input_gaps.items():
        g = np.asarray(gaps, dtype=float)
        g = g[np.isfinite(g)]
        if g.size == 0:
            continue
        scale = g.std() or 1.0
        ax.hist(g / scale, bins=bins, alpha=0.5, label=f"{name} (mean {g.mean() / scale:.2f})")
    ax.axvline(0.0, color="k", lw=0.8)
    ax.set_xlabel("per-input gap / std (same-class mean - cross-class mean)")
    ax.set_ylabel("inputs")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def plot_goodness_curves(curves: dict, *, ax=None, title: str | None = None):
    """eps against gamma for several GoodnessCurve objects ({name: curve})."""
    ax = axes_or_new(ax)
    for name, curve in curves.items():
        ax.plot(curve.gamma, curve.eps, label=name)
    ax.set_xlabel("gamma")
    ax.set_ylabel("eps (share of inputs with gap < gamma)")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return ax
