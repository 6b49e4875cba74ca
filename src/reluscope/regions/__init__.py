"""Exact linear regions of 2-D slices of a piecewise-linear network, their dual graph and Fiedler partition."""

from .dual import DualGraph, FiedlerPartition, dual_graph, fiedler_partition, fiedler_score
from .partition import DEFAULT_MEMORY_BUDGET, DEFAULT_RTOL, RegionBudgetError, RegionMap, regions_2d
from .plane import Plane

__all__ = [
    "Plane", "RegionMap", "regions_2d", "RegionBudgetError", "DEFAULT_RTOL", "DEFAULT_MEMORY_BUDGET",
    "DualGraph", "FiedlerPartition", "dual_graph", "fiedler_partition", "fiedler_score",
]
