"""Slow, paper-exact references for reluscope.tangent: an explicit per-sample autograd loop.

Each input is run alone through the model and every output is back-propagated with
torch.autograd.grad; the similarities are then formed from the explicit gradient vectors, exactly
as the definitions read. Used only by tests and benchmarks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    import torch.nn as nn

__all__ = ["reference_gradients", "reference_similarity", "reference_sign_scores"]


def reference_gradients(model: nn.Module, x: torch.Tensor, *, per_output: bool = True) -> list[list[torch.Tensor]]:
    """grads[n][k] = list of d f_k(x_n) / d theta_l per trainable tensor (k = 0 only, for the
    summed output, with per_output=False)."""
    params = [p for p in model.parameters() if p.requires_grad]
    grads = []
    for xi in x:
        out = model(xi.unsqueeze(0)).reshape(-1)
        targets = list(out) if per_output else [out.sum()]
        per_k = []
        for j, t in enumerate(targets):
            g = torch.autograd.grad(t, params, retain_graph=j + 1 < len(targets), allow_unused=True)
            per_k.append([torch.zeros_like(p) if gi is None else gi.detach() for gi, p in zip(g, params)])
        grads.append(per_k)
    return grads


def _flat(blocks) -> torch.Tensor:
    return torch.cat([b.reshape(-1) for b in blocks])


def _normalise(v: torch.Tensor, normalize, k: int, columns) -> torch.Tensor:
    """One gradient vector (output k) normalised by the definitions, with a plain loop."""
    if normalize == "per_input_minmax":
        lo, hi = v.min(), v.max()
        return (v - lo) / (hi - lo) if hi > lo else torch.zeros_like(v)
    if normalize == "l2":
        n = v.norm()
        return v / n if n > 0 else torch.zeros_like(v)
    if normalize == "value_scaling":
        return v * columns
    if normalize == "per_parameter_minmax":
        lo, hi = columns
        out = torch.zeros_like(v)
        for j in range(v.numel()):
            if hi[k][j] > lo[k][j]:
                out[j] = (v[j] - lo[k][j]) / (hi[k][j] - lo[k][j])
        return out
    return v


def _representation(grads_n, theta, metric, normalize, keep, columns):
    """Per output k: the vector whose inner products give the metric."""
    reps = []
    for k, blocks in enumerate(grads_n):
        g = _normalise(_flat(blocks), normalize, k, columns)
        if metric == "euclidean":
            reps.append(g)
        elif metric == "sparse":
            reps.append(g[keep])
        else:
            parts, start = [], 0
            for t in theta:
                parts.append(g[start:start + t.numel()] @ t.reshape(-1))
                start += t.numel()
            scores = torch.stack(parts)
            reps.append(scores.sum().reshape(1) if metric == "full" else scores)
    return torch.stack(reps)  # [K, dim]


def reference_similarity(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, *, metric: str = "block", per_output: bool = True,
    normalize: str = "none", keep: torch.Tensor | None = None,
) -> torch.Tensor:
    """K [N, M] by the definitions, from explicit per-sample gradients (see reluscope.tangent).

    Per-parameter min-max takes each coordinate's extremes over the inputs y (x when y is None)."""
    y = x if y is None else y
    theta = [p.detach() for p in model.parameters() if p.requires_grad]
    gx = reference_gradients(model, x, per_output=per_output)
    gy = gx if y is x else reference_gradients(model, y, per_output=per_output)
    columns = None
    if normalize == "value_scaling":
        columns = _flat(theta)
    elif normalize == "per_parameter_minmax":
        per_k = [torch.stack([_flat(g[k]) for g in gy]) for k in range(len(gy[0]))]
        columns = ([v.min(0).values for v in per_k], [v.max(0).values for v in per_k])
    rx = [_representation(g, theta, metric, normalize, keep, columns) for g in gx]
    ry = [_representation(g, theta, metric, normalize, keep, columns) for g in gy]
    out = torch.zeros(len(rx), len(ry), dtype=rx[0].dtype)
    for i, a in enumerate(rx):
        for j, b in enumerate(ry):
            out[i, j] = (a * b).sum()
    return out


def reference_sign_scores(gradients: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sign-agreement scores by literally counting pairs (the authors' code; docs/methods.md)."""
    n, p = gradients.shape
    a_pos = torch.zeros(p, dtype=torch.float64)
    a_neg, b_pos, b_neg = a_pos.clone(), a_pos.clone(), a_pos.clone()
    for c in torch.unique(labels):
        inside = [i for i in range(n) if labels[i] == c]
        outside = [i for i in range(n) if labels[i] != c]
        for group, pos, neg in ((inside, a_pos, a_neg), (outside, b_pos, b_neg)):
            for ii, i in enumerate(group):
                for j in group[ii + 1:]:
                    pos += ((gradients[i] > 0) & (gradients[j] > 0)).double()
                    neg += ((gradients[i] < 0) & (gradients[j] < 0)).double()
    num, den = a_pos + b_neg, a_neg + b_pos
    out = torch.zeros(p, dtype=torch.float64)
    for j in range(p):
        out[j] = num[j] / den[j] if den[j] > 0 else (float("inf") if num[j] > 0 else 0.0)
    return out
