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
  A block's kernel rows are cut down with its support as it shrinks (the support never grows),
  in place.
  `prune=0` keeps every entry (the plain iteration, blocked).
* The products and updates run in float32 (`KCHAPrecision`); the kernel, the first step and the
  stopping sums stay float64. The update and the pruning of a block are one fused pass (numba,
  when installed; numpy otherwise, with the same arithmetic).
* Blocks are independent within a step: they are split over torch's threads
  (`torch.set_num_threads`), each product on one thread, and the stopping sums are added in block
  order, so any thread count gives the same result bit for bit.
* Measured against the plain float64 iteration on the paper's four toy sets (bench/hulls.py): the
  same number of steps, the same top-N/20 seeds, diag(C) within 2e-6 relative (prune 1e-6,
  float32), while the closest pair of scores around the N/20-th rank differs by 3.8e-4 relative.
* On a GPU the plain dense iteration is used: N^3 per step is cheap there, and it is exact.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from enum import Enum
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import torch

from .._compiled import load_kernels
from .._checks import MemoryBudgetError, DEFAULT_MEMORY_BUDGET, as_enum, check_int, check_memory_budget, check_positive
from .distance import prepare_points

if TYPE_CHECKING:
    from .._types import ArrayLike

__all__ = ["kcha_scores", "kcha_memory", "KCHAPrecision"]

_BLOCK = 64  # columns per block: tight row unions, a real matmul (32 and 128 were slower on Center)
_CUT = 0.9  # a block drops its dead rows once they are over 1 - _CUT of them (a speed knob only)
_TINY = 1e-30  # float32 kernel entries below this are zero: no denormals (x86 slows on them), and
# they weigh < 1e-30 against the entries >= 1e-9 that the pruning keeps


class KCHAPrecision(str, Enum):
    """Arithmetic of KCHA's products and updates on the CPU. FLOAT32 (default): about 1.5-2x
    faster (half the memory traffic, twice the lanes), and diag(C) stays within 2e-6 relative of
    the float64 plain iteration on the paper's toy sets, a hundred times below the gaps between
    the scores that pick RGE's seeds; the kernel, first step and stopping sums are float64.
    FLOAT64: everything in float64 (with prune=0 it is the plain iteration up to summation order)."""

    FLOAT32 = "float32"
    FLOAT64 = "float64"


def kcha_memory(n: int) -> int:
    """Bytes KCHA on n points holds at most: the kernel, the first step and the block state."""
    return 3 * 8 * n * n


def kcha_scores(
    points: ArrayLike,
    *,
    sigma: float = 0.3,
    rate: float = 0.01,
    max_iter: int = 500,
    prune: float = 1e-6,
    precision: KCHAPrecision | str = KCHAPrecision.FLOAT32,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """diag(C) of the kernel convex-hull approximation on all `points` [N, D]; see the module docstring.

    Computes on `device` (default: where `points` live). `prune` (relative to each column's largest
    entry, >= 0) drops negligible entries of C on the CPU path; `precision` is the CPU path's
    arithmetic (`KCHAPrecision`). Refuses up front, with the estimate, when the N x N work does not
    fit in `memory_budget` bytes (use RGE's `kcha_sample` then); within the budget, the blocks'
    kernel rows are kept between steps as far as they fit, and gathered again each step otherwise.
    The CPU path runs its blocks on torch's thread count (the same result on any count).
    """
    return _kcha(points, sigma, rate, max_iter, prune, precision, memory_budget, device)[0]


def _kcha(points, sigma, rate, max_iter, prune, precision, memory_budget, device):
    """(diag(C), steps taken): `kcha_scores` with the step count (bench/hulls.py compares it)."""
    check_positive(float(sigma), "sigma")
    check_positive(float(rate), "rate", allow_zero=True)
    check_positive(float(prune), "prune", allow_zero=True)
    max_iter = check_int(max_iter, "max_iter")
    dtype = torch.float32 if as_enum(precision, KCHAPrecision, "precision") is KCHAPrecision.FLOAT32 else torch.float64
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
    k = torch.cdist(x, x).square_().mul_(-1 / sigma**2).exp_()  # in place: N x N temporaries cost page faults
    if x.device.type != "cpu":
        return _plain(k, rate, max_iter)
    return _blocked(x, k, rate, max_iter, prune, dtype, budget - need)


def _plain(k, rate, max_iter):
    n = k.shape[0]
    c = torch.full((n, n), 1.0 / n, dtype=k.dtype, device=k.device)
    steps = 0
    for steps in range(1, max_iter + 1):
        c_new = c * torch.sqrt(k / (k @ c).clamp_min(1e-300))
        change = float((c_new - c).abs().sum() / c.abs().sum())
        c = c_new
        if change <= rate:
            break
    return torch.diagonal(c).cpu().numpy().copy(), steps


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


def _kernels():
    """(first_step, gather, compact, step): numba's fused versions when numba imports, else numpy's."""
    nb = load_kernels("reluscope.hull._kcha_nb")
    if nb is None:
        return _first_step_np, _gather_np, _compact_np, _step_np
    return nb.first_step, nb.gather, nb.compact, nb.step


def _first_step_np(K, inv, cols, prune, dtype_like):
    """`_kcha_nb.first_step` in numpy (the same arithmetic)."""
    c1 = np.sqrt(K[cols].T * inv[:, None])  # [N, B]; K is symmetric
    diff = float(np.abs(c1 - 1.0 / K.shape[0]).sum())
    c1 = np.where(c1 >= prune * c1.max(0), c1, 0.0)
    rows = c1.any(1).nonzero()[0]
    return diff, rows, c1[rows].astype(dtype_like.dtype)


def _gather_np(K, rows, cols):
    return K[np.ix_(rows, cols)]


def _compact_np(buf, m, idx):
    k = idx.shape[0]
    buf[: k * k] = buf[: m * m].reshape(m, m)[np.ix_(idx, idx)].ravel()


def _step_np(C, KC, KUC, prune):
    """`_kcha_nb.step` in numpy: the same arithmetic, so the same C."""
    live = (KC > 0) & (C != 0)
    with np.errstate(over="ignore", invalid="ignore"):  # masked out below
        new = np.where(live, C * np.sqrt(KUC / np.where(live, KC, 1)), C)
    diff = float(np.abs(new.astype(np.float64) - C).sum())
    total = float(C.sum(dtype=np.float64))
    new[new < prune * new.max(0)] = 0
    C[...] = new
    keep = (C != 0).any(1)
    return diff, total, keep, int(keep.sum())


def _advance(blocks, sums, kw, kernels, thr, which):
    """One step of the blocks `which` (one thread's list): the product, the fused update and
    pruning, the cut-down; each block's (sum |C_new - C|, sum |C|) into its row of `sums`."""
    _, gather, compact, step = kernels
    for i in which:
        b = blocks[i]
        cols, rows, c, buf, k_uc = b
        u = rows.shape[0]
        k_uu = gather(kw, rows, rows) if buf is None else buf[: u * u].reshape(u, u)
        kc = torch.from_numpy(k_uu) @ torch.from_numpy(c)
        d, t, keep, kept = step(c, kc.numpy(), k_uc, thr)
        sums[i] = d, t
        if kept < _CUT * u:  # cut the block down with its support (it never grows)
            idx = keep.nonzero()[0]
            b[1], b[2], b[4] = rows[idx], np.ascontiguousarray(c[idx]), np.ascontiguousarray(k_uc[idx])
            if buf is not None:
                compact(buf, u, idx)


def _blocked(x, k, rate, max_iter, prune, dtype, cache_bytes):
    """The iteration block by block (see the module docstring). `cache_bytes`: room for the
    blocks' kernel rows between steps; blocks beyond it gather theirs again every step."""
    kernels = first_step, gather, _, _ = _kernels()
    n = x.shape[0]
    inv = (1.0 / (n * k.sum(dim=1))).numpy()  # C1_ij = sqrt(K_ij / (N r_i))
    kw = k.numpy() if dtype == torch.float64 else k.to(dtype).masked_fill_(k < _TINY, 0).numpy()
    like = np.zeros(0, kw.dtype)
    thr = kw.dtype.type(prune)
    diff = 0.0
    blocks = []
    for cols in spatial_blocks(x.numpy(), _BLOCK):
        d, rows, c = first_step(k.numpy(), inv, cols, float(prune), like)
        diff += d
        buf = None  # the block's K_UU, kept flat: cut-downs compact it in place
        if rows.shape[0] ** 2 * kw.itemsize <= cache_bytes:
            buf = gather(kw, rows, rows).reshape(-1)
            cache_bytes -= buf.nbytes
        blocks.append([cols, rows, c, buf, gather(kw, rows, cols)])
    change = diff / n  # sum |C0| = n
    threads = torch.get_num_threads()
    # torch's threads, used as workers over the blocks (each block's product on one thread: torch's
    # count is per thread for OpenMP, so each worker sets its own; the caller's is restored after)
    pool = ThreadPoolExecutor(threads, initializer=torch.set_num_threads, initargs=(1,)) if threads > 1 and len(blocks) > 1 else None
    it = 1
    try:
        while change > rate and it < max_iter:
            it += 1
            sums = np.zeros((len(blocks), 2))
            run = partial(_advance, blocks, sums, kw, kernels, thr)
            if pool is None:
                run(range(len(blocks)))
            else:
                # one task per block, largest first, taken by whichever thread is free: a thread
                # descheduled on a busy machine does not hold the step up by a fixed share
                by_size = sorted(range(len(blocks)), key=lambda i: -blocks[i][1].shape[0])
                list(pool.map(run, ([i] for i in by_size)))
            diff = total = 0.0
            for d, t in sums.tolist():  # in block order whatever the threads: the same change, the same steps
                diff += d
                total += t
            change = diff / total
    finally:
        if pool is not None:
            pool.shutdown()
            torch.set_num_threads(threads)
    diag = np.zeros(n)
    for cols, rows, c, _, _ in blocks:
        at = np.minimum(np.searchsorted(rows, cols), rows.shape[0] - 1)  # rows are sorted
        diag[cols] = np.where(rows[at] == cols, c[at, np.arange(cols.shape[0])], 0.0)
    return diag, it
