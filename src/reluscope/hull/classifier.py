"""Nearest-convex-hull classification (Jia et al.): predict the class whose hull is nearest.

sklearn-style: `NearestConvexHull(mode=...).fit(X, y)`, `predict`, `score`, `decision_function`
(distances [M, C], smaller = more likely). Training points are classified leave-one-out
(`predict_train()` / `score(X, y, loo=True)` on the fitted data): a point's own class hull is built
without it, otherwise every training point would sit in its own hull at distance 0.
Ties (e.g. a point inside two hulls) go to the first class in sorted label order.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum

import numpy as np
import torch

from .._checks import as_enum, check_positive
from ..results import Result, frame
from .distance import hull_distance_bounds, prepare_points
from .rge import revised_greedy_expansion

__all__ = ["HullMode", "NearestConvexHull", "OverfittingRow", "OverfittingReport", "overfitting_report"]


class HullMode(str, Enum):
    """exact: every training point spans its class hull (the default: exact and, with the batched
    active-set solver, fast enough at a few thousand points per class).
    rge: each class hull is replaced by its Revised Greedy Expansion subset (|E| <= N/10), cheaper
    to query, distances off by at most RGE's error."""

    EXACT = "exact"
    RGE = "rge"


class NearestConvexHull:
    def __init__(self, *, mode: HullMode | str = HullMode.EXACT, tol: float = 1e-7, rge_eps: float = 0.03, rge_stop: float = 0.06, device=None,
                 model=None, layer=None):
        # with `model` and `layer` (a name or a list, see reluscope.activations), X are the model's
        # inputs and the hulls live in that layer's activations (a list: concatenated)
        self.model = model
        self.layer = layer
        self.mode = mode
        self.tol = tol
        self.rge_eps = rge_eps
        self.rge_stop = rge_stop
        self.device = device

    def fit(self, X, y):
        mode = as_enum(self.mode, HullMode, "mode")
        check_positive(float(self.tol), "tol")
        x = prepare_points(self._features(X), "X", min_points=2)
        y = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
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
                sel = revised_greedy_expansion(x[idx], eps=self.rge_eps, stop=self.rge_stop).indices
                idx = idx[sel]
            self.members_.append(idx)
        return self

    def _features(self, X):
        if self.model is None and self.layer is None:
            return X
        from ..network.named import layer_features

        return layer_features(self.model, X, self.layer)

    def _check_fitted(self):
        if not hasattr(self, "members_"):
            raise RuntimeError("NearestConvexHull: call fit(X, y) before predict/score/decision_function")

    def decision_function(self, X, *, loo: bool = False) -> np.ndarray:
        """float64 [M, C]: distance of each row to each class hull. loo=True: X must be the
        training data; each row is left out of its own class hull."""
        self._check_fitted()
        x = prepare_points(X if loo else self._features(X), "X")
        if x.shape[1] != self.n_features_in_:
            raise ValueError(f"X: expected {self.n_features_in_} features, got {x.shape[1]}")
        if loo and (x.shape != self.X_.shape or not torch.equal(x, self.X_)):
            raise ValueError("loo=True: X must be the training data passed to fit")
        out = np.empty((x.shape[0], self.classes_.size))
        for k, idx in enumerate(self.members_):
            pts = self.X_[torch.from_numpy(idx)]
            allowed = None
            if loo:
                pos = {int(i): j for j, i in enumerate(idx)}
                allowed = torch.ones(x.shape[0], idx.size, dtype=torch.bool)
                rows = [r for r in range(x.shape[0]) if r in pos]
                allowed[rows, [pos[r] for r in rows]] = False
                empty = ~allowed.any(1)
                allowed[empty] = True  # solved for the solver's sake, then set to +inf below
            res = hull_distance_bounds(pts, x, tol=self.tol, allowed=allowed, device=self.device)
            out[:, k] = res.distance
            if loo:  # a class whose only point is left out has no hull: infinitely far, not 0
                out[empty.numpy(), k] = np.inf
        return out

    def predict(self, X, *, loo: bool = False) -> np.ndarray:
        self._check_fitted()
        return self.classes_[self.decision_function(X, loo=loo).argmin(axis=1)]

    def predict_train(self) -> np.ndarray:
        self._check_fitted()
        return self.predict(self.X_, loo=True)

    def score(self, X, y, *, loo: bool = False) -> float:
        return float((self.predict(X, loo=loo) == np.asarray(y)).mean())


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


def _mis_any(model: NearestConvexHull, d: np.ndarray, y: np.ndarray, eps: float) -> float:
    other = model.classes_[None, :] != np.asarray(y)[:, None]
    return float(((d <= eps) & other).any(axis=1).mean())


def overfitting_report(layers, y_train, y_test, *, net_train: float, net_test: float, mode: HullMode | str = HullMode.EXACT, eps: float = 1e-6) -> OverfittingReport:
    """layers: sequence of (name, activations_train, activations_test). One row per layer."""
    rows = []
    for name, a_tr, a_te in layers:
        model = NearestConvexHull(mode=mode).fit(a_tr, y_train)
        scale = float(np.abs(np.asarray(a_tr)).max()) or 1.0
        d_tr = model.decision_function(a_tr, loo=True)
        d_te = model.decision_function(a_te)
        acc_tr = float((model.classes_[d_tr.argmin(1)] == y_train).mean())
        acc_te = float((model.classes_[d_te.argmin(1)] == y_test).mean())
        m_tr = _mis_any(model, d_tr, y_train, eps * scale)
        m_te = _mis_any(model, d_te, y_test, eps * scale)
        rows.append(OverfittingRow(
            name, m_tr, m_te, (m_te / m_tr) if m_tr > 0 else (float("inf") if m_te > 0 else float("nan")),
            acc_tr, acc_te, acc_tr / acc_te if acc_te > 0 else float("inf"), net_train, net_test,
        ))
    return OverfittingReport(tuple(rows))
