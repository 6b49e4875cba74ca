"""What the viz topic modules share: the Display base class and the one way of making axes.

matplotlib is imported only when something is drawn, so `import reluscope.viz` stays light.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..io_utils import write_bytes_atomic

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["Display", "axes_or_new", "label_axes", "report_figure", "figure_bytes", "save_figure"]

_FORMATS = ("png", "svg", "pdf")


def axes_or_new(ax: Axes | Sequence[Axes] | None = None, *, figsize: tuple[float, float] = (6.0, 4.0),
                panels: int | None = None):
    """`ax` itself, or the Axes of a new pyplot figure (shown in notebooks, as sklearn's Displays do).

    The one way reluscope makes axes. Code that writes files (CLI, report) passes axes from
    `report_figure` instead (or calls `Display.to_figure`), so nothing is left in pyplot's global
    figure registry. With `panels`, a row of that many Axes as a numpy array: `ax` is then None or
    a sequence of exactly `panels` Axes.
    """
    if panels is not None:
        if ax is not None:
            axes = np.asarray(ax, dtype=object).ravel()
            if len(axes) != panels:
                raise ValueError(f"ax: expected {panels} Axes (one per panel) or None, got {len(axes)}")
            return axes
        import matplotlib.pyplot as plt

        return plt.subplots(1, panels, figsize=figsize, squeeze=False)[1][0]
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize)
    return ax


def label_axes(ax: Axes, xlabel: str, ylabel: str, *, title: str | None = None, legend: bool = True) -> Axes:
    """Axis labels, a small legend and an optional title: how every reluscope plot ends."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if legend:
        ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def report_figure(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] = (6.0, 4.0), **subplot_kw):
    """(Figure, axes) outside pyplot, for files: no global figure registry, no backend.

    `axes` is a single Axes for 1x1, else a numpy array as from `plt.subplots`.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(nrows, ncols, **subplot_kw)
    return fig, axes


def figure_bytes(fig: Figure, fmt: str = "png", *, dpi: int = 120) -> bytes:
    """The figure rendered to `fmt` (png, svg or pdf); a pyplot figure is closed afterwards, so
    loops that write many figures do not pile them up in pyplot's registry."""
    if fmt not in _FORMATS:
        raise ValueError(f"fmt: expected one of {', '.join(_FORMATS)}, got {fmt!r}")
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight")
    finally:
        pyplot = sys.modules.get("matplotlib.pyplot")  # only pyplot keeps figures alive globally
        if pyplot is not None:
            pyplot.close(fig)
    return buf.getvalue()


def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: int = 120) -> Path:
    """Write the figure atomically; the format comes from the suffix (.png, .svg or .pdf)."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in _FORMATS:
        raise ValueError(f"figure: expected a .png, .svg or .pdf path, got {path}")
    return write_bytes_atomic(path, figure_bytes(fig, fmt, dpi=dpi))


class Display:
    """scikit-learn style: build with `from_model(...)` (computes) or `from_result(...)` (draws a
    result you have), then `.plot(ax=None)`, which draws and stores `ax_` and `figure_`.

    A display of several panels (a row of `_panels` Axes) takes `ax` as a sequence of that many
    Axes and also stores them all as `axes_` (`ax_` is the first). `to_figure()` draws into a new
    figure outside pyplot, for files."""

    ax_ = None
    axes_ = None
    figure_ = None
    _figsize = (6.0, 4.0)
    _panels = 1

    def _axes(self, ax):
        ax = axes_or_new(ax, figsize=self._figsize)
        self.ax_, self.figure_ = ax, ax.figure
        return ax

    def _axes_row(self, ax):
        axes = axes_or_new(ax, figsize=self._figsize, panels=self._panels)
        self.axes_, self.ax_, self.figure_ = axes, axes[0], axes[0].figure
        return axes

    def to_figure(self, **plot_kw: object) -> Figure:
        """`.plot(**plot_kw)` into a new figure of the display's size made by `report_figure`
        (outside pyplot: for `save_figure`); returns the figure."""
        fig, axes = report_figure(1, self._panels, figsize=self._figsize, squeeze=False)
        self.plot(axes[0] if self._panels > 1 else axes[0][0], **plot_kw)
        return fig
