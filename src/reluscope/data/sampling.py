"""Class-balanced subsets: the experiments and report sections all draw them the same way."""

from __future__ import annotations

import torch

__all__ = ["sample_per_class"]


def sample_per_class(y: torch.Tensor, k: int, *, generator: torch.Generator) -> torch.Tensor:
    """long [<= k * classes]: up to `k` random indices of each label in `y`, grouped by label."""
    groups = [torch.nonzero(y == c).reshape(-1) for c in torch.unique(y)]
    return torch.cat([g[torch.randperm(g.numel(), generator=generator)[:k]] for g in groups])
