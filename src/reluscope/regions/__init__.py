"""Exact linear regions of 2-D slices of a piecewise-linear network, their dual graph and Fiedler
partition, and a recorder of region topology during training."""

from .dual import (
    DualGraph, EdgeWeight, FiedlerComparison, FiedlerPartition, FiedlerSolver, GraphVariant, VariantScore,
    compare_variants, dual_graph, fiedler_partition, fiedler_score, positive_class_area,
)
from .partition import DEFAULT_MEMORY_BUDGET, DEFAULT_RTOL, RegionBudgetError, RegionMap, pattern_keys, regions_2d
from .plane import Plane
from .recorder import TopologyRecorder
from .split import SplitScore, StraightCut, best_straight_cut, score_split
from .summary import RegionSummary, summarize_regions

__all__ = [
    "Plane", "RegionMap", "regions_2d", "RegionBudgetError", "DEFAULT_RTOL", "DEFAULT_MEMORY_BUDGET", "pattern_keys",
    "DualGraph", "FiedlerPartition", "FiedlerSolver", "dual_graph", "fiedler_partition", "fiedler_score",
    "positive_class_area", "TopologyRecorder", "RegionSummary", "summarize_regions", "EdgeWeight", "GraphVariant",
    "VariantScore", "FiedlerComparison", "compare_variants", "SplitScore", "StraightCut", "best_straight_cut",
    "score_split",
]
