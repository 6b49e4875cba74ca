"""Axes helpers shared by the viz topic modules (matplotlib imported only when called)."""

from __future__ import annotations

__all__ = ["axes_or_new", "report_figure"]


def axes_or_new(ax=None, *, figsize=(6.0, 4.0)):
    """`ax` itself, or the Axes of a new pyplot figure (shown in notebooks, like sklearn's Displays)."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize)
    return ax


def report_figure(nrows: int = 1, ncols: int = 1, *, figsize=(6.0, 4.0), **subplot_kw):
    """(Figure, axes) outside pyplot, for report sections: no global figure registry, no backend.

    `axes` is a single Axes for 1x1, else a numpy array as from `plt.subplots`.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(nrows, ncols, **subplot_kw)
    return fig, axes
