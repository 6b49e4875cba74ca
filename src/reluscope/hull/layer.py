"""The class hulls of one named layer of a model on a named image data set: what `reluscope hull
--layer` reports (crucial points, misinclusion, nearest-hull accuracy next to the network's)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from .._checks import as_enum, check_int
from ..data import DatasetName, ImageSet, Split, load_dataset, sample_per_class
from ..network.named import layer_features
from ..results import Result
from ..train import accuracy
from .classifier import OverfittingRow, overfitting_report
from .properties import ClassGeometry, class_geometry

__all__ = ["LayerHulls", "layer_hulls"]

_IMAGE_SETS = tuple(DatasetName(s.value) for s in ImageSet)


@dataclass(frozen=True)
class LayerHulls(Result):
    """`geometry` of the layer's activations (training points; misinclusion on train and test) and
    its nearest-convex-hull `report` row, for `per_class` training points per class (test: half as
    many) of `data`, drawn with `seed`."""

    layer: str
    data: DatasetName
    per_class: int
    seed: int
    geometry: ClassGeometry
    report: OverfittingRow


def layer_hulls(
    model: nn.Module,
    layer: str,
    *,
    data: DatasetName | str = DatasetName.MNIST,
    per_class: int = 100,
    seed: int = 0,
) -> LayerHulls:
    """Class hulls of `layer`'s activations (a name as in `reluscope.activations`) on `data`
    ("mnist" or "fashion-mnist"): per_class training points per class and half as many test points,
    sampled with a torch generator seeded by `seed`."""
    data = as_enum(data, DatasetName, "data")
    if data not in _IMAGE_SETS:
        raise ValueError(f"data: expected one of {[d.value for d in _IMAGE_SETS]}, got {data.value!r}")
    per_class = check_int(per_class, "per_class")
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    xtr, ytr = load_dataset(data, Split.TRAIN)
    xte, yte = load_dataset(data, Split.TEST)
    itr = sample_per_class(ytr, per_class, generator=gen)
    ite = sample_per_class(yte, max(1, per_class // 2), generator=gen)
    a_tr = layer_features(model, xtr[itr], layer).numpy()
    a_te = layer_features(model, xte[ite], layer).numpy()
    y_tr, y_te = np.asarray(ytr[itr]), np.asarray(yte[ite])
    geo = class_geometry(a_tr, y_tr, x_test=a_te, y_test=y_te)
    rows = overfitting_report([(layer, a_tr, a_te)], y_tr, y_te,
                              net_train=accuracy(model, xtr[itr], ytr[itr]), net_test=accuracy(model, xte[ite], yte[ite]))
    return LayerHulls(layer, data, per_class, seed, geo, rows[0])
