"""Plots of activation patterns: Hamming distance along a traversed segment, unit activity."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..patterns.walks import walk_distances
from ._common import axes_or_new

__all__ = ["plot_hamming_along_path", "plot_unit_activity"]


def plot_hamming_along_path(traversal, ax=None, *, normalize: bool = False, label: str | None = None, **stairs_kw):
    """Step plot of the Hamming distance to the start pattern against t in [0, 1].

    `traversal`: a `reluscope.Traversal` (t [n + 1], patterns [n, units]); each piece (t[i], t[i+1])
    is drawn at the distance of its pattern to the first one. `normalize` divides by the number of
    units. Extra keywords go to `Axes.stairs` (color, alpha, linewidth). Returns the Axes.
    """
    t, patterns = getattr(traversal, "t", None), getattr(traversal, "patterns", None)
    if not isinstance(t, torch.Tensor) or not isinstance(patterns, torch.Tensor):
        raise TypeError(f"traversal: expected a Traversal with tensors t and patterns, got {type(traversal).__name__}")
    if patterns.dim() != 2 or t.shape[0] != patterns.shape[0] + 1:
        raise ValueError(f"traversal: expected t [n + 1] and patterns [n, units], got {list(t.shape)} and {list(patterns.shape)}")
    d = walk_distances(patterns).to_start.astype(float)
    if normalize:
        d = d / max(1, patterns.shape[1])
    ax = axes_or_new(ax)
    ax.stairs(d, t.detach().cpu().double().numpy(), label=label, **stairs_kw)
    ax.set_xlim(0, 1)
    ax.set_xlabel("t along the segment")
    ax.set_ylabel("Hamming distance to start" + (" (fraction of units)" if normalize else ""))
    return ax


def plot_unit_activity(bits: torch.Tensor, layout: Sequence | None = None, ax=None, *, sort: bool = True, **bar_kw):
    """Bar chart of how often each unit is active over a data set, layer by layer.

    `bits`: bool [N, units] from `activation_patterns`; `layout`: `Network.unit_layout()` (layers
    are separated and labelled). With `sort`, units are ordered by activity within each layer.
    Dead units (never active) are marked with red ticks under the axis. Returns the Axes.
    """
    if not isinstance(bits, torch.Tensor) or bits.dtype != torch.bool or bits.dim() != 2 or bits.shape[0] == 0:
        got = f"{bits.dtype} {list(bits.shape)}" if isinstance(bits, torch.Tensor) else type(bits).__name__
        raise TypeError(f"bits: expected a non-empty bool tensor [N, units], got {got}")
    units = bits.shape[1]
    spans = [("all units", 0, units)] if layout is None else [(s.name, s.start, s.stop) for s in layout]
    if spans and spans[-1][2] > units:
        raise ValueError(f"layout: covers {spans[-1][2]} units, but bits has {units}")
    freq = bits.double().mean(0).cpu()
    ax = axes_or_new(ax, figsize=(8.0, 3.0))
    colors = ["C0", "C1", "C2", "C3", "C4", "C5"]
    for k, (name, start, stop) in enumerate(spans):
        f = freq[start:stop]
        if sort:
            f = f.sort(descending=True).values
        xs = torch.arange(start, stop).numpy()
        ax.bar(xs, f.numpy(), width=1.0, color=colors[k % len(colors)], label=f"module {name}: {stop - start} units", **bar_kw)
        dead = xs[(f == 0).numpy()]
        if len(dead):
            ax.plot(dead, [-0.03] * len(dead), "|", color="red", markersize=6)
        if k:
            ax.axvline(start - 0.5, color="0.5", linewidth=0.8)
    ax.set_xlim(-0.5, units - 0.5)
    ax.set_ylim(-0.06, 1.02)
    ax.set_xlabel("unit" + (" (sorted by activity within each layer)" if sort else ""))
    ax.set_ylabel("fraction of inputs active")
    ax.legend(loc="upper right", fontsize="small")
    return ax
