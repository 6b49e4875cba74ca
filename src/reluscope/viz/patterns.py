"""Displays of activation patterns: Hamming distance along a traversed segment, unit activity."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..network import to_network
from ..patterns import activation_patterns
from ..patterns.walks import walk_distances
from ..traversal import traverse
from ._common import Display

if TYPE_CHECKING:
    from typing import Any
    from matplotlib.axes import Axes
    from .._types import ArrayLike
    from .._types import ModelLike
    from ..traversal import Traversal

__all__ = ["HammingPathDisplay", "UnitActivityDisplay", "plot_hamming_along_path", "plot_unit_activity"]


class HammingPathDisplay(Display):
    """Step plot of the Hamming distance to the start pattern against t in [0, 1] along a segment.

    `t` (float [n + 1]) are the region boundaries and `distance` (int [n]) each region's distance
    to the first; `n_units` scales the distance when plotted with `normalize=True`.
    """

    def __init__(self, t: np.ndarray, distance: np.ndarray, n_units: int):
        self.t, self.distance, self.n_units = t, distance, n_units

    @classmethod
    def from_result(cls, traversal: Traversal) -> HammingPathDisplay:
        """From a `Traversal` (t [n + 1], patterns [n, units])."""
        t, patterns = getattr(traversal, "t", None), getattr(traversal, "patterns", None)
        if not isinstance(t, torch.Tensor) or not isinstance(patterns, torch.Tensor):
            raise TypeError(f"traversal: expected a Traversal with tensors t and patterns, got {type(traversal).__name__}")
        if patterns.dim() != 2 or t.shape[0] != patterns.shape[0] + 1:
            raise ValueError(f"traversal: expected t [n + 1] and patterns [n, units], got {list(t.shape)} and {list(patterns.shape)}")
        d = walk_distances(patterns).to_start
        return cls(t.detach().cpu().double().numpy(), d, int(patterns.shape[1]))

    @classmethod
    def from_model(cls, model: ModelLike, x0: ArrayLike, x1: ArrayLike, *, include_output: bool = False) -> HammingPathDisplay:
        """Traverse x0 -> x1 exactly (`reluscope.traverse`) and display it."""
        return cls.from_result(traverse(model, x0, x1, include_output=include_output))

    def plot(self, ax: Axes | None = None, *, normalize: bool = False, label: str | None = None, **stairs_kw: Any) -> HammingPathDisplay:
        """Extra keywords go to `Axes.stairs` (color, alpha, linewidth)."""
        ax = self._axes(ax)
        d = self.distance.astype(float) / (max(1, self.n_units) if normalize else 1)
        ax.stairs(d, self.t, label=label, **stairs_kw)
        ax.set_xlim(0, 1)
        ax.set_xlabel("t along the segment")
        ax.set_ylabel("Hamming distance to start" + (" (fraction of units)" if normalize else ""))
        return self


class UnitActivityDisplay(Display):
    """Bar chart of how often each unit is active over a data set, layer by layer.

    `frequency` (float [units]): share of inputs on which each unit is active; `layout`:
    `Network.unit_layout()` (layers are separated and labelled). Dead units get red ticks.
    """

    _figsize = (8.0, 3.0)

    def __init__(self, frequency: np.ndarray, layout: Sequence | None = None):
        self.frequency, self.layout = frequency, layout

    @classmethod
    def from_result(cls, bits: torch.Tensor, layout: Sequence | None = None) -> UnitActivityDisplay:
        """From patterns bool [N, units] (`activation_patterns`) and their layout."""
        if not isinstance(bits, torch.Tensor) or bits.dtype != torch.bool or bits.dim() != 2 or bits.shape[0] == 0:
            got = f"{bits.dtype} {list(bits.shape)}" if isinstance(bits, torch.Tensor) else type(bits).__name__
            raise TypeError(f"bits: expected a non-empty bool tensor [N, units], got {got}")
        if layout is not None and len(layout) and layout[-1].stop > bits.shape[1]:
            raise ValueError(f"layout: covers {layout[-1].stop} units, but bits has {bits.shape[1]}")
        return cls(bits.double().mean(0).cpu().numpy(), layout)

    @classmethod
    def from_model(cls, model: ModelLike, x: ArrayLike, *, include_output: bool = False) -> UnitActivityDisplay:
        """Patterns of the batch `x` and the network's unit layout."""
        bits = activation_patterns(model, x, include_output=include_output)
        net = to_network(model).with_input_shape(tuple(torch.as_tensor(x).shape[1:]))
        return cls.from_result(bits, net.unit_layout(include_output=include_output))

    def plot(self, ax: Axes | None = None, *, sort: bool = True, **bar_kw: Any) -> UnitActivityDisplay:
        """With `sort`, units are ordered by activity within each layer; keywords go to `Axes.bar`."""
        ax = self._axes(ax)
        units = self.frequency.shape[0]
        spans = [("all units", 0, units)] if self.layout is None else [(s.name, s.start, s.stop) for s in self.layout]
        colors = ["C0", "C1", "C2", "C3", "C4", "C5"]
        for k, (name, start, stop) in enumerate(spans):
            f = self.frequency[start:stop]
            if sort:
                f = np.sort(f)[::-1]
            xs = np.arange(start, stop)
            ax.bar(xs, f, width=1.0, color=colors[k % len(colors)], label=f"module {name}: {stop - start} units", **bar_kw)
            dead = xs[f == 0]
            if len(dead):
                ax.plot(dead, [-0.03] * len(dead), "|", color="red", markersize=6)
            if k:
                ax.axvline(start - 0.5, color="0.5", linewidth=0.8)
        ax.set_xlim(-0.5, units - 0.5)
        ax.set_ylim(-0.06, 1.02)
        ax.set_xlabel("unit" + (" (sorted by activity within each layer)" if sort else ""))
        ax.set_ylabel("fraction of inputs active")
        ax.legend(loc="upper right", fontsize="small")
        return self


def plot_hamming_along_path(traversal: Traversal, *, ax: Axes | None = None, normalize: bool = False, label: str | None = None, **stairs_kw: Any):
    """`HammingPathDisplay.from_result(traversal).plot(...)`; returns the Axes."""
    return HammingPathDisplay.from_result(traversal).plot(ax, normalize=normalize, label=label, **stairs_kw).ax_


def plot_unit_activity(bits: torch.Tensor, layout: Sequence | None = None, *, ax: Axes | None = None, sort: bool = True, **bar_kw: Any):
    """`UnitActivityDisplay.from_result(bits, layout).plot(...)`; returns the Axes."""
    return UnitActivityDisplay.from_result(bits, layout).plot(ax, sort=sort, **bar_kw).ax_
