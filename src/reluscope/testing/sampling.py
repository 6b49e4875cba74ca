"""Slow references for activation patterns and segment traversal (used by tests only).

`module_patterns` computes patterns by running the user's own torch module with forward hooks on
its activation modules, an independent path from `Network.bits` (no conversion, no folding of
BatchNorm, torch's own layers). `sample_segment` evaluates it at many points of a segment, and
`check_traversal` is the invariant checker: every sampled pattern must be the pattern of the piece
that contains the sample, so dense sampling never finds a region the traversal missed.
"""

from __future__ import annotations

import copy
from enum import Enum
from typing import TYPE_CHECKING

import torch
import torch.nn as nn

from .._checks import as_enum

if TYPE_CHECKING:
    from .._types import ArrayLike, ModelLike
    from ..traversal import Traversal

__all__ = ["module_patterns", "function_patterns", "sample_segment", "check_traversal", "maxpool_argmax_bits",
           "PatternKey"]

_ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid)


def maxpool_argmax_bits(pool: nn.MaxPool2d, x: torch.Tensor) -> torch.Tensor:
    """One-hot argmax of every window, first maximum in row-major order wins, from explicit
    strided slices (not unfold): bool [B, C * L * K] in the order (channel, window, window element)."""
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
    (kh, kw), (ph, pw), (dh, dw) = pair(pool.kernel_size), pair(pool.padding), pair(pool.dilation)
    sh, sw = pair(pool.stride if pool.stride is not None else pool.kernel_size)
    x = torch.nn.functional.pad(x, (pw, pw, ph, ph), value=float("-inf"))
    ho = (x.shape[2] - dh * (kh - 1) - 1) // sh + 1
    wo = (x.shape[3] - dw * (kw - 1) - 1) // sw + 1
    elems = [
        x[:, :, i * dh : i * dh + sh * (ho - 1) + 1 : sh, j * dw : j * dw + sw * (wo - 1) + 1 : sw]
        for i in range(kh)
        for j in range(kw)
    ]
    stacked = torch.stack(elems, dim=2)  # [B, C, K, Ho, Wo]
    best = stacked[:, :, :1]
    first = torch.zeros_like(best, dtype=torch.long)
    for k in range(1, stacked.shape[2]):  # strict > keeps the first maximum on ties
        better = stacked[:, :, k : k + 1] > best
        best = torch.where(better, stacked[:, :, k : k + 1], best)
        first = torch.where(better, k, first)
    onehot = torch.arange(stacked.shape[2], device=x.device).reshape(1, 1, -1, 1, 1) == first
    return onehot.permute(0, 1, 3, 4, 2).reshape(x.shape[0], -1)


def module_patterns(model: nn.Module, x: torch.Tensor, *, include_output: bool = False, zero_tol: float | None = None):
    """bool [N, units] by running `model` (in float64, on a copy) with forward hooks.

    Every ReLU/LeakyReLU/GELU/SiLU/Tanh/Sigmoid module contributes bit = input > 0, every
    MaxPool2d its one-hot argmax, in the order the modules run. Activations called as functions
    (F.relu) are invisible to hooks, so models in tests use modules. Hooks are removed in `finally`.
    With `zero_tol`, also returns a mask of the elementwise bits whose input is within zero_tol of 0
    (a unit that vanishes identically by cancellation has its sign decided by rounding).
    """
    model = copy.deepcopy(model).to(torch.float64).eval()
    x = x.to(torch.float64)
    parts: list[torch.Tensor] = []
    near: list[torch.Tensor] = []

    def hook(module, inputs, output):
        z = inputs[0]
        if isinstance(module, nn.MaxPool2d):
            parts.append(maxpool_argmax_bits(module, z))
            near.append(torch.zeros_like(parts[-1]))
        else:
            parts.append(z.reshape(z.shape[0], -1) > 0)
            near.append(z.reshape(z.shape[0], -1).abs() <= (zero_tol or 0.0))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (*_ELEMENTWISE, nn.MaxPool2d))]
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for handle in handles:
            handle.remove()
    if include_output:
        parts.append(out.reshape(out.shape[0], -1) > 0)
        near.append(out.reshape(out.shape[0], -1).abs() <= (zero_tol or 0.0))
    if not parts:
        parts = near = [torch.zeros(x.shape[0], 0, dtype=torch.bool)]
    bits = torch.cat(parts, dim=1)
    return bits if zero_tol is None else (bits, torch.cat(near, dim=1))


def function_patterns(model: nn.Module, x: torch.Tensor, *, include_output: bool = False) -> torch.Tensor:
    """bool [N, units]: the region key of each input, read from the user's own forward in float64.

    Independent of `Network` and of torch.fx: a TorchFunctionMode sees every relu / leaky_relu /
    prelu / relu6 / hardtanh / clamp / max_pool2d / maximum call as it runs (modules, F.* functions
    and tensor methods alike, BatchNorm unfolded), and records the sign of every activation input
    (for relu6, hardtanh and clamp, z > min then z > max; for maximum(a, b) and minimum, a > b)
    and the argmax of every window, in the order the calls run; then the output signs if asked.
    """
    from torch.overrides import TorchFunctionMode

    parts: list[torch.Tensor] = []

    class Record(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            name = getattr(func, "__name__", "")
            if name in ("relu", "relu_", "leaky_relu", "leaky_relu_", "prelu"):
                z = args[0]
                parts.append(z.reshape(z.shape[0], -1) > 0)
            elif name in ("relu6", "hardtanh", "hardtanh_", "clamp", "clip", "clamp_", "clip_", "clamp_min", "clamp_min_",
                          "clamp_max", "clamp_max_"):
                # a bit per bound and unit: z > min_val, then z > max_val (a clamp may have one)
                z = args[0].reshape(args[0].shape[0], -1)
                keys, defaults = (("min", "max"), (None, None)) if name.startswith("cl") else (("min_val", "max_val"), (-1.0, 1.0))
                if name.startswith(("clamp_min", "clamp_max")):  # one bound, the second argument
                    keys, defaults = (("min",), (None,)) if "min" in name else (("max",), (None,))
                bounds = (0.0, 6.0) if name == "relu6" else tuple(
                    kwargs.get(k, args[i + 1] if len(args) > i + 1 else defaults[i]) for i, k in enumerate(keys)
                )
                parts.extend(z > bound for bound in bounds if bound is not None)
            elif name in ("maximum", "minimum", "fmax", "fmin") or (name in ("max", "min") and len(args) == 2
                                                                   and isinstance(args[1], torch.Tensor)):
                z = (args[0] > args[1]).expand(torch.broadcast_shapes(args[0].shape, args[1].shape))  # bit: a > b
                parts.append(z.reshape(z.shape[0], -1))
            elif name == "max_pool2d":
                names = ["kernel_size", "stride", "padding", "dilation"]
                opts = dict(zip(names, args[1:5]), **{k: v for k, v in kwargs.items() if k in names})
                parts.append(maxpool_argmax_bits(nn.MaxPool2d(**opts), args[0]))
            elif name == "max_pool1d":  # windows along the last dim: a 2-D pool of height 1
                names = ["kernel_size", "stride", "padding", "dilation"]
                opts = dict(zip(names, args[1:5]), **{k: v for k, v in kwargs.items() if k in names})
                one = lambda v, d: (d, v[0] if isinstance(v, (tuple, list)) else v)  # noqa: E731
                if opts.get("stride") in (None, [], ()):
                    opts["stride"] = opts["kernel_size"]
                pool = nn.MaxPool2d(**{k: one(v, 0 if k == "padding" else 1) for k, v in opts.items()})
                parts.append(maxpool_argmax_bits(pool, args[0].unsqueeze(2)))
            return func(*args, **kwargs)

    model = copy.deepcopy(model).to(torch.float64).eval()
    with torch.no_grad(), Record():
        out = model(x.to(torch.float64))
    if include_output:
        parts.append(out.reshape(out.shape[0], -1) > 0)
    return torch.cat(parts, dim=1) if parts else torch.zeros(x.shape[0], 0, dtype=torch.bool)


class PatternKey(str, Enum):
    """How `sample_segment` and `check_traversal` read a torch module's patterns.

    HOOKS (default): forward hooks on the ReLU / max-pool modules (`module_patterns`), independent
    of the library's graph tracer and so the stricter reference for nets built of modules.
    FUNCTIONS: every relu / max_pool2d call, F.relu in a custom forward included
    (`function_patterns`), for graphs and functional forwards that hooks do not see."""

    HOOKS = "hooks"
    FUNCTIONS = "functions"


def sample_segment(model: ModelLike, x0: ArrayLike, x1: ArrayLike, *, n: int = 20_000, include_output: bool = False,
                   batch_size: int = 4096, t: ArrayLike | None = None, zero_tol: float | None = None,
                   key: PatternKey | str = PatternKey.HOOKS):
    """(t float64 [n], patterns bool [n, units]) at n equally spaced points of x0 -> x1 (or at `t`).

    `x0`, `x1`: one input each, without batch dimension. `model` is a torch module (hook path,
    independent of `Network`; key="functions" reads `function_patterns` instead, which also sees
    F.relu and friends in a graph's forward) or a `Network` (its `bits`). With `zero_tol` (modules
    and hooks only), returns (t, patterns, near_zero) as in `module_patterns`.
    """
    key = as_enum(key, PatternKey, "key")
    x0 = torch.as_tensor(x0, dtype=torch.float64).unsqueeze(0)
    x1 = torch.as_tensor(x1, dtype=torch.float64).unsqueeze(0)
    t = torch.linspace(0, 1, n, dtype=torch.float64) if t is None else torch.as_tensor(t, dtype=torch.float64)
    out, near = [], []
    for tc in t.split(batch_size):
        x = x0 + tc.reshape((-1,) + (1,) * (x0.dim() - 1)) * (x1 - x0)
        if zero_tol is not None:
            bits, close = module_patterns(model, x, include_output=include_output, zero_tol=zero_tol)
            out.append(bits)
            near.append(close)
        elif isinstance(model, nn.Module) and key is PatternKey.FUNCTIONS:
            out.append(function_patterns(model, x, include_output=include_output))
        elif isinstance(model, nn.Module):
            out.append(module_patterns(model, x, include_output=include_output))
        else:
            out.append(model.to(dtype=torch.float64).bits(x, include_output=include_output))
    return (t, torch.cat(out)) if zero_tol is None else (t, torch.cat(out), torch.cat(near))


def check_traversal(traversal: Traversal, model: ModelLike, x0: ArrayLike, x1: ArrayLike, *, n: int = 20_000,
                    include_output: bool = False, margin: float = 1e-9, zero_tol: float | None = None,
                    key: PatternKey | str = PatternKey.HOOKS) -> None:
    """Raise AssertionError unless `traversal` is consistent with dense sampling of the segment.

    Checks: t starts at 0, ends at 1, strictly increases; patterns have one row per piece and
    consecutive rows differ; every one of n samples (plus every piece midpoint) farther than
    `margin` from a breakpoint has exactly the pattern of the piece containing it. With `zero_tol`,
    bits whose sampled pre-activation is within zero_tol of 0 are not compared (units that vanish
    identically by cancellation, whose sign is decided by float64 rounding). `key`: as in
    `sample_segment` ("functions" for graphs and functional forwards).
    """
    t, pats = traversal.t.cpu(), traversal.patterns.cpu()
    if t.dtype != torch.float64 or t[0] != 0 or t[-1] != 1 or not bool((t[1:] > t[:-1]).all()):
        raise AssertionError(f"t must be float64, start at 0, end at 1 and increase strictly, got {t}")
    if pats.dtype != torch.bool or pats.shape[0] != t.shape[0] - 1:
        raise AssertionError(f"patterns: expected bool [{t.shape[0] - 1}, units], got {pats.dtype} {list(pats.shape)}")
    if pats.shape[0] > 1 and bool((pats[1:] == pats[:-1]).all(dim=1).any()):
        raise AssertionError("two consecutive pieces have the same pattern")
    grid = torch.linspace(0, 1, n, dtype=torch.float64)
    ts = torch.cat([grid, (t[1:] + t[:-1]) / 2])
    near = (ts[:, None] - t[None, :]).abs().min(dim=1).values <= margin
    ts = ts[~near]
    if zero_tol is None:
        ts, sampled = sample_segment(model, x0, x1, include_output=include_output, t=ts, key=key)
        uncertain = torch.zeros_like(sampled)
    else:
        ts, sampled, uncertain = sample_segment(model, x0, x1, include_output=include_output, t=ts, zero_tol=zero_tol)
    piece = (torch.searchsorted(t, ts, right=True) - 1).clamp(0, pats.shape[0] - 1)
    if sampled.shape[1] != pats.shape[1]:
        raise AssertionError(f"sampled patterns have {sampled.shape[1]} units, traversal {pats.shape[1]}")
    wrong = ((sampled != pats[piece]) & ~uncertain).any(dim=1)
    if bool(wrong.any()):
        i = int(wrong.nonzero()[0])
        raise AssertionError(
            f"{int(wrong.sum())} of {ts.shape[0]} samples disagree with their piece; first at t={float(ts[i])!r} "
            f"in piece {int(piece[i])} ({float(t[piece[i]])!r}, {float(t[piece[i] + 1])!r}): "
            f"{int((sampled[i] != pats[piece[i]]).sum())} bits differ"
        )
