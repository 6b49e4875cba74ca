"""Exact traversal of straight segments through a piecewise-linear network.

Along gamma(t) = x0 + t (x1 - x0) every pre-activation is piecewise affine in t. We refine a list
of intervals layer by layer, for all intervals of all segments at once: inside an interval the
pattern of every earlier layer is fixed, so the layer input is h(t) = h(t_mid) + (t - t_mid) dh,
carried as the pair (h(t_mid), dh). An affine layer maps the pair (forward, linear); an activation
layer first splits each interval at the zeros of its units (ReLU, LeakyReLU, output signs) or at
the points where a window element overtakes the current argmax (MaxPool2d, repeated until no piece
contains a crossing), then applies its jvp on each piece. Finally adjacent pieces with equal
patterns are merged: regions are convex, so such pieces lie in one region (a unit touching zero
without crossing, a max-pool tie that did not change the argmax).

Numerics (float64 throughout): a root closer than `TOLERANCE` (in t, segments have length 1) to an
end of its interval is ignored and roots closer than `TOLERANCE` to each other are one breakpoint,
so pieces shorter than 1e-12 are not resolved (their sliver is absorbed by a neighbour). Several
units crossing at one t give one breakpoint; a segment starting or ending on a boundary gets the
pattern of the open piece next to the end; units identically zero along a piece keep bit 0 and
never split it; x0 == x1 gives t = [0, 1] and the pattern at x0. One limit of float64: a unit
whose pre-activation vanishes on a whole piece only through cancellation (e.g. (x - 1) - (x + 1) + 2
in a hand-built net) is computed as 0 or +-1e-16, so its bit follows rounding, exactly as
`Network.bits` at that point would; random or trained weights never do this.

This module holds the entry points and the batching of segments; the internals live in
`_pieces` (intervals, pattern bits, splitting, merging), `_maxpool` (MaxPool2d's splitting and
bits) and `_refine` (the plan over the graph's nodes and the depth-first refinement, `_descend`).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm

from .._checks import (
    DEFAULT_MEMORY_BUDGET, MemoryBudgetError, as_float_tensor, as_single, check_batch, check_int, check_memory_budget,
    out_of_memory, rows_within_budget, same_device,
)
from ..network import Network, to_network
from ..network.network import INPUT
from ..network.layers import AbstractActivation, LeakyReLU, MaxPool2d

if TYPE_CHECKING:
    from .._types import ArrayLike
    from .._types import ModelLike
from .precision import Precision, PrecisionWarning, analysed_dtype, as_precision, decision_tolerance, dtype_name, t_tolerance
from .results import TOLERANCE, Traversal, Traversals
from ._pieces import _Bits, _join_leaves, _Pieces
from ._front import front_segments
from ._refine import _bytes_per_piece, _descend, _plan, _Walk

__all__ = ["Traversal", "Traversals", "traverse", "traverse_many", "traverse_batches", "traverse_pairs", "TOLERANCE"]
_WHAT = "exact traversal (for smooth activations use reluscope.traverse_bisection)"


def _traverse_chunk(net: Network, x0: torch.Tensor, x1: torch.Tensor, include_output: bool,
                    memory_budget: int = DEFAULT_MEMORY_BUDGET, bar=None, tolerance: float = TOLERANCE,
                    checked: bool = False) -> Traversals:
    """Traverse a batch of segments; pieces are refined in chunks of at most memory_budget
    bytes of working memory (`_descend`). The result stays flat (`Traversals`). `checked`:
    proposed in float32, checked in float64 (`checked.py`)."""
    if checked:
        from .checked import traverse_checked_float32
        return traverse_checked_float32(net, x0, x1, include_output, memory_budget, tolerance)
    s = x0.shape[0]
    dx = x1 - x0
    per_piece = _bytes_per_piece(net, x0[:1], include_output)
    walk = _Walk(t_tolerance(x0.dtype, tolerance), decision_tolerance(x0.dtype),
                 max(2, memory_budget // per_piece), [], bar, memory_budget)
    ones = torch.ones(s, dtype=torch.float64, device=x0.device)  # t stays float64 in any dtype
    p = _Pieces(torch.arange(s, device=x0.device), 0 * ones, ones, {INPUT: (x0 + 0.5 * dx, dx)}, _Bits(),
                torch.zeros(s, dtype=torch.bool, device=x0.device))
    plan = _plan(net, include_output)
    for step in plan:
        if isinstance(step.layer, AbstractActivation) and not isinstance(step.layer, (LeakyReLU, MaxPool2d)):
            net.require_piecewise_linear(_WHAT)
    if bar is not None:
        bar.reset(total=len(plan))
    front = front_segments(net, plan, x0, x1, walk.tol, walk.dtol, memory_budget, include_output)
    if front is None:
        _descend(plan, 0, p, walk)
    else:  # convolutional chains: the first layers unit by unit (`_front`), the rest dense, chunk by chunk
        whole, seen, done = walk.max_pieces, set(), 0.0
        if bar is not None:
            bar.reset(total=len(plan) * s)  # steps of the plan, per segment
        for s0, chunk, max_pieces, share, redo in front:
            walk.max_pieces = max_pieces or whole  # the rest of the plan holds less per piece
            done_before, segment = len(walk.leaves), int(chunk.seg[0])
            _descend(plan, s0, chunk, walk, top=False)
            del chunk  # its values, before a redo's
            if redo is not None and any(bool(leaf[4].any()) for leaf in walk.leaves[done_before:]):
                del walk.leaves[done_before:]  # within rounding after the front: the dense engine decides (`_front._chunks`)
                for part, walk.max_pieces in redo():
                    _descend(plan, 0, part, walk, top=False)
            if bar is not None:  # the front's steps once per segment, the rest by the chunk's share of its pieces
                done += (s0 if segment not in seen else 0) + (len(plan) - s0) * share
                seen.add(segment)
                bar.update(round(done) - bar.n)
        walk.max_pieces = whole
    seg, ta, tb, patterns, uncertain = _join_leaves(walk.leaves)
    return Traversals.from_pieces(seg, ta, tb, patterns, uncertain, s, dtype_name(x0.dtype), walk.tol)


def _warn_uncertain(bad: int, total: int, dtype: str, what: str) -> None:
    """One PrecisionWarning for the `bad` of `total` segments with a piece decided within rounding."""
    if bad:
        why = ("in float64 this happens on slivers where an endpoint sits on a region boundary (zero "
               "pixels make ties after a ReLU or max-pool) or with hand-built weights that cancel "
               "exactly" if dtype == "float64"
               else f"expected in {dtype}, whose rounding is coarse")
        warnings.warn(
            f"{what}: on {bad} of {total} segment(s) some unit stayed within rounding of "
            f"zero (or a max-pool window within rounding of a tie) over a whole piece, so its bit "
            f"follows rounding, not exact arithmetic (Traversal.uncertain marks those pieces); {why}",
            PrecisionWarning,
            stacklevel=3,
        )


# ---------------------------------------------------------------- public entry points


def _prepare(model, x0, x1, *, batched: bool, dtype=Precision.FLOAT64, what: str = "traverse"):
    x0, x1 = as_float_tensor(x0, "x0"), as_float_tensor(x1, "x1")
    same_device(x0=x0, x1=x1)
    net = to_network(model)
    if batched:
        if x0.dim() < 2 or x1.dim() < 2 or x0.shape[1:] != x1.shape[1:]:
            raise ValueError(
                f"x1: expected a batch [B, ...] of inputs shaped like those of x0 {list(x0.shape)}, "
                f"got {list(x1.shape)}"
            )
    else:
        if x0.shape != x1.shape:
            raise ValueError(f"x1: expected the shape of x0 {list(x0.shape)}, got {list(x1.shape)}")
        x0 = as_single(x0, "x0", net.input_shape, batch_function="traverse_many")
        x1 = as_single(x1, "x1", net.input_shape, batch_function="traverse_many")
    if net.input_shape is None:
        net = net.with_input_shape(x0.shape[1:])
    check_batch(x0, "x0", net.input_shape)
    check_batch(x1, "x1", net.input_shape)
    net.require_piecewise_linear(_WHAT)
    work = analysed_dtype(net.dtype, as_precision(dtype), what)
    net = net.to(dtype=work, device=x0.device)
    x0, x1 = x0.to(work), x1.to(device=x0.device, dtype=work)
    # x1 - x0 and the layers' values along the path must stay finite in float64: endpoints of
    # 1e308 once gave one piece because x1 - x0 overflowed. Refuse instead of answering wrongly.
    big = max(float(x0.abs().max()), float(x1.abs().max())) if x0.numel() else 0.0
    if big > _INPUT_LIMIT:
        raise ValueError(
            f"x0, x1: entries up to {big:.3g} are beyond what exact traversal resolves in float64 "
            f"(|x| <= {_INPUT_LIMIT:.0e}); rescale the inputs (and the first layer's weights)"
        )
    return net, x0, x1


def _checked(dtype) -> bool:
    return as_precision(dtype) is Precision.CHECKED_FLOAT32


_INPUT_LIMIT = 1e100  # leaves ~200 orders of magnitude for weights and depth before overflow


def _check_tolerance(tolerance) -> float:
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 < tolerance < 0.5:
        raise ValueError(f"tolerance: expected a resolution in t with 0 < tolerance < 0.5 (segments have length 1), "
                         f"got {tolerance!r}")
    return float(tolerance)


def traverse(model: ModelLike, x0: ArrayLike, x1: ArrayLike, *, include_output: bool = False, progress: bool = False,
             dtype: Precision | str = Precision.FLOAT64, memory_budget: int = DEFAULT_MEMORY_BUDGET,
             tolerance: float = TOLERANCE) -> Traversal:
    """Every linear region met along the segment from `x0` to `x1`, in order, exactly (float64).

    `model`: a torch.nn.Module of the supported layers or a `Network` (a chain or a graph with
    residual additions, concatenations and the like), with ReLU, LeakyReLU and MaxPool2d
    activations only (smooth ones raise TypeError: use `traverse_bisection`).
    `x0`, `x1`: one input each, shaped like the network input (a leading batch dimension of 1 is
    accepted). With `include_output`, sign changes of the output units split pieces too and their
    bits are appended to the patterns. Runs on x0's device. See the module docstring for ties.
    `tolerance`: the resolution in t (segments have length 1; default `TOLERANCE` = 1e-12): roots
    closer than this to a piece's end or to each other are one breakpoint, so shorter pieces are
    not resolved. `progress` shows a bar over the network's layers (for deep nets).
    `dtype`: "float64" (default) analyses the float64 copy of the
    model (a PrecisionWarning says so for float16/bfloat16 models); "model" analyses it in its own
    dtype, resolving t only to a few ulps of that dtype (`Traversal.tolerance`); "float32-checked"
    traverses in float32 and checks every piece in float64, traversing again in float64 where a
    check fails: the float64 answer (same pieces and patterns, breakpoints within `tolerance`). Pieces whose bit
    was decided within rounding are marked in `Traversal.uncertain`, with a PrecisionWarning.
    `memory_budget` (bytes) bounds the working memory: pieces are refined depth first in chunks
    that fit (the result itself, its patterns packed eight bits to a byte, is not counted).
    """
    memory_budget = check_memory_budget(memory_budget)
    tolerance = _check_tolerance(tolerance)
    net, x0, x1 = _prepare(model, x0, x1, batched=False, dtype=dtype, what="traverse")
    with torch.no_grad():
        rows_within_budget(_bytes_per_piece(net, x0[:1], include_output), memory_budget, what="piece of a segment")
    with torch.no_grad(), tqdm(disable=not progress, desc="traverse", unit="layer") as bar:
        out = _traverse_chunk(net, x0, x1, include_output, memory_budget, bar, tolerance, _checked(dtype))
    _warn_uncertain(int(out.n_uncertain[0] > 0), 1, out.dtype, "traverse")
    return out[0]


def traverse_many(
    model: ModelLike,
    x0: ArrayLike,
    x1: ArrayLike,
    *,
    include_output: bool = False,
    pairs: str = "given",
    progress: bool = False,
    batch_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    dtype: Precision | str = Precision.FLOAT64,
    tolerance: float = TOLERANCE,
) -> Traversals:
    """`traverse` for many segments at once, batched over segments and pieces.

    `x0` [A, ...], `x1` [B, ...]. pairs="given" (A == B) traverses x0[i] -> x1[i] and returns A
    results; pairs="all" traverses every x0[a] -> x1[b] and returns A * B results, index a * B + b.
    The result is a `Traversals`: flat arrays with per-segment offsets, a sequence whose items
    (`len`, `[i]`, iteration) are the per-segment `Traversal`s, built only when read.
    Segments are refined together in batches sized to stay within `memory_budget` bytes (on a
    GPU also within its free memory), from the most pieces per segment seen so far (an estimate:
    the first batch is one segment and a batch at most doubles the previous one); `batch_size`
    caps the batch (default: no cap). A batch that still runs out of memory is halved and
    retried; a single segment that does not fit raises MemoryBudgetError. Within a batch, pieces
    are refined depth first in chunks that fit the budget. `dtype`, `tolerance`: as for `traverse`.
    """
    net, x0, x1, options = _stream_options(model, x0, x1, pairs, batch_size, memory_budget, dtype, tolerance, "traverse_many")
    parts = list(_stream(net, x0, x1, include_output=include_output, progress=progress, **options))
    if not parts:
        empty = torch.zeros(0, dtype=torch.float64, device=x0.device)
        return Traversals(empty, torch.zeros(0, 0, dtype=torch.bool, device=x0.device), torch.zeros(1, dtype=torch.int64),
                          dtype_name(x0.dtype), t_tolerance(x0.dtype, tolerance), torch.zeros(0, dtype=torch.bool))
    out = Traversals.concat(parts)
    _warn_uncertain(int((out.n_uncertain > 0).sum()), len(out), out.dtype, "traverse_many")
    return out


def traverse_batches(model: ModelLike, x0: ArrayLike, x1: ArrayLike, *, include_output: bool = False, pairs: str = "given",
                     progress: bool = False, batch_size: int | None = None, memory_budget: int = DEFAULT_MEMORY_BUDGET,
                     dtype: Precision | str = Precision.FLOAT64, tolerance: float = TOLERANCE) -> Iterator[Traversals]:
    """`traverse_many` batch by batch: yields the `Traversals` of consecutive batches of segments,
    in order, so a caller that keeps only a summary per segment (as `path_chi` keeps chi) never
    holds more than one batch. Same arguments and batching; the inputs are checked at the call,
    and one PrecisionWarning for uncertain pieces follows the last batch."""
    net, x0, x1, options = _stream_options(model, x0, x1, pairs, batch_size, memory_budget, dtype, tolerance,
                                           "traverse_batches")

    def batches() -> Iterator[Traversals]:
        bad, total = 0, 0
        for part in _stream(net, x0, x1, include_output=include_output, progress=progress, **options):
            bad, total = bad + int((part.n_uncertain > 0).sum()), total + len(part)
            yield part
        _warn_uncertain(bad, total, dtype_name(x0.dtype), "traverse_batches")

    return batches()


def _stream_options(model, x0, x1, pairs, batch_size, memory_budget, dtype, tolerance, what: str):
    """traverse_many's and traverse_batches' checks: (net, x0, x1, the options of `_stream`)."""
    if pairs not in ("given", "all"):
        raise ValueError(f"pairs: expected 'given' or 'all', got {pairs!r}")
    batch_size = None if batch_size is None else check_int(batch_size, "batch_size", what="or None")
    budget = check_memory_budget(memory_budget)
    tolerance = _check_tolerance(tolerance)
    net, x0, x1 = _prepare(model, x0, x1, batched=True, dtype=dtype, what=what)
    a, b = x0.shape[0], x1.shape[0]
    if pairs == "given" and a != b:
        raise ValueError(f"x1: pairs = 'given' needs as many rows as x0 ({a}), got {b}; use pairs='all' for every pair")
    return net, x0, x1, dict(pairs=pairs, batch_size=batch_size, memory_budget=budget, tolerance=tolerance,
                             checked=_checked(dtype))


def _free_bytes(device: torch.device, budget: int) -> int:
    """The budget, capped by the free memory of a CUDA device (the batch must fit there too)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return min(budget, int(0.8 * free))  # leave room for the allocator's fragmentation
    return budget


def _stream(net: Network, x0: torch.Tensor, x1: torch.Tensor, *, include_output: bool, pairs: str = "given",
            batch_size: int | None = None, memory_budget: int = DEFAULT_MEMORY_BUDGET, tolerance: float = TOLERANCE,
            progress: bool = False, checked: bool = False):
    """Yield `Traversals` of consecutive batches of segments (x0, x1 prepared by `_prepare`), so a
    caller that only needs a summary per segment (chi) never holds more than one batch."""
    b = x1.shape[0]
    total = x0.shape[0] if pairs == "given" else x0.shape[0] * b
    with torch.no_grad():
        per_piece = _bytes_per_piece(net, x0[:1], include_output) if total else 1
    rows_within_budget(per_piece, memory_budget, what="piece of a segment")  # refuses if not even one fits
    pieces, size, start = 1, 1, 0
    with torch.no_grad(), tqdm(total=total, disable=not progress, desc="traverse", unit="seg") as bar:
        while start < total:
            idx = torch.arange(start, min(total, start + size), device=x0.device)
            ia, ib = (idx, idx) if pairs == "given" else (idx // b, idx % b)
            try:
                chunk = _traverse_chunk(net, x0.index_select(0, ia), x1.index_select(0, ib), include_output,
                                        memory_budget, None, tolerance, checked)
            except (MemoryError, RuntimeError) as err:  # the estimate was too low: halve the batch
                if not out_of_memory(err):
                    raise
                if size == 1:
                    raise MemoryBudgetError(
                        f"traverse_many: segment {start} alone needs more memory than is available "
                        f"(about {per_piece} bytes per piece, at least {pieces} pieces seen per segment, "
                        f"memory_budget={memory_budget}); traverse shorter segments or a smaller network"
                    ) from None
                size = max(1, size // 2)
                continue
            yield chunk
            start += idx.shape[0]
            bar.update(idx.shape[0])
            pieces = max(pieces, int(chunk.n_pieces.max()))
            # the estimate per piece is ~1.4x what a 784-1024-1024-10 net used (26 KB measured);
            # unseen segments may have more pieces than any so far, so the batch at most doubles
            fit = _free_bytes(x0.device, memory_budget) // (per_piece * pieces)
            size = max(1, min(2 * idx.shape[0], fit, batch_size or fit))


def traverse_pairs(model: ModelLike, x0: ArrayLike, x1: ArrayLike, **options: object) -> Traversals:
    """Every segment x0[a] -> x1[b]: `traverse_many(..., pairs="all")`, index a * B + b (same
    options, `tolerance` included)."""
    return traverse_many(model, x0, x1, pairs="all", **options)
