"""Folding along straight segments x0 -> x1: exact by default, the papers' n-point grid on request.

Which bits: `include_output=True` by default, because the authors' code codes every layer including
the output unit(s) (bit = logit > 0), and so CantorNet's readout bit, which the authors pass through
a ReLU, is counted. Pass `include_output=False` for hidden units only.

Walks: exact traversal (the default) gives one pattern per region of positive length on the
segment, in order. Smooth activations (GELU, SiLU, Tanh, Sigmoid) have no regions to follow: their
walks come from `traverse_bisection` (pattern changes located to 1e-6 in t). `n_points=n` samples
the patterns at n equally spaced points t = 0, 1/(n-1), ..., 1 (11 in the authors' code) and skips
regions shorter than the grid step; a skipped region can hide a bit that flips and flips back, so
sampling usually under-reports folding. A degenerate segment (x0 == x1) is one point in one region: its walk has one pattern and chi = 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm.auto import tqdm

from .._checks import (
    DEFAULT_MEMORY_BUDGET, as_batch, as_float_tensor, as_single, check_int, check_memory_budget, rows_within_budget,
    same_device,
)
from ..network import Network, to_network
from ..results import Result
from ..patterns.walks import ragged_walk_extents
from ..traversal import traverse_batches, traverse_many
from ..traversal.bisection import traverse_bisection
from .measure import FoldingProfile, chi_of_extents, folding_measures, folding_profile

if TYPE_CHECKING:
    from .._types import ArrayLike
    from .._types import ModelLike

__all__ = [
    "PathFolding", "path_walks", "path_folding", "path_folding_many", "path_chi", "symmetric_folding",
    "symmetric_folding_many", "prepare_pair", "prepare_pairs",
]


@dataclass(frozen=True)
class PathFolding(Result):
    """Folding of one segment: chi, its walk, and where the walk's patterns sit on [0, 1].

    Exact walks: `t` holds the region boundaries (float64 [n + 1], t[0] = 0, t[-1] = 1) and region i
    is [t[i], t[i+1]]. Sampled walks: `t` holds the n sample positions.
    """

    chi: float
    walk: torch.Tensor  # bool [n, units]
    t: np.ndarray
    exact: bool
    include_output: bool
    tolerance: float | None = None  # bisection walks (smooth nets): boundaries within this, in t

    @property
    def n_patterns(self) -> int:
        return int(self.walk.shape[0])

    def profile(self) -> FoldingProfile:
        """r1, r2, the running chi curve and the Hamming distances to the start."""
        return folding_profile(self.walk)


BISECTION_TOL = 1e-6  # in t on [0, 1], for walks of smooth (non piecewise-linear) networks


def _pair_shapes(x0, x1):
    x0, x1 = as_float_tensor(x0, "x0"), as_float_tensor(x1, "x1")
    if x0.shape != x1.shape:
        raise ValueError(f"x0, x1: expected equal shapes, got {list(x0.shape)} and {list(x1.shape)}")
    same_device(x0=x0, x1=x1)
    return x0, x1


def _on_inputs(net: Network, x0: torch.Tensor, x1: torch.Tensor) -> tuple[Network, torch.Tensor, torch.Tensor]:
    if net.input_shape is None:
        net = net.with_input_shape(x0.shape[1:])
    if net.dtype != x0.dtype or net.device != x0.device:
        net = net.to(dtype=x0.dtype, device=x0.device)
    return net, x0, x1.to(x0.dtype)


def prepare_pair(model: ModelLike, x0: ArrayLike, x1: ArrayLike) -> tuple[Network, torch.Tensor, torch.Tensor]:
    """Network in the inputs' dtype and the one pair x0, x1 as batches of one [1, ...]."""
    x0, x1 = _pair_shapes(x0, x1)
    net = to_network(model)
    x0 = as_single(x0, "x0", net.input_shape, batch_function="path_folding_many")
    x1 = as_single(x1, "x1", net.input_shape, batch_function="path_folding_many")
    return _on_inputs(net, x0, x1)


def prepare_pairs(model: ModelLike, x0: ArrayLike, x1: ArrayLike) -> tuple[Network, torch.Tensor, torch.Tensor]:
    """Network in the inputs' dtype and the pairs x0[i], x1[i] as batches [B, ...]."""
    x0, x1 = _pair_shapes(x0, x1)
    net = to_network(model)
    return _on_inputs(net, as_batch(x0, "x0", net.input_shape), as_batch(x1, "x1", net.input_shape))


def _sampled(net: Network, x0, x1, n_points: int, include_output: bool) -> list[tuple[torch.Tensor, np.ndarray]]:
    t = np.linspace(0.0, 1.0, n_points)
    tt = torch.as_tensor(t, dtype=x0.dtype, device=x0.device).reshape((1, -1) + (1,) * (x0.dim() - 1))
    out = []
    per_chunk = max(1, (1 << 22) // max(1, n_points * x0[0].numel()))
    with torch.no_grad():
        for a, b in zip(x0.split(per_chunk), x1.split(per_chunk)):
            pts = a.unsqueeze(1) + tt * (b - a).unsqueeze(1)  # [chunk, n_points, ...]
            bits = net.bits(pts.reshape((-1,) + tuple(a.shape[1:])), include_output=include_output)
            out += [(w, t) for w in bits.reshape(a.shape[0], n_points, -1)]
    return out


def path_walks(model: ModelLike, x0: ArrayLike, x1: ArrayLike, *, include_output: bool = True, n_points: int | None = None,
               progress: bool = False, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> list[tuple[torch.Tensor, np.ndarray]]:
    """(walk, t) for each pair of the batches x0, x1 [B, ...] (see `PathFolding` for t).

    `memory_budget` (bytes) bounds the exact traversal's working memory (see `traverse_many`)."""
    net, x0, x1 = prepare_pairs(model, x0, x1)
    return _walks(net, x0, x1, include_output=include_output, n_points=n_points, progress=progress,
                  memory_budget=memory_budget)


def _walks(net, x0, x1, *, include_output, n_points, progress, memory_budget=DEFAULT_MEMORY_BUDGET):
    if n_points is not None:
        n_points = check_int(n_points, "n_points", minimum=2, what="or None for exact traversal")
        return _sampled(net, x0, x1, n_points, include_output)
    if not net.piecewise_linear:  # smooth activations: pattern changes by bisection, to 1e-6 in t
        travs = [traverse_bisection(net, a, b, tol=BISECTION_TOL, include_output=include_output) for a, b in zip(x0, x1)]
        return [(tr.patterns, tr.t.numpy()) for tr in travs]

    flat0, flat1 = x0.reshape(len(x0), -1), x1.reshape(len(x1), -1)
    same = (flat0 == flat1).all(dim=1)
    out: list = [None] * len(x0)
    if bool(same.any()):  # a point is one region: one pattern, chi = 0
        with torch.no_grad():
            bits = net.bits(x0[same], include_output=include_output)
        for i, w in zip(torch.nonzero(same).flatten().tolist(), bits):
            out[i] = (w.unsqueeze(0), np.array([0.0, 1.0]))
    todo = torch.nonzero(~same).flatten()
    if len(todo):
        travs = traverse_many(net, x0[todo], x1[todo], include_output=include_output, progress=progress,
                              memory_budget=memory_budget)
        for i, tr in zip(todo.tolist(), travs):
            out[i] = (tr.patterns, tr.t.detach().cpu().numpy().astype(np.float64))
    return out


def _path_foldings(net, x0, x1, include_output, n_points, progress, memory_budget=DEFAULT_MEMORY_BUDGET) -> list[PathFolding]:
    walks = _walks(net, x0, x1, include_output=include_output, n_points=n_points, progress=progress,
                   memory_budget=memory_budget)
    chis = folding_measures([w for w, _ in walks])
    # a bisection walk can step over a region shorter than its tolerance: never call it exact
    exact = n_points is None and net.piecewise_linear
    tol = BISECTION_TOL if n_points is None and not exact else None
    return [PathFolding(float(c), w, t, exact, include_output, tol) for c, (w, t) in zip(chis, walks)]


def path_folding(model: ModelLike, x0: ArrayLike, x1: ArrayLike, *, include_output: bool = True, n_points: int | None = None,
                 progress: bool = False, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> PathFolding:
    """Folding chi of the segment x0 -> x1 (one input each; a batch of one [1, ...] is accepted).

    `n_points=None` (default) walks every region exactly (ReLU/LeakyReLU/MaxPool nets; bisection
    for smooth ones); `n_points=11` reproduces the papers' sampling. Batches: `path_folding_many`.
    `memory_budget` (bytes) bounds the exact traversal's working memory (see `traverse_many`).
    """
    net, x0, x1 = prepare_pair(model, x0, x1)
    return _path_foldings(net, x0, x1, include_output, n_points, progress, memory_budget)[0]


def path_folding_many(model: ModelLike, x0: ArrayLike, x1: ArrayLike, *, include_output: bool = True, n_points: int | None = None,
                      progress: bool = False, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> list[PathFolding]:
    """`path_folding` of each pair x0[i] -> x1[i] of the batches x0, x1 [B, ...]: a list of B results."""
    net, x0, x1 = prepare_pairs(model, x0, x1)
    return _path_foldings(net, x0, x1, include_output, n_points, progress, memory_budget)


def path_chi(model: ModelLike, x0: ArrayLike, x1: ArrayLike, *, include_output: bool = True, n_points: int | None = None,
             progress: bool = False, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> tuple[np.ndarray, np.ndarray]:
    """chi (float64 [B]) and walk lengths (int64 [B]) of the pairs x0[i] -> x1[i], within `memory_budget` bytes.

    The memory-lean form of `path_folding` for many segments: exact walks are measured batch by
    batch straight from the traversal's flat arrays (no per-segment objects) and dropped, so
    memory does not grow with the number of pairs; sampled and bisection walks go in groups whose
    walks fit the budget.
    """
    net, x0, x1 = prepare_pairs(model, x0, x1)
    budget = check_memory_budget(memory_budget)
    if n_points is None and net.piecewise_linear:
        return _exact_chi(net, x0, x1, include_output, budget, progress)
    if n_points is not None:
        n_points = check_int(n_points, "n_points", minimum=2, what="or None for exact traversal")
    # one segment's walk (n_points or, for bisection, a guess of 64 patterns) and its sample inputs
    per_segment = (n_points or 64) * (net.n_units(include_output=include_output) + 8 * x0[0].numel())
    group = rows_within_budget(per_segment, budget, what="sampled segment", total=len(x0))
    chis, lengths = [], []
    bar = tqdm(total=len(x0), desc="folding", unit="path", disable=not progress)
    for a, b in zip(x0.split(group), x1.split(group)):
        walks = [w for w, _ in _walks(net, a, b, include_output=include_output, n_points=n_points, progress=False,
                                      memory_budget=budget)]
        chis.append(folding_measures(walks))
        lengths.append(np.array([w.shape[0] for w in walks], dtype=np.int64))
        bar.update(len(a))
    bar.close()
    return np.concatenate(chis), np.concatenate(lengths)


def _exact_chi(net, x0, x1, include_output, budget, progress) -> tuple[np.ndarray, np.ndarray]:
    chis, lengths = [], []
    for batch in traverse_batches(net, x0, x1, include_output=include_output, memory_budget=budget, progress=progress):
        n = batch.n_pieces
        chis.append(chi_of_extents(ragged_walk_extents(batch.patterns, n)))
        lengths.append(n.numpy().astype(np.int64))
    if not chis:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    return np.concatenate(chis), np.concatenate(lengths)


def _symmetric(net, x0, x1, include_output, n_points) -> np.ndarray:
    walks = [w for w, _ in _walks(net, x0, x1, include_output=include_output, n_points=n_points, progress=False)]
    return (folding_measures(walks) + folding_measures([w.flip(0) for w in walks])) / 2


def symmetric_folding(model: ModelLike, x0: ArrayLike, x1: ArrayLike, *, include_output: bool = True, n_points: int | None = None) -> float:
    """d_chi(x0, x1) = (chi(x0 -> x1) + chi(x1 -> x0)) / 2 of one pair (batches: `symmetric_folding_many`).

    The reverse path meets the same regions (or grid points) in reverse order, so chi(x1 -> x0) is
    chi of the reversed walk; chi itself is not symmetric.
    """
    net, x0, x1 = prepare_pair(model, x0, x1)
    return float(_symmetric(net, x0, x1, include_output, n_points)[0])


def symmetric_folding_many(model: ModelLike, x0: ArrayLike, x1: ArrayLike, *, include_output: bool = True, n_points: int | None = None) -> np.ndarray:
    """float64 [B]: `symmetric_folding` of each pair x0[i], x1[i] of the batches x0, x1 [B, ...]."""
    net, x0, x1 = prepare_pairs(model, x0, x1)
    return _symmetric(net, x0, x1, include_output, n_points)
