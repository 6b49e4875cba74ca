"""Slow, paper-literal references for the folding measure, used only by tests.

`chi_reference` loops over the walk in plain Python exactly as the definition reads;
`sampled_walk` evaluates patterns on an n-point grid with `Network.bits` alone, never touching
the traversal code; `dedupe_walk` drops consecutive repeats so sampled and exact walks compare.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from ..network import to_network

if TYPE_CHECKING:
    from .._types import ArrayLike, ModelLike

__all__ = ["chi_reference", "sampled_walk", "dedupe_walk", "hamming_reference"]


def hamming_reference(p: Sequence, q: Sequence) -> int:
    """The number of places where p and q differ, by counting (no tensor arithmetic)."""
    return sum(1 for a, b in zip(p, q) if a != b)


def chi_reference(walk: Sequence[Sequence]) -> float:
    """chi = 1 - r1/r2 with r1 = max_i d_H(pi_1, pi_i), r2 = sum_i d_H(pi_i, pi_{i+1}); 0 if r2 = 0."""
    pats = [[bool(b) for b in row] for row in walk]
    r1 = max(hamming_reference(pats[0], p) for p in pats)
    r2 = sum(hamming_reference(pats[i], pats[i + 1]) for i in range(len(pats) - 1))
    return 0.0 if r2 == 0 else 1.0 - r1 / r2


def sampled_walk(model: ModelLike, x0: ArrayLike, x1: ArrayLike, n_points: int, *, include_output: bool = False) -> torch.Tensor:
    """bool [n_points, units]: patterns at t = i / (n_points - 1), straight from `Network.bits`."""
    net = to_network(model)
    x0 = torch.as_tensor(x0)
    x1 = torch.as_tensor(x1).to(x0.dtype)
    net = net.to(dtype=x0.dtype)
    t = torch.arange(n_points, dtype=x0.dtype) / (n_points - 1)
    t = t.reshape((-1,) + (1,) * x0.dim())
    with torch.no_grad():
        return net.bits((1 - t) * x0.unsqueeze(0) + t * x1.unsqueeze(0), include_output=include_output)


def dedupe_walk(walk: torch.Tensor) -> torch.Tensor:
    """The walk with consecutive repeated patterns dropped (chi is unchanged by them)."""
    keep = torch.ones(walk.shape[0], dtype=torch.bool)
    keep[1:] = (walk[1:] != walk[:-1]).any(dim=1)
    return walk[keep]
