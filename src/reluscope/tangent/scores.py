"""Rank-one scores <g_{l,k}(x), theta_l>: forward-mode products that never build a gradient.

For a parameter block theta_l (one parameter tensor), <d f_k(x) / d theta_l, theta_l> is the
directional derivative of f_k(x) along theta restricted to block l: a JVP. The "full" and
"block" metrics (docs/methods.md, tangent similarity) are inner products of these scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

import torch
import torch.autograd.forward_ad as fwAD
from torch.func import functional_call, jvp, vmap

from .._checks import as_enum, out_of_memory
from ..network import layers as L
from ..network import to_network
from .features import (
    DEFAULT_MEMORY_BUDGET,
    Normalization,
    _Params,
    check_inputs,
    chunk_size,
    chunks,
    iter_features,
    output_size,
    per_sample_gradients,
    trainable_parameters,
)

if TYPE_CHECKING:
    from .._types import ArrayLike
    from .features import ColumnScaling
    import torch.nn as nn

__all__ = ["ScoreMethod", "tangent_scores", "GradientStatistics", "gradient_statistics", "scores_from_gradients"]


class ScoreMethod(str, Enum):
    """How the per-block JVPs are computed.

    - ``LAYERWISE``: one forward pass through reluscope's `Network` carrying a stack of tangent
      streams; the stream of a layer's weight starts at that layer as W h (= z - b) and the stream
      of its bias as b, so each costs only the layers after it. Needs a chain of Linear / Conv2d
      layers (plus ReLU, LeakyReLU, MaxPool2d, AvgPool2d, Flatten) whose parameters are exactly
      the model's trainable tensors.
    - ``FUNC_JVP``: torch.func.jvp once per block with the tangent equal to theta on that block
      and zero elsewhere; works for any model, but every block pays for a whole forward pass.
    - ``AUTO`` (default) picks LAYERWISE when the model qualifies (several times faster on CNNs,
      where the expensive early convolutions are crossed by few streams), else FUNC_JVP.
    """

    AUTO = "auto"
    LAYERWISE = "layerwise"
    FUNC_JVP = "func_jvp"


# ----------------------------------------------------------------------------- layerwise streams

_STREAM_ACTIVATIONS = (L.LeakyReLU, L.MaxPool2d)


def _layerwise_plan(model, params: _Params):
    """(network, {layer index: [(param index, 'weight'|'bias')]}) or None if not applicable."""
    try:
        net = to_network(model)
    except (TypeError, ValueError):
        return None
    if not net.is_chain:  # the streamed form walks a chain; graphs take the generic torch.func path
        return None
    by_name = {n: i for i, n in enumerate(params.names)}
    plan, used = {}, set()
    for li, layer in enumerate(net.layers):
        if isinstance(layer, L.AbstractActivation):
            if not isinstance(layer, _STREAM_ACTIVATIONS):
                return None
            continue
        if isinstance(layer, (L.Linear, L.Conv2d)):
            for kind in ("weight", "bias"):
                pi = by_name.get(f"{layer.name}.{kind}")
                if pi is None:
                    continue
                # folded batch norm changes the tensors: then the model's parameters are not these
                if params.tensors[pi].shape != getattr(layer, kind).shape or not torch.equal(
                    params.tensors[pi].detach(), getattr(layer, kind)
                ):
                    return None
                plan.setdefault(li, []).append((pi, kind))
                used.add(pi)
    if len(used) != len(params.names):
        return None
    return net.to(dtype=params.dtype), plan


def _stream_activation(layer, z: torch.Tensor, streams: torch.Tensor, s: int):
    """Apply an activation's JVP to s stacked streams [s * n, ...] computing the pattern once."""
    n = z.shape[0]
    if isinstance(layer, L.LeakyReLU):
        out, slope = layer.jvp(z, torch.ones_like(z))
        return out, (streams.reshape(s, *z.shape) * slope).reshape(s * n, *z.shape[1:])
    out, index = layer.pool(z)
    return out, layer.take(streams, index.repeat(s, 1, 1, 1))


def _layerwise_scores(net, plan, n_blocks: int, x: torch.Tensor) -> torch.Tensor:
    n = x.shape[0]
    h, streams, owners = x, None, []
    for li, layer in enumerate(net.layers):
        if isinstance(layer, L.AbstractActivation):
            if streams is not None:
                h, streams = _stream_activation(layer, h, streams, len(owners))
            else:
                h = layer.forward(h)
            continue
        if streams is not None:
            streams = layer.linear(streams)
        if li in plan:
            lin = layer.linear(h)
            offset = layer.forward(torch.zeros_like(h[:1]))  # the bias map b, broadcast by the layer
            h = lin + offset
            new = []
            for pi, kind in plan[li]:
                new.append(lin if kind == "weight" else offset.expand_as(lin))
                owners.append(pi)
            stacked = torch.cat(new, dim=0)
            streams = stacked if streams is None else torch.cat([streams, stacked], dim=0)
        else:
            h = layer.forward(h)
    k = h[0].numel()
    out = torch.zeros(n, n_blocks, k, dtype=x.dtype, device=x.device)
    per_stream = streams.reshape(len(owners), n, k)
    for s, pi in enumerate(owners):
        out[:, pi] += per_stream[s]
    return out


# ----------------------------------------------------------------------------- torch.func jvp


_JVP_GROUP = 8  # blocks whose tangents share one primal pass (vmap over tangents): memory x 8


def _func_jvp_scores(model, params: _Params, x: torch.Tensor, per_block: bool) -> torch.Tensor:
    theta = params.as_dict()

    def f(p):
        return functional_call(model, p, (x,)).reshape(x.shape[0], -1)

    if not per_block:
        return jvp(f, (theta,), (theta,))[1].unsqueeze(1)
    cols, grouped = [], True
    for start in range(0, len(params.names), _JVP_GROUP):
        group = params.names[start:start + _JVP_GROUP]
        if grouped:
            try:
                cols.append(_group_scores(f, theta, group))
                continue
            except RuntimeError as err:  # an op without a vmap rule: one forward-AD pass per block from now on
                if out_of_memory(err):  # not a missing rule: the slow path would not help
                    raise
                grouped = False
        cols.append(torch.stack([_block_scores(f, theta, name) for name in group], dim=1))
    return torch.cat(cols, dim=1)


def _group_scores(f, theta: dict, group: list[str]) -> torch.Tensor:
    """[n, len(group), K]: vmap over the group's tangents (theta_l on its own block, zero on the rest
    of the group), so the primal runs once per group and only the group's tensors carry tangents.

    Against torch.func.jvp once per block with zero tangents everywhere else (the previous code),
    which reran the primal and every layer's tangent for each of 62 blocks: 6x faster on a
    resnet18-style net (bench/tangent_resnet.py, docstring of `tangent_similarity`)."""
    primals = {n: theta[n] for n in group}
    tangents = {
        n: torch.stack([theta[n] if i == j else torch.zeros_like(theta[n]) for j in range(len(group))])
        for i, n in enumerate(group)
    }

    def along(t):
        return jvp(lambda p: f({**theta, **p}), (primals,), (t,))[1]

    return vmap(along)(tangents).transpose(0, 1)


def _block_scores(f, theta: dict, name: str) -> torch.Tensor:
    """[n, K]: forward AD with only `name`'s tensor dual (nothing computed upstream of its layer)."""
    with fwAD.dual_level():
        p = dict(theta)
        p[name] = fwAD.make_dual(theta[name], theta[name])
        out = f(p)
        tangent = fwAD.unpack_dual(out).tangent
    return torch.zeros_like(out) if tangent is None else tangent


def tangent_scores(
    model: nn.Module,
    x: ArrayLike,
    *,
    per_block: bool = True,
    method: ScoreMethod | str = "auto",
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: bool = False,
) -> torch.Tensor:
    """s[n, l, k] = <d f_k(x_n) / d theta_l, theta_l> for every trainable tensor theta_l: [N, B, K].

    With `per_block=False` the blocks are summed (B = 1): <g_k(x), theta>. Raw gradients, no
    normalisation (see `tangent_similarity` for the normalised forms). No gradient is built.
    """
    params = trainable_parameters(model)
    x = check_inputs(params, x, "x", model=model)
    method = as_enum(method, ScoreMethod, "method")
    plan = None
    if method is not ScoreMethod.FUNC_JVP:
        plan = _layerwise_plan(model, params)
        if plan is None and method is ScoreMethod.LAYERWISE:
            raise TypeError(
                "method='layerwise' needs a chain of Linear/Conv2d layers with ReLU, LeakyReLU or "
                "MaxPool2d activations whose weights and biases are the model's trainable "
                "parameters (no batch norm); use method='func_jvp' for this model"
            )
    # every layer's output of one input, once per tangent stream (plus the primal and a spare)
    with torch.no_grad():
        if plan is not None:
            numel = sum(z.numel() for _, z in plan[0].trace(x[:1]))
        else:
            numel = x[0].numel() * 64  # unknown architecture: assume 64 channels of input size
    streams = len(params.names) if plan is not None else min(len(params.names), _JVP_GROUP)
    act_bytes = numel * params.dtype.itemsize * (streams + 2)
    size = chunk_size(act_bytes, x.shape[0], memory_budget)
    parts = []
    with torch.no_grad():
        for rows in chunks(x.shape[0], size, progress=progress, desc="tangent scores"):
            if plan is not None:
                s = _layerwise_scores(*plan, len(params.names), x[rows])
                parts.append(s if per_block else s.sum(dim=1, keepdim=True))
            else:
                parts.append(_func_jvp_scores(model, params, x[rows], per_block))
    return torch.cat(parts, dim=0)


# ----------------------------------------------------------------------------- normalisation


@dataclass(frozen=True)
class GradientStatistics:
    """Per input and output, over all P coordinates of its gradient: `min`, `max` and L2 `norm`,
    each [N, K] (K = 1 for the summed outputs), on the model's device."""

    min: torch.Tensor
    max: torch.Tensor
    norm: torch.Tensor


def gradient_statistics(
    model: nn.Module, params: _Params, x: torch.Tensor, *, per_output: bool, memory_budget: int, progress: bool = False
) -> GradientStatistics:
    """min, max and L2 norm of each input's gradient over all P coordinates: [N, K] (K = 1 summed).

    The one place the rank-one metrics touch per-sample gradients: exact min-max normalisation
    needs the extremes of g, which no forward-mode product gives. Chunked, never stored whole."""
    k = output_size(model, params, x) if per_output else 1
    size = chunk_size(params.total * k * params.dtype.itemsize * 3, x.shape[0], memory_budget)
    lo, hi, norm = [], [], []
    with torch.no_grad():
        for rows in chunks(x.shape[0], size, progress=progress, desc="gradient min/max"):
            g = per_sample_gradients(model, params, x[rows], per_output=per_output)
            g = g.reshape(g.shape[0], k, -1)
            lo.append(g.amin(-1))
            hi.append(g.amax(-1))
            norm.append(g.norm(dim=-1))
    return GradientStatistics(torch.cat(lo), torch.cat(hi), torch.cat(norm))


def normalize_scores(
    s: torch.Tensor, stats: GradientStatistics, block_sums: torch.Tensor, mode: Normalization
) -> torch.Tensor:
    """Scores of the normalised gradient from those of the raw one, block by block.

    min-max: <(g - m) / (M - m), theta_l> = (<g, theta_l> - m sum(theta_l)) / (M - m);
    l2: <g / |g|, theta_l> = <g, theta_l> / |g|. A constant (or zero) gradient maps to 0."""
    if mode is Normalization.NONE:
        return s
    if mode not in (Normalization.PER_INPUT_MINMAX, Normalization.L2):
        raise ValueError(f"normalize: {mode.value} has no closed form from the scores; use scores_from_gradients")
    if mode is Normalization.PER_INPUT_MINMAX:
        lo, span = stats.min, stats.max - stats.min
        num = s - lo[:, None, :] * block_sums[None, :, None]
        den = span[:, None, :]
    else:
        num, den = s, stats.norm[:, None, :]
    return torch.where(den > 0, num / torch.where(den > 0, den, 1), torch.zeros_like(num))


def scores_from_gradients(
    model: nn.Module, params: _Params, x: torch.Tensor, *, per_output: bool, mode: Normalization, columns: ColumnScaling | None,
    memory_budget: int, progress: bool = False,
) -> torch.Tensor:
    """s[n, l, k] = <normalised g_k(x_n) restricted to block l, theta_l> from explicit gradients.

    For the normalisations that scale coordinates one by one (per-parameter min-max, value
    scaling), which no forward-mode product gives; chunked to the memory budget."""

    theta = params.flat()
    owner = torch.repeat_interleave(torch.arange(len(params.sizes), device=theta.device),
                                    torch.tensor(params.sizes, device=theta.device))
    out = []
    for _, g in iter_features(model, params, x, per_output=per_output, normalize=mode,
                              memory_budget=memory_budget, progress=progress, columns=columns):
        g = g.reshape(g.shape[0], -1, params.total) * theta  # [n, K, P]
        s = torch.zeros(g.shape[0], g.shape[1], len(params.sizes), dtype=g.dtype, device=g.device)
        s.index_add_(2, owner, g)
        out.append(s.transpose(1, 2))  # [n, B, K]
    return torch.cat(out, dim=0)
