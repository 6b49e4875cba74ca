"""Activation patterns: one bit per unit, packed storage, Hamming distances, and their summaries."""

from __future__ import annotations

from .bits import (
    HammingMethod,
    PackedPatterns,
    activation_patterns,
    hamming,
    pattern_layout,
    pack_patterns,
    pairwise_hamming,
    prepare_network,
    unpack_patterns,
)
from .summary import (
    LayerActivity,
    PatternSummary,
    TraversalSummary,
    count_distinct_patterns,
    hamming_to_start,
    summarize_patterns,
    summarize_traversals,
)
from .walks import WalkDistances, WalkExtents, as_walk, walk_distances, walk_extents

__all__ = [
    "HammingMethod",
    "PackedPatterns",
    "activation_patterns",
    "pattern_layout",
    "hamming",
    "pack_patterns",
    "pairwise_hamming",
    "prepare_network",
    "unpack_patterns",
    "LayerActivity",
    "PatternSummary",
    "TraversalSummary",
    "count_distinct_patterns",
    "hamming_to_start",
    "summarize_patterns",
    "summarize_traversals",
    "WalkDistances",
    "WalkExtents",
    "as_walk",
    "walk_distances",
    "walk_extents",
]
