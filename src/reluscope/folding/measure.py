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

import numpy as np
import torch

__all__ = [
    "FoldingProfile",
    "as_walk",
    "folding_measure",
    "folding_profile",
    "folding_measures",
    "interaction_effect",
]


def as_walk(walk, name: str = "walk") -> torch.Tensor:
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


@dataclass(frozen=True)
class FoldingProfile:
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


# Hamming distances on bit-packed rows: packing 8 bits to a byte and counting set bits of the XOR
# is ~30x faster than summing bool tensors, which matters once walks have hundreds of patterns.
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _packed(walk: torch.Tensor) -> np.ndarray:
    return np.packbits(walk.detach().cpu().numpy(), axis=1)


def _row_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """int64 d_H(a[i], b[i]) for packed rows (b may broadcast)."""
    x = np.bitwise_xor(a, b)
    counts = np.bitwise_count(x) if hasattr(np, "bitwise_count") else _POPCOUNT[x]
    return counts.sum(axis=1, dtype=np.int64)


def folding_profile(walk) -> FoldingProfile:
    """r1, r2, chi, the running chi curve and the Hamming distances to the start of `walk`."""
    packed = _packed(as_walk(walk))
    to_start = _row_distances(packed, packed[:1])
    steps = _row_distances(packed[1:], packed[:-1])
    r1_run = np.maximum.accumulate(to_start)
    r2_run = np.concatenate([[0], np.cumsum(steps)])
    running = np.where(r2_run > 0, 1.0 - r1_run / np.maximum(r2_run, 1), 0.0)
    r1, r2 = int(r1_run[-1]), int(r2_run[-1])
    return FoldingProfile(r1, r2, _chi(r1, r2), running, to_start, steps)


def folding_measure(walk) -> float:
    """chi = 1 - r1 / r2 of a walk (bool [n, units]); 0 when r2 = 0 (one region, one pattern)."""
    packed = _packed(as_walk(walk))
    return _chi(int(_row_distances(packed, packed[:1]).max()), int(_row_distances(packed[1:], packed[:-1]).sum()))


def folding_measures(walks: Sequence) -> np.ndarray:
    """chi of many walks at once (float64 [len(walks)]), in one vectorised pass.

    Concatenates the walks, so it costs a handful of array operations in total instead of a
    handful per walk: the per-walk overhead would otherwise dominate global measures over 10^4 paths.
    """
    walks = [as_walk(w, f"walks[{i}]") for i, w in enumerate(walks)]
    if not walks:
        return np.zeros(0)
    units = {int(w.shape[1]) for w in walks}
    if len(units) > 1:
        raise ValueError(f"walks: every walk must have the same number of units, got {sorted(units)}")
    lengths = np.array([w.shape[0] for w in walks])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    packed = np.packbits(np.concatenate([w.detach().cpu().numpy() for w in walks]), axis=1)
    owner_start = np.repeat(starts, lengths)
    r1 = np.maximum.reduceat(_row_distances(packed, packed[owner_start]), starts)
    steps = np.concatenate([[0], _row_distances(packed[1:], packed[:-1])])
    steps[starts] = 0  # the step into a walk's first pattern comes from the previous walk
    r2 = np.add.reduceat(steps, starts)
    return np.where(r2 > 0, 1.0 - r1 / np.maximum(r2, 1), 0.0)


def interaction_effect(walk, k: int | None = None):
    """I(k) = chi(Gamma) - chi(pi_1..pi_k) - chi(pi_k..pi_n), k counted from 1 as in the paper.

    Gamma_1 + Gamma_2 repeats pi_k, which does not change chi, so the first term is chi(Gamma).
    With `k=None`, returns I(k) for every k = 1..n as float64 [n].
    """
    walk = as_walk(walk)
    n = walk.shape[0]
    if k is None:
        return np.array([interaction_effect(walk, j) for j in range(1, n + 1)])
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k: expected an int split index, got {type(k).__name__}")
    if not 1 <= k <= n:
        raise ValueError(f"k: expected a split index in 1..{n} (walk of {n} patterns), got {k}")
    return folding_measure(walk) - folding_measure(walk[:k]) - folding_measure(walk[k - 1:])
