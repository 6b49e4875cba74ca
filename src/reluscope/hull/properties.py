"""Geometric properties of class-wise point clouds (activations of one layer), per Jia et al.

* within-class pairwise distance histograms (the paper finds them unimodal);
* the share of "crucial" (extreme) points: not within a tolerance of the hull of the class's other
  points;
* misinclusion: the share of a set of points that lies within a tolerance of another class's hull.

The tolerances (`inside_fraction`) are relative to the class hull's radius (largest distance of a point of that hull from its
centroid), so the same default works for every layer's scale. Misinclusion uses the paper's
tolerance 0.03 (the paper states it in the units of its data; activations have no common unit, so
we read it as 0.03 of the hull's radius: docs/methods.md). The crucial-point test keeps 1e-6:
a point is extreme unless it is (numerically) inside the hull of the others.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from .._checks import check_positive
from .._types import ArrayLike
from ..network.named import layer_features
from ..results import Result
from .distance import hull_distance_bounds, prepare_points

__all__ = ["ClassGeometry", "class_geometry", "crucial_share", "misinclusion", "pairwise_distance_histogram"]


def _radius(x: torch.Tensor) -> float:
    return float((x - x.mean(0)).norm(dim=1).max())


MISINCLUSION_FRACTION = 0.03
"""The paper's inside tolerance, here relative to the radius of the hull tested against."""
MISINCLUSION_EPS = MISINCLUSION_FRACTION  # the previous name


def hull_radius(x: ArrayLike) -> float:
    """Largest distance of a point from the centroid (the scale relative tolerances refer to)."""
    return _radius(prepare_points(x, "points"))


def _labels(y, n, name="y"):
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{name}: expected one label per point ({n}), got shape {list(y.shape)}")
    return y


def crucial_share(points: ArrayLike, *, inside_fraction: float = 1e-6, tol: float = 1e-9) -> float:
    """Share of points not within inside_fraction * radius of the hull of the other points (extreme points)."""
    check_positive(float(inside_fraction), "inside_fraction")
    x = prepare_points(points, "points", min_points=2)
    n = x.shape[0]
    allowed = ~torch.eye(n, dtype=torch.bool)
    inside_distance = inside_fraction * max(_radius(x), 1e-300)
    res = hull_distance_bounds(x, x, tol=tol, inside_distance=inside_distance, allowed=allowed)
    return float((res.upper > inside_distance).mean())


def misinclusion(points: ArrayLike, others: ArrayLike, *, inside_fraction: float = MISINCLUSION_FRACTION, tol: float = 1e-9) -> float:
    """Share of `others` within inside_fraction * radius of the hull of `points` (radius: largest distance of
    one of `points` from their centroid)."""
    return float(_inside(points, others, inside_fraction, tol).mean())


def _inside(points, others, inside_fraction, tol) -> np.ndarray:
    check_positive(float(inside_fraction), "inside_fraction")
    x = prepare_points(points, "points")
    o = prepare_points(others, "others")
    inside_distance = inside_fraction * max(_radius(x), 1e-300)
    res = hull_distance_bounds(x, o, tol=tol, inside_distance=inside_distance)
    return res.upper <= inside_distance


def pairwise_distance_histogram(points: ArrayLike, *, bins: int = 40, max_pairs: int = 200_000, seed: int = 0):
    """(counts, edges) of within-set pairwise Euclidean distances (random pairs if too many)."""
    x = prepare_points(points, "points", min_points=2).cpu().numpy()
    n = x.shape[0]
    if n * (n - 1) // 2 <= max_pairs:
        i, j = np.triu_indices(n, 1)
    else:
        rng = np.random.default_rng(seed)
        i, j = rng.integers(0, n, max_pairs), rng.integers(0, n, max_pairs)
        keep = i != j
        i, j = i[keep], j[keep]
    d = np.linalg.norm(x[i] - x[j], axis=1)
    return np.histogram(d, bins=bins)


@dataclass(frozen=True)
class ClassGeometry(Result):
    """classes [C]; crucial [C] share of extreme points; misinclusion_train / _test [C, C]: entry
    (a, b) = share of class a's points inside class b's training hull (diagonal 0);
    misincluded_train [N] / misincluded_test [M]: whether each point lies inside the training hull
    of some other class (each point counted once); histograms: per class (counts, edges) of
    within-class distances; inside_fraction: the misinclusion tolerance, relative to each hull's radius."""

    classes: np.ndarray
    crucial: np.ndarray
    misinclusion_train: np.ndarray
    misinclusion_test: np.ndarray | None
    misincluded_train: np.ndarray
    misincluded_test: np.ndarray | None
    histograms: tuple
    inside_fraction: float

    def mean_misinclusion(self, split: str = "train") -> float:
        """Share of the split's points that lie inside another class's hull. A point inside
        several other hulls counts once (summing the [C, C] matrix would count it once per hull)."""
        if split not in ("train", "test"):
            raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
        m = self.misincluded_train if split == "train" else self.misincluded_test
        if m is None:
            raise ValueError("mean_misinclusion: no test data was given to class_geometry")
        return float(m.mean()) if m.size else 0.0


def class_geometry(x: ArrayLike, y: ArrayLike, *, x_test: ArrayLike | None = None, y_test: ArrayLike | None = None,
                   inside_fraction: float = MISINCLUSION_FRACTION, crucial_inside_fraction: float = 1e-6,
                   bins: int = 40, model: nn.Module | None = None, layer: str | list[str] | None = None) -> ClassGeometry:
    """Per-class crucial-point share (tolerance `crucial_inside_fraction`), misinclusion (train and
    test; tolerance `inside_fraction`, both relative to the hull's radius) and distance histograms.

    With `model` and `layer` (see reluscope.activations), x and x_test are the model's inputs and
    the geometry is that of the named layer's activations."""
    if model is not None or layer is not None:
        x = layer_features(model, x, layer)
        x_test = None if x_test is None else layer_features(model, x_test, layer)
    xt = prepare_points(x, "x", min_points=2)
    y = _labels(y, xt.shape[0])
    classes = np.unique(y)
    parts = {c: xt[torch.from_numpy(y == c)] for c in classes}
    crucial = np.array([crucial_share(parts[c], inside_fraction=crucial_inside_fraction) if parts[c].shape[0] > 1 else 1.0 for c in classes])
    mis, flagged = _misinclusion_matrix(parts, classes, xt, y, inside_fraction)
    mis_test = flagged_test = None
    if x_test is not None:
        xs = prepare_points(x_test, "x_test")
        ys = _labels(y_test, xs.shape[0], "y_test")
        mis_test, flagged_test = _misinclusion_matrix(parts, classes, xs, ys, inside_fraction)
    hists = tuple(pairwise_distance_histogram(parts[c], bins=bins) for c in classes if parts[c].shape[0] > 1)
    return ClassGeometry(classes, crucial, mis, mis_test, flagged, flagged_test, hists, float(inside_fraction))


def _misinclusion_matrix(parts, classes, xs, ys, inside_fraction):
    """([C, C] shares, [M] bool inside-some-other-hull) for points xs with labels ys."""
    mis = np.zeros((len(classes), len(classes)))
    flagged = np.zeros(xs.shape[0], dtype=bool)
    for b, cb in enumerate(classes):
        other = ys != cb
        if not other.any():
            continue
        inside = _inside(parts[cb], xs[torch.from_numpy(other)], inside_fraction, 1e-9)
        pos = np.flatnonzero(other)
        flagged[pos[inside]] = True
        for a, ca in enumerate(classes):
            if a != b:
                sel = ys[pos] == ca
                mis[a, b] = float(inside[sel].mean()) if sel.any() else 0.0
    return mis, flagged
