"""Displays for the convex-hull tools: RGE subsets of 2-D point sets, NCH accuracy by layer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..hull import revised_greedy_expansion
from ..hull.classifier import OverfittingReport
from ..results import Result
from ._common import Display

if TYPE_CHECKING:
    from typing import Any
    from ..experiments.hulls import HullsRun
    from ..hull.classifier import OverfittingRow
    from ..hull.rge import RGEResult
    from matplotlib.axes import Axes
    from .._types import ArrayLike

__all__ = ["RGEDisplay", "NCHLayersDisplay", "plot_rge", "plot_nch_layers"]


class RGEDisplay(Display):
    """A 2-D point set with the hull polygon of the selected subset E (Revised Greedy Expansion)."""

    _figsize = (3.2, 3.2)

    def __init__(self, points: ArrayLike, indices: ArrayLike):
        x = np.asarray(points, dtype=float)
        if x.ndim != 2 or x.shape[1] != 2:
            raise ValueError(f"points: expected a 2-D point set [N, 2], got shape {list(x.shape)}")
        self.points, self.indices = x, np.asarray(indices)

    @classmethod
    def from_result(cls, points: ArrayLike, result: RGEResult | ArrayLike) -> RGEDisplay:
        """`result`: an `RGEResult` of `points` (or the selected indices themselves)."""
        return cls(points, getattr(result, "indices", result))

    @classmethod
    def from_model(cls, points: ArrayLike, **rge_kw: Any) -> RGEDisplay:
        """Run `revised_greedy_expansion(points, **rge_kw)` and display it (the "model" is the point set)."""
        return cls.from_result(points, revised_greedy_expansion(points, **rge_kw))

    def plot(self, ax: Axes | None = None, *, title: str | None = None) -> RGEDisplay:
        from scipy.spatial import ConvexHull

        ax = self._axes(ax)
        x, e = self.points, self.points[self.indices]
        ax.scatter(x[:, 0], x[:, 1], s=2, c="0.6", lw=0)
        if len(e) >= 3:
            hull = ConvexHull(e)
            loop = np.append(hull.vertices, hull.vertices[0])
            ax.plot(e[loop, 0], e[loop, 1], "-", c="tab:red", lw=1)
        ax.scatter(e[:, 0], e[:, 1], s=12, c="tab:red", zorder=3)
        ax.set_aspect("equal")
        if title:
            ax.set_title(title, fontsize=9)
        return self


class NCHLayersDisplay(Display):
    """NCH train/test accuracy per layer, with the network's own accuracies as lines."""

    _figsize = (4.5, 3.0)

    def __init__(self, layers: Sequence[str], nch_train: ArrayLike, nch_test: ArrayLike, net_train: float,
                 net_test: float):
        self.layers = [str(name) for name in layers]
        self.nch_train, self.nch_test = np.asarray(nch_train, dtype=float), np.asarray(nch_test, dtype=float)
        self.net_train, self.net_test = float(net_train), float(net_test)

    @classmethod
    def from_result(cls, report: OverfittingReport | Sequence[OverfittingRow | Mapping] | HullsRun) -> NCHLayersDisplay:
        """`report`: an `OverfittingReport` (or its rows, as `OverfittingRow` or mappings with its
        field names), or one run of the hulls experiment (`HullsRun`: its NCH train accuracy is the
        leave-one-out one, and the network's validation accuracy stands for its train accuracy)."""
        if isinstance(report, OverfittingReport):
            rows = report.rows
        elif isinstance(report, Sequence):
            rows = report
        elif isinstance(report, Result):  # a HullsRun: experiments sit above viz, so it is named only for type checkers
            return cls([r.layer for r in report.layers], [r.nch_train_loo for r in report.layers],
                       [r.nch_test for r in report.layers], report.net_val, report.net_test)
        else:
            raise TypeError(f"report: expected an OverfittingReport, a sequence of its rows or a HullsRun, "
                            f"got {type(report).__name__}")

        def column(name):
            return [r[name] if isinstance(r, Mapping) else getattr(r, name) for r in rows]

        return cls(column("layer"), column("nch_train"), column("nch_test"), column("net_train")[0],
                   column("net_test")[0])

    def plot(self, ax: Axes | None = None, *, title: str | None = None) -> NCHLayersDisplay:
        ax = self._axes(ax)
        pos = np.arange(len(self.layers))
        ax.plot(pos, self.nch_train, "o-", label="NCH train (LOO)")
        ax.plot(pos, self.nch_test, "s-", label="NCH test")
        ax.axhline(self.net_train, ls="--", c="tab:blue", lw=0.8, label="net train")
        ax.axhline(self.net_test, ls="--", c="tab:orange", lw=0.8, label="net test")
        ax.set_xticks(pos, self.layers, rotation=30, fontsize=7)
        ax.set_ylabel("accuracy")
        ax.legend(fontsize=7)
        if title:
            ax.set_title(title, fontsize=9)
        return self


def plot_rge(points: ArrayLike, indices: ArrayLike, *, ax: Axes | None = None, title: str | None = None):
    """`RGEDisplay(points, indices).plot(...)`; returns the Axes."""
    return RGEDisplay(points, indices).plot(ax, title=title).ax_


def plot_nch_layers(rows: OverfittingReport | Sequence[OverfittingRow | Mapping] | HullsRun, *, ax: Axes | None = None, title: str | None = None):
    """`NCHLayersDisplay.from_result(rows).plot(...)`; returns the Axes."""
    return NCHLayersDisplay.from_result(rows).plot(ax, title=title).ax_
