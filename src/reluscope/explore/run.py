"""The explorer's computation: one live training of a small 2-D network and the exact views of it.

`ExploreRun` holds the model, its optimiser and data, and turns the current network into a
`Frame`: the exact region map (`regions_2d`), the decision boundary, the Fiedler split and the
statistics charted over steps. Queries (`traverse`, `region_at`, `hulls`) answer on the model of
the last frame, so what the page shows and what a click reports always belong to one network.
Nothing here knows about HTTP; `server.py` only calls these methods and encodes their results.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from ..data import make_toy
from ..folding import path_folding
from ..regions import fiedler_partition, fiedler_score, regions_2d
from ..regions.topology import random_summary
from ..train import mlp
from .config import ExploreConfig, OptimizerName
from .views import Frame, HullView, hull_view, SegmentView, as_point, frame_from_map, region_info, segment_view

if TYPE_CHECKING:
    from .._types import ArrayLike

__all__ = ["ExploreRun", "History"]

# Above this many milliseconds per region map, the map is redrawn only every k-th frame (k grows),
# so training keeps animating on larger nets; the page shows k.
_MAP_BUDGET_MS = 50.0


@dataclass
class History:
    """Per recorded frame: step, loss, accuracies, region count, Fiedler kappa and Betti numbers."""

    step: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    train_accuracy: list = field(default_factory=list)
    test_accuracy: list = field(default_factory=list)
    regions: list = field(default_factory=list)
    kappa: list = field(default_factory=list)
    beta0: list = field(default_factory=list)
    beta1: list = field(default_factory=list)

    def to_dict(self, max_points: int = 400) -> dict:
        n = len(self.step)
        keep = np.unique(np.linspace(0, n - 1, min(n, max_points)).astype(int)) if n else np.zeros(0, int)
        # NaN (no loss before the first step, no split of a one-region map) becomes JSON null
        return {k: [_finite_or_none(v[i]) for i in keep] for k, v in self.__dict__.items()}


class ExploreRun:
    """One training run, safe to drive from several threads (a lock guards the model).

    `step(n)` trains n minibatch steps; `frame()` maps the current network exactly. The server
    holds exactly one run; every tab watches it.
    """

    def __init__(self, config: ExploreConfig | None = None):
        self._lock = threading.RLock()
        self.reset(config or ExploreConfig())

    # -- training ----------------------------------------------------------------------------
    def reset(self, config: ExploreConfig) -> None:
        with self._lock:
            self.config = config
            n_test = max(config.n_points, 200)
            x, y = make_toy(config.data.value, config.n_points + n_test, noise=config.noise, seed=config.seed)
            perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(config.seed))
            x, y = x[perm].double(), y[perm]
            self.x_train, self.y_train = x[: config.n_points], y[: config.n_points]
            self.x_test, self.y_test = x[config.n_points:], y[config.n_points:]
            n_classes = int(y.max()) + 1
            self.model = mlp(2, list(config.widths), max(n_classes, 2), config.activation.value, seed=config.seed).double()
            params = self.model.parameters()
            if config.optimizer is OptimizerName.ADAM:
                self.optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
            else:
                self.optimizer = torch.optim.SGD(params, lr=config.lr, weight_decay=config.weight_decay)
            self.generator = torch.Generator().manual_seed(config.seed)
            self.steps = 0
            self.loss = float("nan")
            self.history = History()
            self.version = 0  # bumps with every new frame
            self.map_every = 1
            self._frames_since_map = 0
            lo, hi = x.min(0).values, x.max(0).values
            pad = 0.15 * (hi - lo)
            self.box = (float(lo[0] - pad[0]), float(hi[0] + pad[0]), float(lo[1] - pad[1]), float(hi[1] + pad[1]))
            self._frame: Frame | None = None
            self._frame_model: nn.Module | None = None
            self._frame_map = None

    def step(self, n: int = 1) -> float:
        """Train `n` minibatch steps (cross-entropy); returns the last loss."""
        with self._lock:
            self.model.train()
            bs = min(self.config.batch_size, len(self.x_train))
            for _ in range(n):
                idx = torch.randint(len(self.x_train), (bs,), generator=self.generator)
                loss = nn.functional.cross_entropy(self.model(self.x_train[idx]), self.y_train[idx])
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                self.steps += 1
            self.model.eval()
            self.loss = float(loss.detach())
            return self.loss

    # -- frames ------------------------------------------------------------------------------
    def frame(self, *, fiedler_variant: str = "length-rw", force_map: bool = False) -> Frame:
        """Map the current network exactly and record its statistics; returns the new frame.

        When a map costs more than 50 ms, maps are made only every `map_every`-th call and the
        frames in between reuse the last map (the page says so), so training keeps animating.
        """
        with self._lock:
            model = copy.deepcopy(self.model).eval()
            steps, loss = self.steps, self.loss
        with torch.no_grad():
            train_acc = float((model(self.x_train).argmax(1) == self.y_train).double().mean())
            test_acc = float((model(self.x_test).argmax(1) == self.y_test).double().mean())
        remap = force_map or self._frame is None or self._frames_since_map + 1 >= self.map_every
        if remap:
            started = time.perf_counter()
            rmap = regions_2d(model, box=self.box)
            map_ms = 1e3 * (time.perf_counter() - started)
            self.map_every = max(1, int(np.ceil(map_ms / _MAP_BUDGET_MS)))
            self._frames_since_map = 0
        else:
            rmap, model = self._frame_map, self._frame_model
            map_ms = 0.0
            self._frames_since_map += 1
        kappa, side = float("nan"), None
        if rmap.n_regions > 1 and rmap.A.shape[1] == 2:
            part = fiedler_partition(rmap, variant=fiedler_variant)
            side = part.side
            kappa = float(fiedler_score(rmap, part).kappa)
        betti = random_summary(rmap, n_orders=1, n_steps=10) if remap else None
        with self._lock:
            h = self.history
            h.step.append(steps)
            h.loss.append(loss)
            h.train_accuracy.append(train_acc)
            h.test_accuracy.append(test_acc)
            h.regions.append(rmap.n_regions)
            h.kappa.append(kappa)
            h.beta0.append(_betti(betti, "max_beta0", h.beta0))
            h.beta1.append(_betti(betti, "max_beta1", h.beta1))
            self.version += 1
            self._frame = frame_from_map(
                rmap, version=self.version, step=steps, history=h.to_dict(), fiedler_side=side,
                map_ms=map_ms, map_every=self.map_every, remapped=remap,
            )
            self._frame_model, self._frame_map = model, rmap
            return self._frame

    @property
    def last_frame(self) -> Frame | None:
        return self._frame

    def data(self) -> dict:
        """The training and test points (shown under the map)."""
        return {
            "train": {"x": self.x_train.tolist(), "y": self.y_train.tolist()},
            "test": {"x": self.x_test.tolist(), "y": self.y_test.tolist()},
            "box": list(self.box),
        }

    # -- queries on the last frame's network ---------------------------------------------------
    def _current(self):
        if self._frame_model is None:
            self.frame()
        return self._frame_model, self._frame_map

    def traverse(self, p0: ArrayLike, p1: ArrayLike) -> SegmentView:
        """Exact traversal of the segment p0 -> p1 in the plane: pieces, Hamming walk, running chi."""
        model, _ = self._current()
        a = as_point(p0, "p0")
        b = as_point(p1, "p1")
        fold = path_folding(model, a, b)
        return segment_view(fold, a, b)

    def region_at(self, point: ArrayLike) -> dict:
        """The face under `point`: its pattern, area and neighbours."""
        _, rmap = self._current()
        return region_info(rmap, as_point(point, "point").numpy())

    def hulls(self, layer: int) -> HullView:
        """Each class's hull in hidden layer `layer` (1-based), drawn in the layer's top-2 principal
        plane, with the nearest-convex-hull classifier's test accuracy on the full layer."""
        model, _ = self._current()
        n_layers = len(self.config.widths)
        if isinstance(layer, bool) or not isinstance(layer, int) or not 1 <= layer <= n_layers:
            raise ValueError(f"layer: expected an integer in [1, {n_layers}], got {layer!r}")
        cut = model[: 2 * layer]  # Linear, activation pairs of the flat mlp
        with torch.no_grad():
            h_train, h_test = cut(self.x_train).numpy(), cut(self.x_test).numpy()
        return hull_view(h_train, self.y_train.numpy(), h_test, self.y_test.numpy(), layer)


def _finite_or_none(value):
    return value if not isinstance(value, float) or np.isfinite(value) else None


def _betti(summary, key, series) -> float:
    """The summary's value, or the last one when this frame reused the previous map."""
    if summary is None:
        return series[-1] if series else float("nan")
    return float(getattr(summary, key))

