"""Folding of a network over a data set: chi on many segments between two classes, aggregated.

The authors' protocol: segments between test images of two classes (MNIST digits 1 and 4), chi on
each, summarised by the median of the positive values (from their talk; the TMLR text may differ,
hence the aggregator option).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from .._checks import DEFAULT_MEMORY_BUDGET, as_enum, as_float_tensor, check_finite, check_int
from ..network import to_network
from ..results import Result, frame
from .path import path_chi

if TYPE_CHECKING:
    from .._types import ArrayLike, ModelLike

__all__ = ["PairStrategy", "Aggregator", "GlobalFolding", "global_folding", "aggregate_folding", "draw_pairs"]


class PairStrategy(str, enum.Enum):
    """Which segments between class a and class b are evaluated.

    RANDOM (default): `budget` pairs drawn uniformly without replacement from all a x b pairs; an
        unbiased estimate of the all-pairs distribution at a cost fixed by the budget, which is why
        it is the default.
    ALL: every a x b pair, in order; exact but quadratic in the class sizes, so it refuses to run
        when there are more pairs than the budget (rather than silently truncating, which would
        favour the first images).
    CENTROIDS: class representatives ("The Space Between"): the mean input of class a to randomly
        chosen inputs of class b, and inputs of class a to the mean of class b (half the budget each
        way). Cheapest to read as one curve per class, but the mean image is off the data manifold.
    """

    RANDOM = "random"
    ALL = "all"
    CENTROIDS = "centroids"


class Aggregator(str, enum.Enum):
    """How the chi values of many segments become one number.

    MEDIAN_POSITIVE (default): median of the chi > 0 values (0 when none folds); the authors' global
        measure Phi, robust to the many unfolded segments and to a few extreme ones.
    MEAN: plain mean; mixes how often and how much a network folds.
    MAX: the most folded segment; sensitive to outliers.
    SHARE_FOLDED: fraction of segments with chi > 0; how often, not how much.
    """

    MEDIAN_POSITIVE = "median_positive"
    MEAN = "mean"
    MAX = "max"
    SHARE_FOLDED = "share_folded"


def aggregate_folding(chi: ArrayLike, aggregator: Aggregator | str = Aggregator.MEDIAN_POSITIVE) -> float:
    """One number from many chi values (see `Aggregator`); 0 for an empty set."""
    agg = as_enum(aggregator, Aggregator, "aggregator")
    chi = np.asarray(chi, dtype=np.float64)
    if chi.size == 0:
        return 0.0
    if agg is Aggregator.MEDIAN_POSITIVE:
        pos = chi[chi > 0]
        return float(np.median(pos)) if pos.size else 0.0
    if agg is Aggregator.MEAN:
        return float(chi.mean())
    if agg is Aggregator.MAX:
        return float(chi.max())
    return float((chi > 0).mean())




@dataclass(frozen=True)
class GlobalFolding(Result):
    """chi of every evaluated segment, their aggregate `value`, and which segments they were.

    `pairs[i] = (i0, i1)` indexes the rows of `x` that segment i joins (class a -> class b); -1
    stands for the class mean (PairStrategy.CENTROIDS). `n_patterns[i]` is the length of walk i.
    """

    value: float
    chi: np.ndarray  # float64 [P]
    pairs: np.ndarray  # int64 [P, 2]
    n_patterns: np.ndarray  # int64 [P]
    classes: tuple
    aggregator: Aggregator
    strategy: PairStrategy
    exact: bool
    include_output: bool

    def aggregate(self, aggregator: Aggregator | str) -> float:
        """The same chi values under another aggregator."""
        return aggregate_folding(self.chi, aggregator)

    def to_frame(self):
        """pandas.DataFrame, one row per segment: the two row indices, chi and walk length."""
        return frame({"i0": self.pairs[:, 0], "i1": self.pairs[:, 1], "chi": self.chi, "n_patterns": self.n_patterns},
                     "GlobalFolding")


def draw_pairs(y: ArrayLike, classes: tuple[int, int] = (1, 4), *, pairs: PairStrategy | str = PairStrategy.RANDOM,
               budget: int = 1000, seed: int = 0) -> np.ndarray:
    """int64 [P, 2] row indices (class a, class b) of the segments to evaluate; -1 = class mean."""
    strategy = as_enum(pairs, PairStrategy, "pairs")
    y = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y)
    if y.ndim != 1:
        raise ValueError(f"y: expected labels of shape [N], got {list(y.shape)}")
    budget = check_int(budget, "budget", what="number of segments")
    if len(classes) != 2 or classes[0] == classes[1]:
        raise ValueError(f"classes: expected two different labels (a, b), got {tuple(classes)!r}")
    idx = []
    present = sorted(set(y.tolist()))
    for c in classes:
        rows = np.flatnonzero(y == c)
        if rows.size == 0:
            raise ValueError(f"classes: label {c!r} does not occur in y; labels present: {present}")
        idx.append(rows)
    a, b = idx
    rng = np.random.default_rng(seed)
    total = a.size * b.size
    if strategy is PairStrategy.ALL:
        if total > budget:
            raise ValueError(
                f"budget: pairs='all' needs {total} segments ({a.size} x {b.size}) but budget is "
                f"{budget}; raise the budget or use pairs='random'"
            )
        ia, ib = np.meshgrid(a, b, indexing="ij")
        return np.stack([ia.ravel(), ib.ravel()], 1).astype(np.int64)
    if strategy is PairStrategy.RANDOM:
        flat = rng.choice(total, size=min(budget, total), replace=False)
        return np.stack([a[flat // b.size], b[flat % b.size]], 1).astype(np.int64)
    n_b = min(b.size, (budget + 1) // 2)
    n_a = min(a.size, budget - n_b) if budget > 1 else 0
    to_b = np.stack([np.full(n_b, -1), rng.choice(b, n_b, replace=False)], 1)
    from_a = np.stack([rng.choice(a, n_a, replace=False), np.full(n_a, -1)], 1)
    return np.concatenate([to_b, from_a]).astype(np.int64)


def global_folding(model: ModelLike, x: ArrayLike, y: ArrayLike, *, classes: tuple[int, int] = (1, 4), pairs: PairStrategy | str = PairStrategy.RANDOM,
                   budget: int = 1000, aggregator: Aggregator | str = Aggregator.MEDIAN_POSITIVE,
                   include_output: bool = True, n_points: int | None = None, seed: int = 0,
                   progress: bool = False, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> GlobalFolding:
    """chi on segments between inputs of `classes[0]` and `classes[1]` of (x, y), aggregated.

    Exact traversal unless `n_points` is given (the papers' grid, 11 points). Segments are walked
    in batches that fit `memory_budget` bytes (see `path_chi`), keeping only their chi, so memory
    does not grow with the budget of pairs.
    """
    strategy, agg = as_enum(pairs, PairStrategy, "pairs"), as_enum(aggregator, Aggregator, "aggregator")
    x = check_finite(as_float_tensor(x, "x"), "x")
    y_np = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y)
    if y_np.shape != (x.shape[0],):
        raise ValueError(f"y: expected one label per row of x, shape [{x.shape[0]}], got {list(y_np.shape)}")
    idx = draw_pairs(y_np, classes, pairs=strategy, budget=budget, seed=seed)
    means = {c: x[torch.as_tensor(y_np == c)].mean(0) for c in classes}
    ends = []
    for col, c in enumerate(classes):
        rows = torch.as_tensor(idx[:, col])
        end = x[rows.clamp(min=0)]
        end[rows < 0] = means[c]
        ends.append(end)
    x0, x1 = ends
    chi, lengths = path_chi(model, x0, x1, include_output=include_output, n_points=n_points, progress=progress,
                            memory_budget=memory_budget)
    exact = n_points is None and to_network(model).piecewise_linear  # bisection walks are not exact
    return GlobalFolding(
        aggregate_folding(chi, agg), chi, idx, lengths, tuple(classes), agg, strategy,
        exact, include_output,
    )
