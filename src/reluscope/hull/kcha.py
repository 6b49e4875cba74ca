"""Kernel convex-hull approximation (KCHA), the seed of Revised Greedy Expansion.

The plain iteration (Jia et al., after the authors' code): Gaussian kernel K_ij =
exp(-||x_i - x_j||^2 / sigma^2), C0 = 1/N, C <- C * sqrt(K / (K C)) elementwise until the relative
change sum|C_new - C| / sum|C| is <= `rate`; the scores are diag(C). It costs N^3 per step.

What makes it fast here without changing its result:

* Columns of C evolve independently (column j of K C is K c_j), so C can be updated column block
  by column block; only the stopping rule couples them, through sums we accumulate exactly.
* The first step is closed form: K C0 = r 1^T / N with r = K 1, so C1 = sqrt(K / (N r)).
* C becomes sparse: an entry only shrinks once K c_j exceeds k_j there, and entries of far points
  fall towards K_ij (tiny for sigma = 0.3). Entries below `prune` times their column's largest
  entry are set to zero; zero stays zero under the multiplicative update. With the points ordered
  so that neighbours are contiguous (recursive median splits), a block of columns touches only
  the rows in the union of its supports, and the step is a dense product on that small block.
  `prune=0` keeps every entry (the plain iteration, blocked). The default 1e-6 changed diag(C) by
  at most 4e-7 on the paper's toy sets, with the same number of steps and the same top-N/20 seeds
  (tests compare it with the plain iteration in `reluscope.testing.hull`).
* On a GPU the plain dense iteration is used: N^3 per step is cheap there, and it is exact.
"""

from __future__ import annotations

import numpy as np
import torch

from .._checks import MemoryBudgetError, DEFAULT_MEMORY_BUDGET, check_int, check_memory_budget, check_positive
from .distance import prepare_points

__all__ = ["kcha_scores", "kcha_memory"]

_BLOCK = 32  # columns per block: small enough for tight row unions, large enough for a real matmul


def kcha_memory(n: int) -> int:
    """Bytes KCHA on n points holds at most: the kernel, the first step and the block state."""
    return 3 * 8 * n * n


def kcha_scores(
    points,
    *,
    sigma: float = 0.3,
    rate: float = 0.01,
    max_iter: int = 500,
    prune: float = 1e-6,
    memory_budget=DEFAULT_MEMORY_BUDGET,
    device=None,
) -> np.ndarray:
    """diag(C) of the kernel convex-hull approximation on all `points` [N, D]; see the module docstring.

    Computes on `device` (default: where `points` live). `prune` (relative to each column's largest
    entry, >= 0) drops negligible entries of C on the CPU path. Refuses up front, with the estimate,
    when the N x N work does not fit in `memory_budget` bytes (use RGE's `kcha_sample` then).
    """
    check_positive(float(sigma), "sigma")
    check_positive(float(rate), "rate", allow_zero=True)
    check_positive(float(prune), "prune", allow_zero=True)
    max_iter = check_int(max_iter, "max_iter")
    budget = check_memory_budget(memory_budget)
    x = prepare_points(points, "points", device=device)
    n = x.shape[0]
    need = kcha_memory(n)
    if need > budget:
        raise MemoryBudgetError(
            f"memory_budget: KCHA on {n} points needs about {need / 2**20:.0f} MiB ({need} bytes), over "
            f"memory_budget={budget} bytes; pass a larger memory_budget or run it on a subsample "
            "(revised_greedy_expansion(..., kcha_sample=...))"
        )
    k = torch.exp(-torch.cdist(x, x).square() / sigma**2)
    if x.device.type != "cpu":
        return _plain(k, rate, max_iter)
    return _blocked(x, k, rate, max_iter, prune)


def _plain(k, rate, max_iter):
    n = k.shape[0]
    c = torch.full((n, n), 1.0 / n, dtype=k.dtype, device=k.device)
    for _ in range(max_iter):
        c_new = c * torch.sqrt(k / (k @ c).clamp_min(1e-300))
        change = float((c_new - c).abs().sum() / c.abs().sum())
        c = c_new
        if change <= rate:
            break
    return torch.diagonal(c).cpu().numpy().copy()


def spatial_blocks(x: np.ndarray, leaf: int) -> list[np.ndarray]:
    """Blocks of <= leaf point indices, neighbours together: recursive median splits along the
    coordinate of widest spread."""
    out, stack = [], [np.arange(x.shape[0])]
    while stack:
        idx = stack.pop()
        if idx.size <= leaf:
            out.append(np.sort(idx))
            continue
        sub = x[idx]
        axis = int(np.argmax(sub.max(0) - sub.min(0)))
        order = idx[np.argsort(sub[:, axis], kind="stable")]
        half = order.size // 2
        stack += [order[half:], order[:half]]
    return out


def _prune(c, prune):
    if prune <= 0:
        return c
    return torch.where(c >= prune * c.amax(dim=0), c, torch.zeros((), dtype=c.dtype))


def _blocked(x, k, rate, max_iter, prune):
    n = x.shape[0]
    r = k.sum(dim=1)
    c1 = torch.sqrt(k / (n * r[:, None]))  # step 1 in closed form
    change = float((c1 - 1.0 / n).abs().sum()) / n  # sum |C0| = n
    state = []
    for cols in spatial_blocks(x.numpy(), _BLOCK):
        cols = torch.from_numpy(cols)
        cj = _prune(c1[:, cols], prune)
        rows = cj.any(dim=1).nonzero().squeeze(1)
        krow = k[rows]
        state.append([cols, rows, cj[rows].contiguous(), krow[:, rows].contiguous(), krow[:, cols].contiguous()])
    del c1
    it = 1
    while change > rate and it < max_iter:
        it += 1
        diff = total = 0.0
        for s in state:
            cols, rows, cj, k_rr, k_rc = s
            new = cj * torch.sqrt(k_rc / (k_rr @ cj).clamp_min(1e-300))
            diff += float((new - cj).abs().sum())
            total += float(cj.sum())
            new = _prune(new, prune)
            keep = new.any(dim=1)
            kept = int(keep.sum())
            if kept < 0.9 * rows.numel():  # re-gather the kernel only when the support shrank enough
                rows, new = rows[keep], new[keep]
                krow = k[rows]
                s[1], s[3], s[4] = rows, krow[:, rows].contiguous(), krow[:, cols].contiguous()
            s[2] = new.contiguous()
        change = diff / total
    diag = torch.zeros(n, dtype=k.dtype)
    for cols, rows, cj, _, _ in state:
        at = torch.searchsorted(rows, cols)  # rows are sorted; column j's own row is always kept
        at = at.clamp_max(rows.numel() - 1)
        found = rows[at] == cols
        diag[cols] = torch.where(found, cj[at, torch.arange(cols.numel())], torch.zeros((), dtype=k.dtype))
    return diag.numpy()
