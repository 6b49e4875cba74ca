"""Similarity functions from tangent representations (Racz & Daroczy 2021; docs/methods.md).

Every metric returns K [N, M] for inputs x [N, ...] and y [M, ...] (y = x by default). With
`per_output=True` the per-output gradients g_k are used and the similarity sums over outputs k;
with `per_output=False` the gradient of the summed outputs g = sum_k g_k (the authors' code).

What `normalize` (a `Normalization`, "none" by default) means, per metric:
- euclidean, sparse: each input's gradient (per output k in the per-output form) is normalised
  (see `Normalization`), then (sparse) masked, then inner products are taken.
- full, block: the same normalised gradient enters <g_l(x), theta_l>. Per-input min-max and L2
  are computed exactly from the forward-mode scores plus the per-input min / max / norm of g (one
  chunked per-sample gradient pass); per-parameter min-max and value scaling from the explicit
  normalised gradients, chunked. "none" is pure forward mode.
- hidden: the hidden features h(x) are normalised over units the same way (value scaling has no
  meaning there and is refused).
Per-parameter min-max takes its per-coordinate extremes over the columns `y` (x when y is None).
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

import torch
import torch.nn as nn

from .._checks import as_enum
from ..network.named import activations
from .features import (
    DEFAULT_MEMORY_BUDGET,
    ColumnScaling,
    Normalization,
    check_inputs,
    column_scaling,
    iter_features,
    normalize_rows,
    output_size,
    trainable_parameters,
)
from .scores import gradient_statistics, normalize_scores, scores_from_gradients, tangent_scores
from .sparse import DEFAULT_THRESHOLD, SignAgreementMask, check_labels, sign_agreement_mask

if TYPE_CHECKING:
    from .._types import ArrayLike
    from .scores import ScoreMethod

__all__ = ["Metric", "tangent_similarity", "hidden_features"]


class Metric(str, Enum):
    """The similarity functions of Racz & Daroczy (docs/methods.md).

    - ``EUCLIDEAN``: <g(x), g(y)>, the plain inner product (empirical tangent kernel).
    - ``FULL``: rank-one metric G = theta theta^T: <g(x), theta><g(y), theta>.
    - ``BLOCK`` (default): one rank-one block per parameter tensor,
      sum_l <g_l(x), theta_l><g_l(y), theta_l>; as cheap as FULL (forward mode, no gradient
      matrix) but keeps the layers apart, and the paper's headline similarity.
    - ``SPARSE``: <m * g(x), m * g(y)> with the sign-agreement mask m from labelled data
      (`sign_agreement_mask`), i.e. the Euclidean metric restricted to the kept coordinates.
    - ``HIDDEN``: the baseline <h(x), h(y)> on a hidden layer's features.
    """

    EUCLIDEAN = "euclidean"
    FULL = "full"
    BLOCK = "block"
    SPARSE = "sparse"
    HIDDEN = "hidden"


# ----------------------------------------------------------------------------- hidden features


def _default_hidden_module(model: nn.Module) -> tuple[str, nn.Module, bool]:
    """The last nn.Linear; its *input* is the penultimate representation."""
    last = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last = (name, module)
    if last is None:
        raise ValueError(
            "hidden_layer: the model has no nn.Linear to take the penultimate features from; "
            "name a submodule whose output to use, e.g. hidden_layer='features'"
        )
    return last[0], last[1], True


def _last_linear_run(model: nn.Module, x) -> str:
    """The name of the last nn.Linear that forward runs (a Linear defined but never called, or
    defined out of order, must not be picked)."""
    _default_hidden_module(model)  # raises a clear error when there is no Linear at all
    order: list[str] = []
    handles = [
        m.register_forward_pre_hook(lambda mod, inputs, name=name: order.append(name))
        for name, m in model.named_modules() if isinstance(m, nn.Linear)
    ]
    try:
        with torch.no_grad():
            model(torch.as_tensor(x)[:1])
    finally:
        for h in handles:
            h.remove()
    if not order:
        raise ValueError("hidden_layer: forward runs no nn.Linear; name the layer, e.g. hidden_layer='features'")
    return order[-1]


def hidden_features(model: nn.Module, x: ArrayLike, *, hidden_layer: str | None = None) -> torch.Tensor:
    """[N, D]: the activations at `hidden_layer`, or by default the input of the last nn.Linear
    (the penultimate features).

    Names are those of `reluscope.network.named.activations`: "<module>" or "<module> output",
    "<module> input", or a node of the traced graph (e.g. a functional "relu"). Captured as a
    clone when the module runs, so an in-place ReLU after it cannot overwrite it.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if hidden_layer is None:
        hidden_layer = f"{_last_linear_run(model, x)} input"
    try:
        h = activations(model, x, layer=hidden_layer).value
    except (TypeError, ValueError) as err:
        raise type(err)(str(err).replace("layer:", "hidden_layer:", 1)) from err
    return h.reshape(h.shape[0], -1)


# ----------------------------------------------------------------------------- gram of features


def _feature_gram(model, params, x, y, *, per_output, mode, index, memory_budget, progress, columns=None):
    """sum over chunks of F(x) F(y)^T.

    When y's features fit half the budget they are computed once and kept. Otherwise the per-output
    form is split by output (K(x, y) = sum_k <g_k(x), g_k(y)>, every normalisation acts per output),
    so a tile holds K times more inputs, and rows are taken in tiles that fill half the budget while
    the columns stream through the other half. The columns are then recomputed once per tile:
    about N M / R gradient passes for tiles of R rows (N (N + 1) / 2R when y is x)."""
    def feats(z, budget, output=None, prog=False):
        for rows, g in iter_features(
            model, params, z, per_output=per_output, normalize=mode, memory_budget=budget,
            progress=prog, index=index, columns=columns, output=output,
        ):
            yield rows, g.reshape(g.shape[0], -1)

    half = memory_budget // 2
    k = output_size(model, params, x) if per_output else 1
    coords = params.total if index is None else index.numel()
    itemsize = params.dtype.itemsize
    out = torch.zeros(x.shape[0], y.shape[0], dtype=params.dtype, device=params.device)
    symmetric = y is x
    if y.shape[0] * coords * k * itemsize <= half:  # y whole, all outputs together
        cached = list(feats(y, half))
        for rows, fx in feats(x, half, prog=progress):
            for cols, fy in cached:
                out[rows, cols] = fx @ fy.T
        return out
    outputs = range(k) if per_output and k > 1 else [None]
    tile = max(1, half // (coords * itemsize * (1 if outputs[0] is not None else k)))
    steps = [(o, start) for o in outputs for start in range(0, x.shape[0], tile)]
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="tangent similarity tiles", leave=False)
    for o, start in steps:
        rows = slice(start, min(x.shape[0], start + tile))
        fx = torch.cat([f for _, f in feats(x[rows], half, o)])
        if symmetric:  # K = K^T: the diagonal block from the tile itself, then the columns after it
            block = fx @ fx.T
            out[rows, rows] += block
            tail = y[rows.stop:]
            offset = rows.stop
        else:
            tail, offset = y, 0
        for cols, fy in feats(tail, half, o):
            cols = slice(cols.start + offset, cols.stop + offset)
            block = fx @ fy.T
            out[rows, cols] += block
            if symmetric:
                out[cols, rows] += block.T
    return out


# ----------------------------------------------------------------------------- the entry point


def tangent_similarity(
    model: nn.Module,
    x: ArrayLike,
    y: ArrayLike | None = None,
    *,
    metric: Metric | str = "block",
    per_output: bool = True,
    normalize: Normalization | str = "none",
    mask: SignAgreementMask | None = None,
    labels: ArrayLike | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    hidden_layer: str | None = None,
    method: ScoreMethod | str = "auto",
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: bool = False,
) -> torch.Tensor:
    """Similarity matrix K [N, M] between inputs x [N, ...] and y [M, ...] (y = x if None).

    `metric` is a `Metric` or its name. For "sparse", pass a precomputed `mask`
    (`sign_agreement_mask`) or the `labels` of x, from which the mask is computed with
    `threshold`. `hidden_layer` picks the baseline's features (see `hidden_features`). `method`
    picks how rank-one scores are computed (`ScoreMethod`). See the module doc for `normalize`.

    Cost, for P trainable parameters in B tensors, K outputs (1 with `per_output=False`), N x M
    inputs and F = one forward pass of one input (the per-sample work; chunks are sized to
    `memory_budget`, which bounds the memory of every metric):

    - "block", "full" (forward mode, no gradient is built): a chain of Linear/Conv2d layers
      (`ScoreMethod.LAYERWISE`) costs one pass with up to B + 1 tangent streams, each from its own
      layer on: at most (B + 1) F per input. Any other model (graphs such as ResNets, batch norm)
      runs groups of 8 tensors per primal pass, their tangents from the group's first layer on:
      about (B / 8 + B / 2) F per input when the tensors spread evenly through the depth
      (the previous code, one torch.func.jvp per tensor with zero tangents elsewhere, paid about
      3 B F). Memory: the activations of a chunk times the streams held (B + 2, or 10).
      "per_input_minmax" and "l2" add one per-sample gradient pass (K backward passes per input);
      "per_parameter_minmax" and "value_scaling" need explicit gradients, as below.
    - "euclidean", "sparse": per-sample gradients, K backward passes per input, and N M K P
      multiply-adds. When y's gradients (M K P values) fit half of `memory_budget` they are
      computed once; otherwise per output, in row tiles of R = memory_budget / (2 P itemsize)
      inputs, the columns recomputed once per tile: about K (N + N M / R) single-output backward
      passes. The gradients themselves are the cost: 447 MB per input on resnet18 (float32).
    - "hidden": one forward pass per input.

    Measured (bench/tangent_resnet.py: resnet18-style `TinyResNet(BasicBlock, (2, 2, 2, 2),
    width=64, num_classes=10)`, 11.2M parameters in 62 tensors, N = M = 8 inputs of 3 x 16 x 16,
    float32, 2 threads on a shared 2-core machine at load 10-16, memory_budget 512 MiB):
    "block" 82 s, 36 forward passes of the 8 inputs (B / 8 + B / 2 = 39 predicted), against 415 s
    for the previous code in the same run (5.0x, equal to 1e-7); "euclidean" 498 s against 468 s
    for the previous code (no gain at 512 MiB: its N (N + 1) / 2 = 36 jacobians cost as much as
    the 100 single-output gradients of 2 tiles per output now). At the default 2 GiB one tile per
    output holds all 8 inputs: 91 s against 464 s for the previous code in the same run (5.1x,
    equal to 2e-4 relative in float32; peak RSS 2.2 GB).
    """
    metric = as_enum(metric, Metric, "metric")
    mode = Normalization.parse(normalize)
    params = trainable_parameters(model)
    x = check_inputs(params, x, "x", model=model)
    y = x if y is None else check_inputs(params, y, "y", model=model)
    same = y is x

    if metric is Metric.HIDDEN:
        if mode is Normalization.VALUE_SCALING:
            raise ValueError("normalize: 'value_scaling' scales gradient coordinates by parameters; "
                             "hidden features have none, use 'none', 'l2', 'per_input_minmax' or 'per_parameter_minmax'")
        hx = hidden_features(model, x, hidden_layer=hidden_layer)
        hy = hx if same else hidden_features(model, y, hidden_layer=hidden_layer)
        cols = None
        if mode is Normalization.PER_PARAMETER_MINMAX:
            cols = ColumnScaling(hy.amin(0, keepdim=True), hy.amax(0, keepdim=True) - hy.amin(0, keepdim=True))
        hx = normalize_rows(hx, mode, cols)
        hy = hx if same else normalize_rows(hy, mode, cols)
        return hx @ hy.T

    columns = column_scaling(model, params, y, mode, per_output=per_output, memory_budget=memory_budget,
                             progress=progress)

    if metric in (Metric.FULL, Metric.BLOCK):
        def scores(z):
            if mode in (Normalization.PER_PARAMETER_MINMAX, Normalization.VALUE_SCALING):
                s = scores_from_gradients(model, params, z, per_output=per_output, mode=mode, columns=columns,
                                          memory_budget=memory_budget, progress=progress)
                return s.sum(dim=1, keepdim=True) if metric is Metric.FULL else s
            s = tangent_scores(
                model, z, per_block=True, method=method, memory_budget=memory_budget, progress=progress,
            )
            if not per_output:
                s = s.sum(dim=-1, keepdim=True)
            if mode is not Normalization.NONE:
                stats = gradient_statistics(
                    model, params, z, per_output=per_output, memory_budget=memory_budget, progress=progress,
                )
                sums = torch.stack([t.detach().sum() for t in params.tensors])
                s = normalize_scores(s, stats, sums, mode)
            return s.sum(dim=1, keepdim=True) if metric is Metric.FULL else s

        sx = scores(x)
        sy = sx if same else scores(y)
        return torch.einsum("nbk,mbk->nm", sx, sy)

    index = None
    if metric is Metric.SPARSE:
        if mask is None:
            if labels is None:
                raise ValueError(
                    "mask: the sparse metric needs a SignAgreementMask (sign_agreement_mask(model, "
                    "x, labels)) or labels= for x to compute it from; got neither"
                )
            check_labels(labels, x.shape[0])
            mask = sign_agreement_mask(model, x, labels, threshold=threshold, memory_budget=memory_budget)
        if not isinstance(mask, SignAgreementMask):
            raise TypeError(f"mask: expected a SignAgreementMask, got {type(mask).__name__}")
        if mask.keep.numel() != params.total:
            raise ValueError(
                f"mask: expected one entry per trainable parameter ({params.total}), got "
                f"{mask.keep.numel()}; was it computed for another model?"
            )
        index = mask.index.to(params.device)
    return _feature_gram(
        model, params, x, y, per_output=per_output, mode=mode, index=index,
        memory_budget=memory_budget, progress=progress, columns=columns,
    )
