"""Walks: the sequence of activation patterns met along a path, and its Hamming geometry.

A walk is a bool tensor [n, units] (one pattern per region crossed, in order). Every statistic of a
walk that other modules report (distance of each pattern to the start, length of each step, and per
walk the farthest distance r1, the total length r2 and the end distance) is computed here, once,
on bit-packed rows: packing 8 bits to a byte and counting the set bits of the XOR is ~30x faster
than summing bool tensors, which matters once walks have hundreds of patterns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..results import Result

if TYPE_CHECKING:
    from .._types import ArrayLike

__all__ = ["as_walk", "WalkDistances", "walk_distances", "WalkExtents", "walk_extents", "ragged_walk_extents"]

_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def as_walk(walk: ArrayLike, name: str = "walk") -> torch.Tensor:
    """Check a walk and return it as a bool tensor [n, units].

    Accepts a bool tensor/array [n, units] or a sequence of 1-D bool patterns of equal length.
    Non-boolean input is refused rather than thresholded: 0/1 floats could be pre-activations.
    """
    if isinstance(walk, (list, tuple)):
        if len(walk) == 0:
            raise ValueError(f"{name}: expected at least one pattern, got an empty sequence")
        parts = []
        for i, p in enumerate(walk):
            p = torch.from_numpy(np.asarray(p)) if not isinstance(p, torch.Tensor) else p
            if p.dtype != torch.bool or p.dim() != 1:
                raise TypeError(
                    f"{name}[{i}]: expected a 1-D bool pattern, got dtype {p.dtype} and shape {list(p.shape)}"
                )
            parts.append(p)
        lengths = [int(p.shape[0]) for p in parts]
        if len(set(lengths)) > 1:
            raise ValueError(f"{name}: every pattern must have the same number of units, got lengths {lengths}")
        return torch.stack(parts)
    if isinstance(walk, np.ndarray):
        walk = torch.from_numpy(np.ascontiguousarray(walk))
    if not isinstance(walk, torch.Tensor):
        raise TypeError(f"{name}: expected a bool tensor [n, units] or a list of patterns, got {type(walk).__name__}")
    if walk.dtype != torch.bool:
        raise TypeError(
            f"{name}: expected a bool tensor of activation patterns, got dtype {walk.dtype}; "
            "threshold pre-activations yourself (z > 0) or use reluscope.activation_patterns"
        )
    if walk.dim() != 2:
        raise ValueError(f"{name}: expected shape [n, units], got {list(walk.shape)}")
    if walk.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one pattern, got an empty walk {list(walk.shape)}")
    return walk


def _packed(walk: torch.Tensor) -> np.ndarray:
    return np.packbits(walk.detach().cpu().numpy(), axis=1)


def _row_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """int64 d_H(a[i], b[i]) for packed rows (b may broadcast)."""
    x = np.bitwise_xor(a, b)
    counts = np.bitwise_count(x) if hasattr(np, "bitwise_count") else _POPCOUNT[x]
    return counts.sum(axis=1, dtype=np.int64)


@dataclass(frozen=True)
class WalkDistances(Result):
    """Hamming distances along one walk of n patterns.

    `to_start[i]` = d_H(pi_1, pi_{i+1}) (int64 [n], to_start[0] = 0); `steps[i]` = d_H(pi_{i+1},
    pi_{i+2}) (int64 [n - 1]), the bits flipped crossing from one region to the next.
    """

    to_start: np.ndarray
    steps: np.ndarray

    @property
    def end(self) -> int:
        """d_H(pi_1, pi_n): how far the walk ends from where it started."""
        return int(self.to_start[-1])

    @property
    def farthest(self) -> int:
        """max_i d_H(pi_1, pi_i) (r1 of the folding measure)."""
        return int(self.to_start.max())

    @property
    def length(self) -> int:
        """Total bits flipped along the walk (r2 of the folding measure)."""
        return int(self.steps.sum())


def walk_distances(walk: ArrayLike) -> WalkDistances:
    """Distance of each pattern of `walk` (bool [n, units]) to the first, and each step's length."""
    packed = _packed(as_walk(walk))
    return WalkDistances(_row_distances(packed, packed[:1]), _row_distances(packed[1:], packed[:-1]))


@dataclass(frozen=True)
class WalkExtents(Result):
    """Per walk of a set of k walks (int64 [k] each): `end` = d_H(first, last), `farthest` = max
    distance to the first pattern (r1), `length` = total bits flipped (r2). length > end means some
    bits flip back on the way: the walk is not a shortest path in the hypercube."""

    end: np.ndarray
    farthest: np.ndarray
    length: np.ndarray


def walk_extents(walks: Sequence) -> WalkExtents:
    """`WalkExtents` of many walks at once, in one vectorised pass over their concatenation.

    The per-walk overhead of a loop would otherwise dominate global measures over 10^4 paths.
    """
    walks = [as_walk(w, f"walks[{i}]") for i, w in enumerate(walks)]
    if not walks:
        empty = np.zeros(0, dtype=np.int64)
        return WalkExtents(empty, empty, empty)
    units = {int(w.shape[1]) for w in walks}
    if len(units) > 1:
        raise ValueError(f"walks: every walk must have the same number of units, got {sorted(units)}")
    lengths = np.array([w.shape[0] for w in walks])
    return ragged_walk_extents(np.concatenate([w.detach().cpu().numpy() for w in walks]), lengths)


def ragged_walk_extents(patterns: ArrayLike, lengths: ArrayLike) -> WalkExtents:
    """`WalkExtents` of walks stored one after the other: rows of `patterns` (bool [P, units]),
    walk i being the next lengths[i] >= 1 rows (a batched traversal's layout, `Traversals`)."""
    if isinstance(patterns, torch.Tensor):
        patterns = patterns.detach().cpu().numpy()
    lengths = np.asarray(lengths.cpu() if isinstance(lengths, torch.Tensor) else lengths, dtype=np.int64)
    if patterns.dtype != np.bool_ or patterns.ndim != 2 or lengths.ndim != 1:
        raise ValueError(f"patterns, lengths: expected bool [P, units] and int [k], got {patterns.dtype} "
                         f"{list(patterns.shape)} and {list(lengths.shape)}")
    if lengths.size and (lengths.min() < 1 or lengths.sum() != patterns.shape[0]):
        raise ValueError(f"lengths: expected walks of at least one pattern summing to {patterns.shape[0]} rows")
    if lengths.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return WalkExtents(empty, empty, empty)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    packed = np.packbits(patterns, axis=1)
    to_start = _row_distances(packed, packed[np.repeat(starts, lengths)])
    steps = np.concatenate([[0], _row_distances(packed[1:], packed[:-1])])
    steps[starts] = 0  # the step into a walk's first pattern comes from the previous walk
    ends = starts + lengths - 1
    return WalkExtents(to_start[ends], np.maximum.reduceat(to_start, starts), np.add.reduceat(steps, starts))
