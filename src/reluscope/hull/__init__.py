"""Convex hulls in activation space (Jia et al., arXiv 1904.01399): hull distance, Revised Greedy
Expansion, geometric properties per class and the nearest-convex-hull classifier."""

from .distance import HullDistance, hull_distance, hull_distance_bounds, in_hull

__all__ = ["HullDistance", "hull_distance", "hull_distance_bounds", "in_hull"]
from .classifier import HullMode, NearestConvexHull, OverfittingReport, OverfittingRow, overfitting_report
from .properties import ClassGeometry, class_geometry, crucial_share, misinclusion, pairwise_distance_histogram
from .kcha import KCHAPrecision, kcha_scores
from .rge import RGEResult, RGEStop, revised_greedy_expansion, rge_memory
from .layer import LayerHulls, layer_hulls

__all__ += [
    "HullMode", "NearestConvexHull", "OverfittingRow", "OverfittingReport", "overfitting_report",
    "ClassGeometry", "class_geometry", "crucial_share", "misinclusion", "pairwise_distance_histogram",
    "RGEResult", "RGEStop", "KCHAPrecision", "kcha_scores", "revised_greedy_expansion", "rge_memory",
    "LayerHulls", "layer_hulls",
]
