"""Plots for the convex-hull tools: RGE subsets of 2-D point sets, NCH accuracy by layer."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_rge", "plot_nch_layers"]


def plot_rge(points, indices, *, ax=None, title: str | None = None):
    """Scatter a 2-D point set and draw the hull polygon of the selected subset E."""
    import matplotlib.pyplot as plt
    from scipy.spatial import ConvexHull

    x = np.asarray(points, dtype=float)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"points: expected a 2-D point set [N, 2], got shape {list(x.shape)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(3.2, 3.2))
    e = x[np.asarray(indices)]
    ax.scatter(x[:, 0], x[:, 1], s=2, c="0.6", lw=0)
    if len(e) >= 3:
        hull = ConvexHull(e)
        loop = np.append(hull.vertices, hull.vertices[0])
        ax.plot(e[loop, 0], e[loop, 1], "-", c="tab:red", lw=1)
    ax.scatter(e[:, 0], e[:, 1], s=12, c="tab:red", zorder=3)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def plot_nch_layers(rows, *, ax=None, title: str | None = None):
    """NCH train/test accuracy per layer (rows: dicts or OverfittingRow), network's as lines."""
    import matplotlib.pyplot as plt

    rows = [r if isinstance(r, dict) else vars(r) for r in rows]
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3))
    pos = np.arange(len(rows))
    ax.plot(pos, [r["nch_train"] for r in rows], "o-", label="NCH train (LOO)")
    ax.plot(pos, [r["nch_test"] for r in rows], "s-", label="NCH test")
    ax.axhline(rows[0]["net_train"], ls="--", c="tab:blue", lw=0.8, label="net train")
    ax.axhline(rows[0]["net_test"], ls="--", c="tab:orange", lw=0.8, label="net test")
    ax.set_xticks(pos, [r["layer"] for r in rows], rotation=30, fontsize=7)
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    return ax
