"""The explorer on a saved model: exact regions of a plane through three test images.

For a model of 2-D inputs the plane is the input plane itself, on a box around the origin. For
image models the plane goes through one test image of each of three chosen classes (the first of
each class in the test split, so the choice is reproducible); the page shows the three images at
their anchors and, on a click, the input image at any point of the plane.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..folding import path_folding
from ..regions import Plane, regions_2d
from .views import Frame, SegmentView, as_point, frame_from_map, region_info, segment_view

if TYPE_CHECKING:
    from .._types import ArrayLike

__all__ = ["PlaneView", "PlaneFrame"]

_BOX_2D = (-3.0, 3.0, -3.0, 3.0)


@dataclass(frozen=True)
class PlaneFrame:
    """A region map of the plane through `classes`' images, with the images at the anchors."""

    frame: Frame
    classes: list
    anchors: list
    images: list
    image_shape: list

    def to_dict(self) -> dict:
        return {**self.frame.to_dict(), "classes": self.classes, "anchors": self.anchors,
                "images": self.images, "image_shape": self.image_shape}


class PlaneView:
    """Regions, traversals and images on planes through a saved model's input space.

    `images`, `labels`: the test split used to pick the three images (ignored for 2-D models).
    """

    def __init__(self, model: torch.nn.Module, *, name: str, images: torch.Tensor | None = None, labels: torch.Tensor | None = None):
        self.model = model.eval().double()
        self.name = name
        # the first Linear or Conv2d defined says what the model reads: flat vectors or images
        first = next((m for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))), None)
        conv = isinstance(first, torch.nn.Conv2d)
        self.in_features = first.in_features if isinstance(first, torch.nn.Linear) else None
        self.two_d = self.in_features == 2
        self.input_shape: tuple | None = None  # the model's input shape for images (None: flat)
        if not self.two_d:
            if images is None or labels is None:
                what = f"{self.in_features} numbers" if self.in_features else "images"
                raise ValueError(f"model {name!r}: its input has {what}, so a test set is needed to pick images")
            flat = images.reshape(len(images), -1)
            if self.in_features is not None and flat.shape[1] != self.in_features:
                raise ValueError(
                    f"model {name!r} expects inputs of {self.in_features} numbers but the test images have {flat.shape[1]}; "
                    "pass the data set the model was trained on (--data)"
                )
            self.images, self.labels = flat.double(), labels
            side = int(round(flat.shape[1] ** 0.5))
            self.image_shape = [side, side] if side * side == flat.shape[1] else [1, flat.shape[1]]
            if conv:
                c = first.in_channels
                side = int(round((flat.shape[1] / c) ** 0.5))
                if c * side * side != flat.shape[1]:
                    raise ValueError(
                        f"model {name!r} starts with a convolution over {c} channels, but the test images have "
                        f"{flat.shape[1]} numbers, not {c} square channels; pass the data set the model was trained on (--data)"
                    )
                self.input_shape, self.image_shape = (c, side, side), [c * side, side]  # channels stacked
        self.plane: Plane | None = None
        self._map = None
        self._classes: list = []

    def describe(self) -> dict:
        if self.two_d:
            return {"model": self.name, "input": "plane", "box": list(_BOX_2D)}
        classes = sorted({int(c) for c in self.labels.tolist()})
        return {"model": self.name, "input": "images", "classes": classes,
                "default_classes": classes[1:4] if len(classes) > 3 else classes[:3], "image_shape": self.image_shape}

    def _parse(self, text: str) -> list[int]:
        available = set(self.labels.tolist())
        parts = [p for p in str(text).replace(" ", "").split(",") if p]
        if not parts:
            return self.describe()["default_classes"]
        if len(parts) != 3 or not all(p.lstrip("-").isdigit() for p in parts):
            raise ValueError(f"classes: expected three class labels like 1,4,7, got {text!r}")
        chosen = [int(p) for p in parts]
        missing = [c for c in chosen if c not in available]
        if missing:
            raise ValueError(f"classes: {missing} not in the test labels {sorted(available)}")
        return chosen

    def frame(self, classes_text: str = "") -> PlaneFrame:
        if self.two_d:
            self._map = regions_2d(self.model, box=_BOX_2D)
            return PlaneFrame(self._frame(), [], [], [], [])
        chosen = self._parse(classes_text)
        picks = []
        for k, c in enumerate(chosen):
            idx = torch.nonzero(self.labels == c).flatten()
            picks.append(int(idx[min(k if chosen.count(c) > 1 else 0, len(idx) - 1)]))
        a, b, c = (self._shaped(self.images[i]) for i in picks)
        self.plane = Plane.through_points(a, b, c)
        self._map = regions_2d(self.model, plane=self.plane, box=None)
        self._classes = chosen
        images = [np.round(self.images[i].numpy(), 4).tolist() for i in picks]
        return PlaneFrame(self._frame(), chosen, self.plane.anchors.tolist(), images, self.image_shape)

    def _frame(self) -> Frame:
        return frame_from_map(self._map, version=1, step=0, history={}, fiedler_side=None,
                              map_ms=0.0, map_every=1, remapped=True)

    def _shaped(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.input_shape is None else x.reshape(self.input_shape)

    def _inputs(self, p) -> torch.Tensor:
        st = as_point(p, "point")
        if self.two_d:
            return st
        if self.plane is None:
            self.frame()
        return self._shaped(self.plane.to_input(st.reshape(1, 2))[0].reshape(-1))

    def traverse(self, p0: ArrayLike, p1: ArrayLike) -> SegmentView:
        a, b = self._inputs(p0), self._inputs(p1)
        return segment_view(path_folding(self.model, a, b), [float(v) for v in p0], [float(v) for v in p1])

    def region_at(self, point: ArrayLike) -> dict:
        if self._map is None:
            self.frame()
        return region_info(self._map, as_point(point, "point").numpy())

    def image_at(self, point: ArrayLike) -> dict:
        if self.two_d:
            raise ValueError("this model's input is the plane itself: there is no image to show")
        x = self._inputs(point)
        return {"image": np.round(x.reshape(-1).numpy(), 4).tolist(), "shape": self.image_shape}
