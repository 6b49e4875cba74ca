"""Empirical tangent kernel of MLPs without materialising gradients.

For a Linear layer z_l = W_l h_{l-1} + b_l the per-input gradients are outer products,
d f / d W_l = delta_l h_{l-1}^T and d f / d b_l = delta_l (delta_l = d f / d z_l), so

    <g(x), g(y)> = sum_l <delta_l(x), delta_l(y)> * (<h_{l-1}(x), h_{l-1}(y)> + [b_l trainable]),

summed over outputs k in the per-output form. Memory is O((N + M) * units) plus the [N, M]
result, against O(N * P) for explicit features.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch.func import jvp

from ..network import layers as L
from ..network import to_network
from .features import (
    DEFAULT_MEMORY_BUDGET,
    _Params,
    check_inputs,
    chunk_size,
    chunks,
    trainable_parameters,
)

if TYPE_CHECKING:
    from .._types import ArrayLike
    import torch.nn as nn

__all__ = ["empirical_tangent_kernel"]


def _mlp_plan(model, params: _Params):
    """(network, [(layer index, weight trainable, bias trainable)]) or a TypeError."""
    net = to_network(model)
    by_name = set(params.names)
    plan, used = [], 0
    for li, layer in enumerate(net.layers):
        if isinstance(layer, L.Linear):
            w, b = f"{layer.name}.weight" in by_name, f"{layer.name}.bias" in by_name
            plan.append((li, w, b))
            used += w + b
        elif isinstance(layer, L.Conv2d) or (
            isinstance(layer, L.AbstractActivation) and not isinstance(layer, (L.LeakyReLU, L.Smooth))
        ) or isinstance(layer, (L.AvgPool2d, L.ChannelAffine)):
            raise TypeError(
                f"empirical_tangent_kernel: the factorised form needs an MLP (Linear layers and "
                f"elementwise activations), but layer {layer.name!r} is {type(layer).__name__}; "
                "use tangent_similarity(model, x, metric='euclidean', normalize=False) instead"
            )
    if used != len(params.names):
        raise TypeError(
            "empirical_tangent_kernel: every trainable parameter must be a Linear weight or bias "
            "(batch norm is not supported in the factorised form)"
        )
    return net.to(dtype=params.dtype), plan


def _derivative(layer, z: torch.Tensor) -> torch.Tensor:
    ones = torch.ones_like(z)
    if isinstance(layer, L.LeakyReLU):
        return layer.jvp(z, ones)[1]
    return jvp(layer.forward, (z,), (ones,))[1]  # smooth elementwise activations


def _layer_factors(net, plan, x: torch.Tensor, per_output: bool):
    """[(h_{l-1} [n, d], delta_l [n, K', u])] for every Linear layer l in `plan`."""
    inputs, pre = {}, {}
    h = x
    for li, layer in enumerate(net.layers):
        if isinstance(layer, L.Linear):
            inputs[li] = h.reshape(h.shape[0], -1)
        h = layer.forward(h)
        pre[li + 1] = h
    n, k = h.shape[0], h[0].numel()
    eye = torch.eye(k, dtype=h.dtype, device=h.device)
    delta = eye.expand(n, k, k) if per_output else torch.ones(n, 1, k, dtype=h.dtype, device=h.device)
    deltas = {}
    for li in range(len(net.layers) - 1, -1, -1):
        layer = net.layers[li]
        if isinstance(layer, L.Linear):
            deltas[li] = delta
            delta = delta @ layer.weight
        elif isinstance(layer, L.AbstractActivation):
            z = pre[li] if li > 0 else x
            delta = delta * _derivative(layer, z.reshape(z.shape[0], -1)).unsqueeze(1)
        # Flatten / Identity-like affine layers of an MLP act on [n, d] as identity here
    return [(inputs[li], deltas[li], w, b) for li, w, b in plan]


def _gram(fx, fy) -> torch.Tensor:
    out = None
    for (hx, dx, w, b), (hy, dy, _, _) in zip(fx, fy):
        dd = torch.einsum("nku,mku->nm", dx, dy)
        term = dd * (hx @ hy.T) if w else torch.zeros_like(dd)
        if b:
            term = term + dd
        out = term if out is None else out + term
    return out


def empirical_tangent_kernel(
    model: nn.Module,
    x: ArrayLike,
    y: ArrayLike | None = None,
    *,
    per_output: bool = False,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: bool = False,
) -> torch.Tensor:
    """Theta [N, M] = <g(x), g(y)> of an MLP (g the gradient of the summed outputs), or
    sum_k <g_k(x), g_k(y)> with `per_output=True`; equal to
    `tangent_similarity(model, x, y, metric="euclidean", normalize=False, per_output=...)`
    but computed from per-layer factors (see module doc), never from gradients."""
    params = trainable_parameters(model)
    x = check_inputs(params, x, "x", model=model)
    y = x if y is None else check_inputs(params, y, "y", model=model)
    net, plan = _mlp_plan(model, params)
    with torch.no_grad():
        fy = _layer_factors(net, plan, y, per_output)
        m = y.shape[0]
        row_bytes = m * params.dtype.itemsize * 4  # dd, hh, term and the output row
        size = chunk_size(row_bytes, x.shape[0], memory_budget)
        out = torch.empty(x.shape[0], m, dtype=params.dtype, device=params.device)
        for rows in chunks(x.shape[0], size, progress=progress, desc="tangent kernel"):
            fx = _layer_factors(net, plan, x[rows], per_output) if y is not x else [
                (h[rows], d[rows], w, b) for h, d, w, b in fy
            ]
            out[rows] = _gram(fx, fy)
    return out
