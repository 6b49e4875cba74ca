"""Pattern changes along a segment by adaptive bisection: for any network, smooth activations too.

GELU, SiLU, Tanh and Sigmoid nets have no linear regions to follow, but their patterns (bit = z > 0)
still split the segment into pieces ("The Space Between"). We evaluate the pattern on a uniform
grid of `n_init + 1` points, then split every interval whose end patterns differ until it is no
longer than `tol`, evaluating all midpoints of one round in a single batch. Each pattern change is
then located to within `tol` (the boundary reported is the bracket's midpoint, so it is off by at
most tol / 2 in t).

Limits, by construction: a piece shorter than `tol` can be stepped over, and a piece entered and
left again between two neighbouring grid points whose patterns agree is not seen at all (raise
`n_init` to look closer). Several units crossing within one final bracket become one step of the
walk. For ReLU nets use the exact `traverse`, which has neither limit.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

from .._checks import as_float_tensor, check_finite, check_int, check_positive
from ..network import to_network
from .exact import Traversal

if TYPE_CHECKING:
    from .._types import ArrayLike, ModelLike

__all__ = ["traverse_bisection"]


def traverse_bisection(model: ModelLike, x0: ArrayLike, x1: ArrayLike, *, tol: float = 1e-6, include_output: bool = False,
                       max_depth: int | None = None, n_init: int = 64) -> Traversal:
    """Regions of constant pattern along x0 -> x1 (one pair, unbatched inputs), found by bisection.

    Returns a `Traversal` like the exact one: `t` (float64 [n + 1], t[0] = 0, t[-1] = 1) with the
    boundaries located to within `tol` (in t, on [0, 1]), and `patterns` (bool [n, units]).
    `max_depth` bounds the halvings of each grid interval (default: as many as `tol` needs);
    `n_init` is the number of intervals of the starting grid.
    """
    check_positive(float(tol), "tol")
    n_init = check_int(n_init, "n_init")
    need = max(0, math.ceil(math.log2(1.0 / (n_init * tol))))
    if max_depth is None:
        max_depth = need
    else:
        max_depth = check_int(max_depth, "max_depth", minimum=0)
    x0 = check_finite(as_float_tensor(x0, "x0"), "x0")
    x1 = check_finite(as_float_tensor(x1, "x1"), "x1").to(x0.dtype)
    if x0.shape != x1.shape:
        raise ValueError(f"x0, x1: expected equal shapes, got {list(x0.shape)} and {list(x1.shape)}")
    net = to_network(model)
    if net.input_shape is not None and tuple(x0.shape) != tuple(net.input_shape):
        raise ValueError(
            f"x0: expected one input of shape {list(net.input_shape)} (no batch dimension), got {list(x0.shape)}"
        )
    net = net.to(dtype=x0.dtype, device=x0.device)
    direction = x1 - x0

    def bits_at(t: np.ndarray) -> torch.Tensor:
        tt = torch.as_tensor(t, dtype=x0.dtype, device=x0.device).reshape((-1,) + (1,) * x0.dim())
        with torch.no_grad():
            return net.bits(x0.unsqueeze(0) + tt * direction.unsqueeze(0), include_output=include_output).cpu()

    ts = [np.linspace(0.0, 1.0, n_init + 1)]
    pats = [bits_at(ts[0])]
    lo_t, hi_t = ts[0][:-1], ts[0][1:]
    lo_p, hi_p = pats[0][:-1], pats[0][1:]
    for _ in range(max_depth):
        open_ = (lo_p != hi_p).any(dim=1).numpy() & (hi_t - lo_t > tol)
        if not open_.any():
            break
        keep = torch.as_tensor(open_)
        lo_t, hi_t, lo_p, hi_p = lo_t[open_], hi_t[open_], lo_p[keep], hi_p[keep]
        mid = (lo_t + hi_t) / 2
        mid_p = bits_at(mid)
        ts.append(mid)
        pats.append(mid_p)
        lo_t, hi_t = np.concatenate([lo_t, mid]), np.concatenate([mid, hi_t])
        lo_p, hi_p = torch.cat([lo_p, mid_p]), torch.cat([mid_p, hi_p])
    t_all = np.concatenate(ts)
    order = np.argsort(t_all, kind="stable")
    t_all, p_all = t_all[order], torch.cat(pats)[torch.as_tensor(order)]
    change = np.flatnonzero((p_all[1:] != p_all[:-1]).any(dim=1).numpy())
    bounds = (t_all[change] + t_all[change + 1]) / 2
    t = np.concatenate([[0.0], bounds, [1.0]])
    starts = np.concatenate([[0], change + 1])
    return Traversal(t=torch.as_tensor(t, dtype=torch.float64), patterns=p_all[torch.as_tensor(starts)].to(x0.device))
