"""Descriptive statistics of activation patterns and of traversed segments.

`summarize_patterns` answers "how does this network use its units on this data": per layer the
share of active bits, dead units (never active) and always-active units, and the number of
distinct patterns (= linear regions hit, for a ReLU network). `summarize_traversals` gives the
regions-per-segment and Hamming statistics of exact traversals. Both return frozen dataclasses
(`to_dict()`, `save()`, and `PatternSummary.to_frame()` per layer).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..results import Result, frame
from .walks import walk_distances, walk_extents

if TYPE_CHECKING:
    from ..traversal import Traversal

__all__ = [
    "LayerActivity",
    "PatternSummary",
    "summarize_patterns",
    "count_distinct_patterns",
    "hamming_to_start",
    "TraversalSummary",
    "summarize_traversals",
]


@dataclass(frozen=True)
class LayerActivity(Result):
    """One activation layer on a data set: units, mean share of active bits, dead/always-on units."""

    name: str
    units: int
    active_fraction: float
    dead_units: int
    always_active_units: int


@dataclass(frozen=True)
class PatternSummary(Result):
    n_inputs: int
    n_units: int
    distinct_patterns: int
    active_fraction: float
    dead_units: int
    always_active_units: int
    layers: tuple[LayerActivity, ...]

    def to_frame(self):
        """pandas.DataFrame, one row per layer (pandas is optional)."""
        return frame([dataclasses.asdict(layer) for layer in self.layers], "PatternSummary")


def count_distinct_patterns(bits: torch.Tensor) -> int:
    """Number of distinct rows of a bool [N, units] tensor (packed to bytes first: 8x less to sort)."""
    if bits.shape[0] == 0:
        return 0
    pad = (-bits.shape[1]) % 8
    padded = torch.nn.functional.pad(bits.to(torch.uint8), (0, pad)).reshape(bits.shape[0], -1, 8)
    words = (padded << torch.arange(8, dtype=torch.uint8, device=bits.device)).sum(2, dtype=torch.uint8)
    return int(torch.unique(words, dim=0).shape[0])


def _check_bits(bits) -> torch.Tensor:
    if not isinstance(bits, torch.Tensor) or bits.dtype != torch.bool or bits.dim() != 2:
        got = f"{bits.dtype} {list(bits.shape)}" if isinstance(bits, torch.Tensor) else type(bits).__name__
        raise TypeError(f"bits: expected a bool tensor [N, units] (from activation_patterns), got {got}")
    return bits


def summarize_patterns(bits: torch.Tensor, layout: Sequence | None = None) -> PatternSummary:
    """Statistics of the patterns `bits` (bool [N, units]); `layout` from `Network.unit_layout()`.

    Without a layout all units count as one layer named "all". A unit is dead when its bit is 0 on
    every input, always active when it is 1 on every input (both need N >= 1).
    """
    bits = _check_bits(bits)
    n, units = bits.shape
    if n == 0:
        raise ValueError("bits: expected patterns of at least one input, got N = 0")
    if layout is None:
        spans = [("all", 0, units)]
    else:
        spans = [(s.name, s.start, s.stop) for s in layout]
        if spans and spans[-1][2] != units:
            raise ValueError(f"layout: covers {spans[-1][2]} units, but bits has {units}")
    freq = bits.float().mean(0)
    layers = tuple(
        LayerActivity(
            name, stop - start,
            float(freq[start:stop].mean()) if stop > start else 0.0,
            int((freq[start:stop] == 0).sum()), int((freq[start:stop] == 1).sum()),
        )
        for name, start, stop in spans
    )
    return PatternSummary(
        n_inputs=n, n_units=units, distinct_patterns=count_distinct_patterns(bits),
        active_fraction=float(freq.mean()) if units else 0.0,
        dead_units=int((freq == 0).sum()), always_active_units=int((freq == 1).sum()), layers=layers,
    )


def hamming_to_start(traversal: Traversal) -> torch.Tensor:
    """long [n]: Hamming distance of each piece's pattern to the first piece's pattern."""
    return torch.from_numpy(walk_distances(traversal.patterns).to_start)


@dataclass(frozen=True)
class TraversalSummary(Result):
    """Over a set of segments: pieces (regions crossed) per segment, and Hamming distances.

    `final_hamming`: distance between the first and last pattern of a segment (mean over
    segments); `max_hamming`: the farthest the walk gets from its start (mean); `total_flips`:
    bits flipped along the way (mean). max_hamming > final_hamming or total_flips > final_hamming
    means some bits flip back on the way (the walk is not a shortest path in the hypercube).
    """

    n_segments: int
    regions_mean: float
    regions_median: float
    regions_min: int
    regions_max: int
    final_hamming_mean: float
    max_hamming_mean: float
    total_flips_mean: float
    segments_with_returning_bits: int


def summarize_traversals(traversals: Sequence) -> TraversalSummary:
    """Statistics of a non-empty sequence of `Traversal` results."""
    traversals = list(traversals)
    if not traversals:
        raise ValueError("traversals: expected at least one Traversal, got none")
    regions = torch.tensor([t.patterns.shape[0] for t in traversals], dtype=torch.float64)
    ext = walk_extents([t.patterns for t in traversals])
    final_t, far_t, flips_t = (torch.from_numpy(v.astype(np.float64)) for v in (ext.end, ext.farthest, ext.length))
    return TraversalSummary(
        n_segments=len(traversals),
        regions_mean=float(regions.mean()), regions_median=float(regions.median()),
        regions_min=int(regions.min()), regions_max=int(regions.max()),
        final_hamming_mean=float(final_t.mean()), max_hamming_mean=float(far_t.mean()),
        total_flips_mean=float(flips_t.mean()),
        segments_with_returning_bits=int((flips_t > final_t).sum()),
    )
