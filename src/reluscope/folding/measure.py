"""The space-folding measure chi of a walk of activation patterns (Lewandowski et al., TMLR 2025).

A walk Gamma = (pi_1, ..., pi_n) is the sequence of activation patterns met along a path, given as a
bool tensor [n, units]. With d_H the Hamming distance,

    r1 = max_i d_H(pi_1, pi_i)              (farthest the walk ever gets from its start)
    r2 = sum_i d_H(pi_i, pi_{i+1})          (total Hamming length of the walk)
    chi = 1 - r1 / r2, and chi = 0 when r2 = 0.

chi = 0 iff no bit ever flips back; chi > 0 means the network folds the path. A walk of a single
pattern has r2 = 0, so its chi is the documented 0 (not an error); an empty walk is an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..patterns.walks import WalkExtents, as_walk, walk_distances, walk_extents
from ..results import Result

if TYPE_CHECKING:
    from .._types import ArrayLike

__all__ = [
    "FoldingProfile",
    "as_walk",
    "folding_measure",
    "folding_profile",
    "folding_measures",
    "interaction_effect",
    "interaction_effects",
]


@dataclass(frozen=True)
class FoldingProfile(Result):
    """chi of a walk together with the quantities it is made of.

    `running_chi[i]` is chi of the first i + 1 patterns (the curve the authors plot; 0 at i = 0);
    `distance_to_start[i]` = d_H(pi_1, pi_{i+1}); `step_lengths[i]` = d_H(pi_{i+1}, pi_{i+2}).
    """

    r1: int
    r2: int
    chi: float
    running_chi: np.ndarray  # float64 [n]
    distance_to_start: np.ndarray  # int64 [n]
    step_lengths: np.ndarray  # int64 [n - 1]

    @property
    def n_patterns(self) -> int:
        return int(self.distance_to_start.shape[0])

    @property
    def end_distance(self) -> int:
        """D = d_H(pi_1, pi_n); the bounds (1 - D/L)/2 <= chi <= 1 - D/L hold with L = r2."""
        return int(self.distance_to_start[-1])


def _chi(r1: float, r2: float) -> float:
    return 0.0 if r2 == 0 else 1.0 - r1 / r2


def folding_profile(walk: ArrayLike) -> FoldingProfile:
    """r1, r2, chi, the running chi curve and the Hamming distances to the start of `walk`."""
    d = walk_distances(walk)
    r1_run = np.maximum.accumulate(d.to_start)
    r2_run = np.concatenate([[0], np.cumsum(d.steps)])
    running = np.where(r2_run > 0, 1.0 - r1_run / np.maximum(r2_run, 1), 0.0)
    r1, r2 = int(r1_run[-1]), int(r2_run[-1])
    return FoldingProfile(r1, r2, _chi(r1, r2), running, d.to_start, d.steps)


def folding_measure(walk: ArrayLike) -> float:
    """chi = 1 - r1 / r2 of a walk (bool [n, units]); 0 when r2 = 0 (one region, one pattern)."""
    d = walk_distances(walk)
    return _chi(d.farthest, d.length)


def folding_measures(walks: Sequence) -> np.ndarray:
    """chi of many walks at once (float64 [len(walks)]), in one vectorised pass (`walk_extents`)."""
    return chi_of_extents(walk_extents(walks))


def chi_of_extents(ext: WalkExtents) -> np.ndarray:
    """chi = 1 - r1 / r2 per walk (float64 [k]) from their `WalkExtents`; 0 where r2 = 0."""
    return np.where(ext.length > 0, 1.0 - ext.farthest / np.maximum(ext.length, 1), 0.0)


def interaction_effect(walk: ArrayLike, k: int) -> float:
    """I(k) = chi(Gamma) - chi(pi_1..pi_k) - chi(pi_k..pi_n), k counted from 1 as in the paper.

    Gamma_1 + Gamma_2 repeats pi_k, which does not change chi, so the first term is chi(Gamma).
    `interaction_effects` gives I(k) for every k.
    """
    walk = as_walk(walk)
    n = walk.shape[0]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k: expected an int split index, got {type(k).__name__}")
    if not 1 <= k <= n:
        raise ValueError(f"k: expected a split index in 1..{n} (walk of {n} patterns), got {k}")
    return folding_measure(walk) - folding_measure(walk[:k]) - folding_measure(walk[k - 1:])


def interaction_effects(walk: ArrayLike) -> np.ndarray:
    """float64 [n]: I(k) of `interaction_effect` for every split k = 1..n of the walk."""
    walk = as_walk(walk)
    return np.array([interaction_effect(walk, j) for j in range(1, walk.shape[0] + 1)])
