"""Convex hulls in activation space (Jia et al., arXiv 1904.01399): hull distance, Revised Greedy
Expansion, geometric properties per class and the nearest-convex-hull classifier."""

from .distance import HullDistance, hull_distance, hull_distance_bounds, in_hull

__all__ = ["HullDistance", "hull_distance", "hull_distance_bounds", "in_hull"]
