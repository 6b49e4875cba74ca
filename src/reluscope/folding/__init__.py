"""Space folding (Lewandowski et al.): the measure chi of a walk, folding along segments, over data
sets, and a differentiable surrogate for training.

`measure` works on walks of patterns only; `path` turns segments into walks (exact traversal or the
papers' grid); `global_` aggregates over pairs of inputs of two classes; `regulariser` is the
smooth surrogate used as an extra loss.
"""

from .global_ import Aggregator, GlobalFolding, PairStrategy, aggregate_folding, draw_pairs, global_folding
from .measure import (
    FoldingProfile, as_walk, folding_measure, folding_measures, folding_profile, interaction_effect, interaction_effects,
)
from .path import PathFolding, path_chi, path_folding, path_folding_many, path_walks, symmetric_folding, symmetric_folding_many
from .regulariser import folding_loss, folding_penalty, soft_folding

__all__ = [
    "FoldingProfile", "as_walk", "folding_measure", "folding_measures", "folding_profile",
    "interaction_effect", "interaction_effects",
    "PathFolding", "path_folding", "path_folding_many", "path_chi", "path_walks", "symmetric_folding",
    "symmetric_folding_many",
    "soft_folding", "folding_penalty", "folding_loss",
    "PairStrategy", "Aggregator", "GlobalFolding", "global_folding", "aggregate_folding", "draw_pairs",
]
