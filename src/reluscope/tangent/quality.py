"""How good is a similarity function for a labelled set? Gap, per-input gap, (eps, gamma) curve.

All functions take a similarity matrix K [N, M] with labels of the rows (and of the columns; by
default K is a self-similarity of the same inputs, and then the diagonal K(x, x) is left out of
the same-class means, since an input trivially resembles itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..results import Result, frame
from .sparse import check_labels

if TYPE_CHECKING:
    from .._types import ArrayLike

__all__ = ["SimilarityGap", "GoodnessCurve", "similarity_gap", "per_input_gap", "goodness_curve"]


@dataclass(frozen=True)
class SimilarityGap(Result):
    """gap = same - cross: the mean same-class minus the mean cross-class similarity."""

    gap: float
    same: float
    cross: float


@dataclass(frozen=True)
class GoodnessCurve(Result):
    """eps[i]: share of inputs whose per-input gap is below gamma[i]; so the similarity is
    (eps[i], gamma[i])-good: a 1 - eps share have same-class mean >= cross-class mean + gamma."""

    gamma: np.ndarray
    eps: np.ndarray

    def eps_at(self, gamma: float) -> float:
        return float(np.interp(gamma, self.gamma, self.eps))

    def to_frame(self):
        """pandas.DataFrame with columns gamma and eps (pandas is optional)."""
        return frame({"gamma": self.gamma, "eps": self.eps}, "GoodnessCurve")


def _prepare(similarity, labels, labels_y):
    if not isinstance(similarity, torch.Tensor):
        similarity = torch.as_tensor(np.asarray(similarity))
    if similarity.dim() != 2:
        raise ValueError(f"similarity: expected a matrix [N, M], got shape {list(similarity.shape)}")
    n, m = similarity.shape
    if n == 0 or m == 0:
        raise ValueError(f"similarity: expected a non-empty matrix, got shape {[n, m]}")
    ly_given = labels_y is not None
    labels = check_labels(labels, n)
    labels_y = check_labels(labels_y, m, "labels_y") if ly_given else labels
    if not ly_given and n != m:
        raise ValueError(
            f"labels_y: similarity is [{n}, {m}], not square, so pass the column labels labels_y"
        )
    s = similarity.detach().to("cpu", torch.float64)
    same = labels[:, None] == labels_y[None, :]
    valid = torch.ones_like(same)
    if not ly_given:
        valid.fill_diagonal_(False)
    return s, same & valid, ~same & valid


def similarity_gap(similarity: ArrayLike, labels: ArrayLike, labels_y: ArrayLike | None = None) -> SimilarityGap:
    """Mean same-class similarity minus mean cross-class similarity over all valid pairs."""
    s, same, cross = _prepare(similarity, labels, labels_y)
    if not bool(same.any()) or not bool(cross.any()):
        raise ValueError("labels: need at least one same-class and one cross-class pair")
    a, b = float(s[same].mean()), float(s[cross].mean())
    return SimilarityGap(gap=a - b, same=a, cross=b)


def per_input_gap(similarity: ArrayLike, labels: ArrayLike, labels_y: ArrayLike | None = None) -> torch.Tensor:
    """float64 [N]: for each row input, its mean similarity to same-class inputs minus its mean
    similarity to other-class inputs (NaN where one of the two sets is empty)."""
    s, same, cross = _prepare(similarity, labels, labels_y)
    same_mean = (s * same).sum(1) / same.sum(1)
    cross_mean = (s * cross).sum(1) / cross.sum(1)
    return same_mean - cross_mean


def goodness_curve(similarity: ArrayLike, labels: ArrayLike, labels_y: ArrayLike | None = None, *, gammas: ArrayLike | None = None, n_gammas: int = 101) -> GoodnessCurve:
    """eps(gamma) = share of inputs with per-input gap < gamma, on `gammas` (default: n_gammas
    values from 0 to the largest per-input gap). Inputs without a defined gap count as failures."""
    gaps = per_input_gap(similarity, labels, labels_y).numpy()
    if gammas is None:
        top = np.nanmax(gaps) if np.isfinite(gaps).any() else 0.0
        gammas = np.linspace(0.0, max(float(top), 0.0), n_gammas)
    gammas = np.asarray(gammas, dtype=np.float64)
    ok = np.where(np.isnan(gaps), -np.inf, gaps)
    eps = (ok[None, :] < gammas[:, None]).mean(axis=1)
    return GoodnessCurve(gamma=gammas, eps=eps)
