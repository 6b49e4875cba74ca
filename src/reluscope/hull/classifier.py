"""Nearest-convex-hull classification (Jia et al.): predict the class whose hull is nearest.

sklearn-style: `NearestConvexHull(mode=...).fit(X, y)`, `predict`, `score`, `decision_function`
(distances [M, C], smaller = more likely). Training points are classified leave-one-out
(`predict_train()` / `score(X, y, loo=True)` on the fitted data): a point's own class hull is built
without it, otherwise every training point would sit in its own hull at distance 0. A class with a
single training point has no hull left without it: that distance is infinite.
Ties (e.g. a point inside two hulls) go to the first class in sorted label order.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

import numpy as np
import torch

from .._checks import as_enum, check_positive
from .._estimator import Estimator
from ..network.named import layer_features
from ..results import Result, frame
from .distance import hull_distance_bounds, prepare_points
from .properties import MISINCLUSION_FRACTION, _radius
from .rge import revised_greedy_expansion

if TYPE_CHECKING:
    import torch.nn as nn
    from .._types import ArrayLike
    from collections.abc import Sequence


def _labels(y) -> np.ndarray:
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    return np.asarray(y)

__all__ = ["HullMode", "NearestConvexHull", "OverfittingRow", "OverfittingReport", "overfitting_report"]


class HullMode(str, Enum):
    """exact: every training point spans its class hull (the default: exact and, with the batched
    active-set solver, fast enough at a few thousand points per class).
    rge: each class hull is replaced by its Revised Greedy Expansion subset (|E| <= N/10), cheaper
    to query, distances off by at most RGE's error."""

    EXACT = "exact"
    RGE = "rge"


class NearestConvexHull(Estimator):
    """Nearest-convex-hull classifier: predict the class whose training hull is nearest.

    `fit(X, y)` keeps, per class, the points that span its hull (all of them in `mode="exact"`,
    an RGE approximation in `mode="rge"`, with `rge_inside_distance` and `rge_stop`); `decision_function`
    gives each row's exact distance to each class hull, `predict` the nearest class, and
    `loo=True` on the training data leaves each point out of its own class hull. `tol` is the
    distance solver's tolerance. With `model` and `layer` (a module name or a list of them, as in
    `reluscope.activations`), X are the model's inputs and the hulls live in that layer's
    activations. Follows scikit-learn's estimator conventions (fitted state ends
    in `_`).
    """

    def __init__(self, *, mode: HullMode | str = HullMode.EXACT, tol: float = 1e-7, rge_inside_distance: float = 0.03, rge_stop: float = 0.06,
                 device: torch.device | str | None = None, model: nn.Module | None = None,
                 layer: str | Sequence[str] | None = None):
        # with `model` and `layer` (a name or a list, see reluscope.activations), X are the model's
        # inputs and the hulls live in that layer's activations (a list: concatenated)
        self._store(locals())

    def fit(self, X: ArrayLike, y: ArrayLike):
        mode = as_enum(self.mode, HullMode, "mode")
        check_positive(float(self.tol), "tol")
        x = prepare_points(self._features(X), "X", min_points=2)
        y = _labels(y)
        if y.ndim != 1 or y.shape[0] != x.shape[0]:
            raise ValueError(f"y: expected one label per row of X ({x.shape[0]}), got shape {list(y.shape)}")
        self.classes_ = np.unique(y)
        if self.classes_.size < 2:
            raise ValueError(f"y: expected at least 2 classes, got {self.classes_.size}")
        self.X_ = x
        self.y_ = y
        self.n_features_in_ = x.shape[1]
        self.members_ = []  # per class: indices into X_ that span its hull
        for c in self.classes_:
            idx = np.flatnonzero(y == c)
            if mode is HullMode.RGE and idx.size >= 20:
                sel = revised_greedy_expansion(x[idx], inside_distance=self.rge_inside_distance, stop=self.rge_stop).indices
                idx = idx[sel]
            self.members_.append(idx)
        # misinclusion tolerances scale with each class's own points (not its RGE subset)
        self.radius_ = np.array([_radius(x[torch.from_numpy(y == c)]) for c in self.classes_])
        return self

    def _features(self, X):
        if self.model is None and self.layer is None:
            return X
        return layer_features(self.model, X, self.layer)

    def _check_fitted(self):
        if not hasattr(self, "members_"):
            raise RuntimeError("NearestConvexHull: call fit(X, y) before predict/score/decision_function")

    def _rows(self, X, loo):
        self._check_fitted()
        x = prepare_points(X if loo else self._features(X), "X")
        if x.shape[1] != self.n_features_in_:
            raise ValueError(f"X: expected {self.n_features_in_} features, got {x.shape[1]}")
        if loo and (x.shape != self.X_.shape or not torch.equal(x, self.X_)):
            raise ValueError("loo=True: X must be the training data passed to fit")
        return x

    def _bounds(self, x, k, rows, loo, tol, lower, upper):
        """Fill lower/upper [M, C] at column k for the given rows (int array) at tolerance tol."""
        idx = self.members_[k]
        pts = self.X_[torch.from_numpy(idx)]
        allowed = None
        if loo:
            pos = np.full(self.X_.shape[0], -1)
            pos[idx] = np.arange(idx.size)
            allowed = torch.ones(rows.size, idx.size, dtype=torch.bool)
            own = pos[rows] >= 0
            allowed[torch.from_numpy(np.flatnonzero(own)), torch.from_numpy(pos[rows[own]])] = False
            empty = (~allowed.any(1)).numpy()
            if empty.any():  # a one-point class has no hull without that point
                lower[rows[empty], k] = upper[rows[empty], k] = np.inf
                rows, allowed = rows[~empty], allowed[torch.from_numpy(~empty)]
        if rows.size == 0:
            return
        res = hull_distance_bounds(pts, x[torch.from_numpy(rows)], tol=tol, allowed=allowed, device=self.device)
        lower[rows, k], upper[rows, k] = res.lower, res.upper

    def decision_function(self, X: ArrayLike, *, loo: bool = False) -> np.ndarray:
        """float64 [M, C]: distance of each row to each class hull. loo=True: X must be the
        training data; each row is left out of its own class hull."""
        x = self._rows(X, loo)
        lower = np.empty((x.shape[0], self.classes_.size))
        upper = np.empty_like(lower)
        every = np.arange(x.shape[0])
        for k in range(self.classes_.size):
            self._bounds(x, k, every, loo, self.tol, lower, upper)
        return upper

    def classify(self, X: ArrayLike, y: ArrayLike | None = None, *, loo: bool = False, inside_fraction: float | None = None):
        """(predicted labels [M], misincluded [M] bool or None) without exact distances where the
        answer is already decided: a coarse pass (tolerance 1e-2 of the radius) gives certified
        bounds; only (row, class) pairs whose interval could change the nearest class, or the
        inside/outside test at inside_fraction * radius of another class's hull (given labels y), are solved
        to `tol`. Same answers as `decision_function` (up to ties within tol)."""
        x = self._rows(X, loo)
        m, c = x.shape[0], self.classes_.size
        lower, upper = np.empty((m, c)), np.empty((m, c))
        every = np.arange(m)
        coarse = max(self.tol, 1e-2)
        for k in range(c):
            self._bounds(x, k, every, loo, coarse, lower, upper)
        if coarse > self.tol:
            best = upper.min(axis=1, keepdims=True)
            need = lower < best  # could still be (or tie with) the nearest
            need &= ~(upper <= lower)  # already exact
            if y is not None and inside_fraction is not None:
                thr = inside_fraction * self.radius_[None, :]
                other = self.classes_[None, :] != _labels(y)[:, None]
                need |= other & (lower <= thr) & (upper > thr)
            for k in range(c):
                rows = np.flatnonzero(need[:, k])
                self._bounds(x, k, rows, loo, self.tol, lower, upper)
        pred = self.classes_[upper.argmin(axis=1)]
        mis = None
        if y is not None and inside_fraction is not None:
            other = self.classes_[None, :] != _labels(y)[:, None]
            mis = ((upper <= inside_fraction * self.radius_[None, :]) & other).any(axis=1)
        return pred, mis

    def predict(self, X: ArrayLike, *, loo: bool = False) -> np.ndarray:
        return self.classify(X, loo=loo)[0]

    def predict_train(self) -> np.ndarray:
        self._check_fitted()
        return self.predict(self.X_, loo=True)

    def score(self, X: ArrayLike, y: ArrayLike, *, loo: bool = False) -> float:
        return float((self.predict(X, loo=loo) == _labels(y)).mean())


@dataclass(frozen=True)
class OverfittingRow(Result):
    """One layer: misinclusion (share of points inside another class's hull) on train and test and
    their ratio (> 2 signals overfitting per the paper), NCH train (leave-one-out) and test accuracy
    and their ratio TR/TE, next to the network's own accuracies."""

    layer: str
    misinclusion_train: float
    misinclusion_test: float
    misinclusion_ratio: float
    nch_train: float
    nch_test: float
    tr_te: float
    net_train: float
    net_test: float


@dataclass(frozen=True)
class OverfittingReport(Result):
    """The per-layer rows of `overfitting_report`, in layer order; iterates and indexes like a list."""

    rows: tuple[OverfittingRow, ...]

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]

    def to_frame(self):
        """pandas.DataFrame, one row per layer (pandas is optional)."""
        return frame([dataclasses.asdict(r) for r in self.rows], "OverfittingReport")


def overfitting_report(layers: Sequence[tuple[str, ArrayLike, ArrayLike]], y_train: ArrayLike, y_test: ArrayLike, *, net_train: float, net_test: float, mode: HullMode | str = HullMode.EXACT,
                       inside_fraction: float = MISINCLUSION_FRACTION) -> OverfittingReport:
    """layers: sequence of (name, activations_train, activations_test). One row per layer.
    Misinclusion: within inside_fraction of another class's hull, relative to that hull's radius (the
    paper's 0.03). Labels may be numpy arrays, lists or torch tensors."""
    y_train, y_test = _labels(y_train), _labels(y_test)
    rows = []
    for name, a_tr, a_te in layers:
        model = NearestConvexHull(mode=mode).fit(a_tr, y_train)
        p_tr, mis_tr = model.classify(a_tr, y_train, loo=True, inside_fraction=inside_fraction)
        p_te, mis_te = model.classify(a_te, y_test, inside_fraction=inside_fraction)
        acc_tr = float((p_tr == y_train).mean())
        acc_te = float((p_te == y_test).mean())
        m_tr, m_te = float(mis_tr.mean()), float(mis_te.mean())
        rows.append(OverfittingRow(
            name, m_tr, m_te, (m_te / m_tr) if m_tr > 0 else (float("inf") if m_te > 0 else float("nan")),
            acc_tr, acc_te, acc_tr / acc_te if acc_te > 0 else float("inf"), net_train, net_test,
        ))
    return OverfittingReport(tuple(rows))
