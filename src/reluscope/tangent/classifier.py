"""Classifiers on a similarity function, sklearn-style (fit / predict / score).

Both keep the fitted inputs as landmarks and represent a new input by its similarities to them.
`LandmarkClassifier` predicts the class of highest mean similarity; `LinearSimilarityClassifier`
fits a small multinomial logistic regression (or ridge regression) on the standardised similarity
vector, in torch (no scikit-learn needed).

With `model=None` the classifiers take precomputed similarities (sklearn's "precomputed kernel"
convention): `fit(K_train, y)` with K_train [n, n] among the landmarks (or [m, n]: m other labelled
inputs against the n landmarks) and `predict(K)` with K [N, n] against them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from .._checks import as_enum
from .._estimator import Estimator
from .features import DEFAULT_MEMORY_BUDGET
from .similarity import Metric, tangent_similarity
from .sparse import DEFAULT_THRESHOLD, check_labels, sign_agreement_mask

if TYPE_CHECKING:
    import torch.nn as nn
    from .features import Normalization
    from .scores import ScoreMethod
    from .._types import ArrayLike

__all__ = ["LandmarkClassifier", "LinearSimilarityClassifier"]


class _SimilarityClassifier(Estimator):
    def __init__(
        self,
        model: nn.Module | None = None,
        *,
        metric: Metric | str = "block",
        per_output: bool = True,
        normalize: Normalization | str = "none",
        threshold: float = DEFAULT_THRESHOLD,
        method: ScoreMethod | str = "auto",
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        progress: bool = False,
    ):
        self._store(locals())

    # -- helpers -------------------------------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "classes_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted yet; call fit(x, y) first")

    def _similarity(self, x, landmarks) -> torch.Tensor:
        if self.model is None:
            s = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
            if s.dim() != 2 or s.shape[1] != self.n_landmarks_:
                raise ValueError(
                    f"x: with model=None, expected precomputed similarities [N, {self.n_landmarks_}], "
                    f"got shape {list(s.shape)}"
                )
            return s.to(torch.float64)
        return tangent_similarity(
            self.model, x, landmarks, metric=self.metric, per_output=self.per_output,
            normalize=self.normalize, mask=getattr(self, "mask_", None), method=self.method,
            memory_budget=self.memory_budget, progress=self.progress,
        ).to(torch.float64).cpu()

    def _fit_landmarks(self, x, y) -> torch.Tensor:
        """Store landmarks (and the sparse mask) and return the training similarities."""
        metric = as_enum(self.metric, Metric, "metric")
        n = x.shape[0] if hasattr(x, "shape") else len(x)
        labels = check_labels(y, n, "y")
        self.classes_, self.y_index_ = torch.unique(labels, return_inverse=True)
        if self.classes_.numel() < 2:
            raise ValueError(f"y: expected at least two classes, got {self.classes_.tolist()}")
        if self.model is None:
            # precomputed [n, n_landmarks]: rows may be other inputs than the landmarks (fitting on
            # held-out images' similarities to the landmarks)
            s = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
            self.n_landmarks_ = int(s.shape[1]) if s.dim() == 2 else n
        else:
            self.n_landmarks_ = n
        if self.model is None:
            self.landmarks_ = None
            return self._similarity(x, None)
        self.landmarks_ = x
        if metric is Metric.SPARSE:
            self.mask_ = sign_agreement_mask(
                self.model, x, labels, threshold=self.threshold, memory_budget=self.memory_budget,
            )
        return self._similarity(x, x)

    def predict(self, x) -> torch.Tensor:
        self._check_fitted()
        return self.classes_[self.decision_function(x).argmax(dim=1)]

    def score(self, x, y) -> float:
        pred = self.predict(x)
        labels = check_labels(y, pred.shape[0], "y")
        return float((pred == labels).double().mean())


class LandmarkClassifier(_SimilarityClassifier):
    """Predict the class whose landmarks are, on average, most similar to the input."""

    def fit(self, x: ArrayLike, y: ArrayLike) -> "LandmarkClassifier":
        self._fit_landmarks(x, y)
        onehot = torch.nn.functional.one_hot(self.y_index_, self.classes_.numel()).to(torch.float64)
        self.class_weights_ = onehot / onehot.sum(0, keepdim=True)  # [n_landmarks, C] means
        return self

    def decision_function(self, x: ArrayLike) -> torch.Tensor:
        """[N, C]: mean similarity to each class's landmarks."""
        self._check_fitted()
        return self._similarity(x, self.landmarks_) @ self.class_weights_


class LinearSimilarityClassifier(_SimilarityClassifier):
    """A linear model on the vector of similarities to the landmarks.

    loss="logistic" (default): multinomial logistic regression with an L2 penalty `alpha`,
    fitted by L-BFGS in float64; loss="ridge": one-vs-rest least squares on one-hot targets,
    closed form. Features are standardised with the training similarities' mean and std.
    """

    def __init__(self, model: nn.Module | None = None, *, loss: str = "logistic", alpha: float = 1e-2, max_iter: int = 200,
                 **kwargs: object):
        super().__init__(model, **kwargs)
        self._store(locals())

    def _features(self, s: torch.Tensor) -> torch.Tensor:
        return (s - self.mean_) / self.scale_

    def fit(self, x: ArrayLike, y: ArrayLike) -> "LinearSimilarityClassifier":
        if self.loss not in ("logistic", "ridge"):
            raise ValueError(f"loss: expected 'logistic' or 'ridge', got {self.loss!r}")
        if not (self.alpha >= 0):
            raise ValueError(f"alpha: expected a number >= 0, got {self.alpha!r}")
        s = self._fit_landmarks(x, y)
        self.mean_ = s.mean(0, keepdim=True)
        std = s.std(0, keepdim=True)
        self.scale_ = torch.where(std > 0, std, torch.ones_like(std))
        a = self._features(s)
        n, d = a.shape
        c = self.classes_.numel()
        onehot = torch.nn.functional.one_hot(self.y_index_, c).to(torch.float64)
        if self.loss == "ridge":
            ym = onehot.mean(0, keepdim=True)
            gram = a.T @ a + self.alpha * n * torch.eye(d, dtype=torch.float64)
            self.coef_ = torch.linalg.solve(gram, a.T @ (onehot - ym))
            self.intercept_ = ym.reshape(-1)
            return self
        w = torch.zeros(d, c, dtype=torch.float64, requires_grad=True)
        b = torch.zeros(c, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([w, b], max_iter=self.max_iter, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(a @ w + b, self.y_index_) + 0.5 * self.alpha * (w * w).sum()
            loss.backward()
            return loss

        with torch.enable_grad():
            opt.step(closure)
        self.coef_, self.intercept_ = w.detach(), b.detach()
        return self

    def decision_function(self, x: ArrayLike) -> torch.Tensor:
        """[N, C]: class scores (logits, or ridge predictions)."""
        self._check_fitted()
        return self._features(self._similarity(x, self.landmarks_)) @ self.coef_ + self.intercept_
