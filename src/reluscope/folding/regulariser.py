"""A differentiable folding surrogate for training (the papers' exact regulariser is not public).

Lewandowski et al. train with loss = task loss + lambda * folding term to encourage folding early in
training, but do not publish the term. Ours replaces every discrete piece of chi by a smooth one:

* soft bits: s_j(x) = sigmoid(z_j(x) / tau) instead of z_j > 0 (every unit before an activation
  module, plus the outputs with `include_output`);
* soft Hamming distance: d(p, q) = sum_j |p_j - q_j| (the Hamming distance on 0/1 bits, and zero
  between equal patterns, so a walk that does not move folds nothing);
* smooth max for r1: beta * (logsumexp(d / beta) - log n) over the n points of the walk, which lies
  in [max - beta log n, max] (so r1 <= r2 always) and tends to the max as beta -> 0; beta = tau by
  default, so one temperature controls the whole relaxation;
* the walk is the papers' n-point grid on each segment, so the cost is n forward passes per pair.

soft_chi = (r2 - r1) / (r2 + denominator_offset), in [0, 1]: 0 for a walk that does not move (x -> x) at
every tau, and the grid chi of the same walk in the limit tau -> 0 (both tested). An earlier form,
d(p, q) = sum p (1 - q) + (1 - p) q, is not zero for p = q (a motionless walk got soft chi ~0.9).
`folding_penalty` is its negative mean, so `loss = task_loss + lam * folding_penalty(...)` with
lam > 0 rewards folding (the papers' direction) and lam < 0 discourages it. See docs/methods.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from .._checks import check_int

__all__ = ["soft_folding", "folding_penalty", "folding_loss"]

_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid)


def _soft_patterns(model: nn.Module, x: torch.Tensor, tau: float, include_output: bool) -> torch.Tensor:
    """[N, units] soft bits sigmoid(z / tau) of every activation module's input, in call order."""
    zs: list[torch.Tensor] = []
    hooks = [m.register_forward_pre_hook(lambda _m, args: zs.append(args[0].reshape(args[0].shape[0], -1)))
             for m in model.modules() if isinstance(m, _ACTIVATIONS)]
    try:  # hooks must go even when the forward pass raises
        out = model(x)
    finally:
        for h in hooks:
            h.remove()
    if include_output:
        zs.append(out.reshape(out.shape[0], -1))
    if not zs:
        raise TypeError("model: no activation modules (ReLU, LeakyReLU, GELU, SiLU, Tanh, Sigmoid) found")
    return torch.sigmoid(torch.cat(zs, dim=1) / tau)


def soft_folding(model: nn.Module, x0: torch.Tensor, x1: torch.Tensor, *, tau: float = 0.1,
                 n_points: int = 11, beta: float | None = None, include_output: bool = True,
                 denominator_offset: float = 1e-6) -> torch.Tensor:
    """Differentiable chi of each segment x0[i] -> x1[i] (batches [B, ...]): a tensor [B] in [0, 1].

    `tau`: temperature of the soft bits; `beta`: of the smooth max (None: tau); `denominator_offset`:
    added to the walk length r2, so a walk that does not move gives 0, not 0 / 0."""
    beta = tau if beta is None else beta
    for name, v in (("tau", tau), ("beta", beta)):
        if not v > 0:
            raise ValueError(f"{name}: expected a temperature > 0, got {v!r}")
    n_points = check_int(n_points, "n_points", minimum=2)
    if x0.shape != x1.shape or x0.dim() < 2:
        raise ValueError(f"x0, x1: expected equal batch shapes [B, ...], got {list(x0.shape)} and {list(x1.shape)}")
    b = x0.shape[0]
    t = torch.linspace(0, 1, n_points, dtype=x0.dtype, device=x0.device).reshape((1, -1) + (1,) * (x0.dim() - 1))
    pts = (x0.unsqueeze(1) + t * (x1 - x0).unsqueeze(1)).reshape((b * n_points,) + tuple(x0.shape[1:]))
    s = _soft_patterns(model, pts, tau, include_output).reshape(b, n_points, -1)

    def dist(p, q):
        return (p - q).abs().sum(-1)

    to_start = dist(s[:, :1], s)  # [B, n]
    # the mean-shifted smooth max lies in [max - beta log n, max], so r1 <= max d <= r2 (the triangle
    # inequality holds for the soft distance): soft chi stays in [0, 1] without clipping away gradients
    r1 = beta * (torch.logsumexp(to_start / beta, dim=1) - math.log(n_points))
    r2 = dist(s[:, 1:], s[:, :-1]).sum(dim=1)
    return ((r2 - r1) / (r2 + denominator_offset)).clamp(0, 1)


def folding_penalty(model: nn.Module, x0: torch.Tensor, x1: torch.Tensor, **options: float | bool | None) -> torch.Tensor:
    """-mean soft chi over the segments (a scalar); add `lam * folding_penalty(...)` to the loss."""
    return -soft_folding(model, x0, x1, **options).mean()


def folding_loss(lam: float, *, classes: tuple[int, int] | None = None, n_pairs: int = 16, seed: int = 0,
                 **options: float | bool | None) -> Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]:
    """An `extra_loss(model, xb, yb)` for `train_classifier`: lam * folding_penalty on `n_pairs`
    segments between inputs of the batch with different labels (or of `classes[0]` -> `classes[1]`).

    Batches without a usable pair contribute 0.
    """
    gen = torch.Generator().manual_seed(seed)

    def extra(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        yc = yb.cpu()
        if classes is not None:
            a, b = torch.nonzero(yc == classes[0]).flatten(), torch.nonzero(yc == classes[1]).flatten()
            if len(a) == 0 or len(b) == 0:
                return xb.new_zeros(())
            i = a[torch.randint(len(a), (n_pairs,), generator=gen)]
            j = b[torch.randint(len(b), (n_pairs,), generator=gen)]
        else:
            i = torch.randint(len(yc), (4 * n_pairs,), generator=gen)
            j = torch.randint(len(yc), (4 * n_pairs,), generator=gen)
            keep = yc[i] != yc[j]
            i, j = i[keep][:n_pairs], j[keep][:n_pairs]
            if len(i) == 0:
                return xb.new_zeros(())
        return lam * folding_penalty(model, xb[i.to(xb.device)], xb[j.to(xb.device)], **options)

    return extra
