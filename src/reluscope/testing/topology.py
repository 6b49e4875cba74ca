"""Slow references for split scores: the decision sampled on a fine grid of cell centres (the
network evaluated directly, not the region map's affine pieces), Cohen's kappa by brute force
over many lines, and the grid estimate of a face split's area table."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    import torch.nn as nn

__all__ = ["grid_decision", "brute_force_straight_cut_kappa", "kappa_from_labels"]


def grid_decision(model: nn.Module, box: tuple[float, float, float, float], *, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """(points [n * n, 2] at cell centres, class-1 decision bool [n * n]) of a 2-D binary model."""
    x0, x1, y0, y1 = box
    s = x0 + (np.arange(n) + 0.5) * (x1 - x0) / n
    t = y0 + (np.arange(n) + 0.5) * (y1 - y0) / n
    pts = np.stack(np.meshgrid(s, t), -1).reshape(-1, 2)
    with torch.no_grad():
        out = model(torch.as_tensor(pts, dtype=next(model.parameters()).dtype)).double().numpy()
    pos = out[:, 0] > 0 if out.shape[1] == 1 else out[:, 1] > out[:, 0]
    return pts, pos


def kappa_from_labels(side: np.ndarray, positive: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Cohen's kappa between two binary labellings, maximised over swapping `side`, written out
    from the weighted 2 x 2 table."""
    w = np.ones(side.shape[0]) if weights is None else np.asarray(weights, float)
    best = -np.inf
    for s in (side, ~side):
        tot = w.sum()
        po = (w[s == positive]).sum() / tot
        p, q = w[s].sum() / tot, w[positive].sum() / tot
        pe = p * q + (1 - p) * (1 - q)
        best = max(best, (po - pe) / (1 - pe) if pe < 1 else 0.0)
    return float(best)


def brute_force_straight_cut_kappa(model: nn.Module, box: tuple[float, float, float, float], *, n: int = 300, n_directions: int = 720) -> float:
    """The largest kappa of a straight cut, over `n_directions` directions and, for each, every
    offset between grid points (sorted cumulative counts), on the n x n grid."""
    pts, pos = grid_decision(model, box, n=n)
    q = pos.mean()
    m = np.arange(1, pts.shape[0] + 1) / pts.shape[0]
    best = -np.inf
    for th in np.arange(n_directions) * np.pi / n_directions:
        order = np.argsort(pts @ np.array([np.cos(th), np.sin(th)]), kind="stable")
        a = np.cumsum(pos[order]) / pts.shape[0]
        po = 1 - m - q + 2 * a
        pe = m * q + (1 - m) * (1 - q)
        with np.errstate(divide="ignore", invalid="ignore"):
            k = np.maximum(np.where(1 - pe > 1e-15, (po - pe) / (1 - pe), 0.0), np.where(pe > 1e-15, (pe - po) / pe, 0.0))
        best = max(best, float(k.max()))
    return best
