"""The sparse metric's sign-agreement mask (docs/methods.md, section 5; as in the authors' code).

Per parameter coordinate j, over labelled inputs and their summed gradients g(x) (raw, before
normalisation: min-max scaling would make every sign positive), and for every class c:
A+ / A- count the pairs of inputs of class c whose gradients at j are both positive / both
negative, B+ / B- the same within the complement of c (all other classes). Summed over classes,
score_j = (A+ + B-) / (A- + B+), and the mask keeps the coordinates with score_j >= threshold
(1.15 by default). A coordinate with no counted pair at all (0 / 0) scores 0; one with a
numerator but no denominator scores +inf (kept).

Zeros count as neither sign (dead ReLU units give exact zeros), which is what the authors'
`count_nonzero` of the clipped gradients does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from .._checks import check_positive
from ..results import Result
from .features import (
    DEFAULT_MEMORY_BUDGET,
    Normalization,
    check_inputs,
    iter_features,
    trainable_parameters,
)

if TYPE_CHECKING:
    from .._types import ArrayLike
    import torch.nn as nn

__all__ = ["SignAgreementMask", "sign_agreement_scores", "sign_agreement_mask", "DEFAULT_THRESHOLD"]

DEFAULT_THRESHOLD = 1.15


@dataclass(frozen=True)
class SignAgreementMask(Result):
    """keep: bool [P] over the model's trainable coordinates; score: float64 [P]."""

    keep: torch.Tensor
    score: torch.Tensor
    threshold: float

    @property
    def n_kept(self) -> int:
        return int(self.keep.sum())

    @property
    def fraction(self) -> float:
        return self.n_kept / max(1, self.keep.numel())

    @property
    def index(self) -> torch.Tensor:
        return torch.nonzero(self.keep).reshape(-1)


def check_labels(labels: ArrayLike, n: int, name: str = "labels") -> torch.Tensor:
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu()
    labels = torch.as_tensor(labels)
    if labels.dtype.is_floating_point or labels.dtype == torch.bool or labels.is_complex():
        raise TypeError(f"{name}: expected integer class labels, got dtype {labels.dtype}")
    if labels.dim() != 1 or labels.shape[0] != n:
        raise ValueError(f"{name}: expected shape [{n}] (one label per input), got {list(labels.shape)}")
    return labels.long()


def _pairs(count: torch.Tensor) -> torch.Tensor:
    count = count.double()
    return count * (count - 1) / 2


def scores_from_counts(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """pos, neg: [C, P] per-class counts of positive / negative gradient entries -> score [P]."""
    pos_all, neg_all = pos.sum(0), neg.sum(0)
    a_pos = _pairs(pos).sum(0)
    a_neg = _pairs(neg).sum(0)
    b_pos = _pairs(pos_all[None] - pos).sum(0)
    b_neg = _pairs(neg_all[None] - neg).sum(0)
    num, den = a_pos + b_neg, a_neg + b_pos
    score = torch.where(den > 0, num / torch.where(den > 0, den, 1), torch.where(num > 0, torch.inf, 0.0))
    return score


def _class_counts(g: torch.Tensor, labels: torch.Tensor, classes: torch.Tensor):
    onehot = (labels[:, None] == classes[None, :].to(labels.device)).to(torch.float64)  # [n, C]
    pos = onehot.T @ (g > 0).to(torch.float64)
    neg = onehot.T @ (g < 0).to(torch.float64)
    return pos, neg


def sign_agreement_scores(gradients: torch.Tensor, labels: ArrayLike) -> torch.Tensor:
    """score [P] from a gradient matrix [N, P] and labels [N] (the pure form, no model)."""
    if gradients.dim() != 2:
        raise ValueError(f"gradients: expected shape [N, P], got {list(gradients.shape)}")
    labels = check_labels(labels, gradients.shape[0])
    classes = torch.unique(labels)
    pos, neg = _class_counts(gradients, labels.to(gradients.device), classes)
    return scores_from_counts(pos, neg)


def _mask(score: torch.Tensor, threshold: float) -> SignAgreementMask:
    keep = score >= threshold
    if not bool(keep.any()):
        finite = score[torch.isfinite(score)]
        best = float(finite.max()) if finite.numel() else float("nan")
        raise ValueError(
            f"threshold: {threshold} keeps no coordinate (the largest sign-agreement score is "
            f"{best:.4g}); choose a threshold below that, or use more labelled inputs"
        )
    return SignAgreementMask(keep=keep, score=score, threshold=float(threshold))


def sign_agreement_mask(
    model: nn.Module,
    x: ArrayLike,
    labels: ArrayLike,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: bool = False,
) -> SignAgreementMask:
    """The sparse metric's mask from labelled inputs x [N, ...], labels [N] (see module doc)."""
    params = trainable_parameters(model)
    x = check_inputs(params, x, "x", model=model)
    labels = check_labels(labels, x.shape[0])
    threshold = float(check_positive(float(threshold), "threshold", allow_zero=True))
    classes = torch.unique(labels)
    if classes.numel() < 2:
        raise ValueError(f"labels: expected at least two classes, got only {classes.tolist()}")
    pos = torch.zeros(classes.numel(), params.total, dtype=torch.float64, device=params.device)
    neg = torch.zeros_like(pos)
    for rows, g in iter_features(
        model, params, x, per_output=False, normalize=Normalization.NONE,
        memory_budget=memory_budget, progress=progress,
    ):
        p, q = _class_counts(g, labels[rows].to(g.device), classes)
        pos += p
        neg += q
    return _mask(scores_from_counts(pos, neg).cpu(), threshold)
