"""Record region counts, the Fiedler score and Betti summaries while a network trains.

`TopologyRecorder` is a callback for `reluscope.train.train_classifier(callbacks=[...])` (called
as `cb(step, model, state)`), or for any loop that calls it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..regions.topology import cell_counts, random_summary, sublevel_summary
from .dual import fiedler_partition, fiedler_score
from .._checks import single_thread
from .partition import regions_2d

__all__ = ["TopologyRecorder"]


@dataclass
class TopologyRecorder:
    """Every `every`-th call: regions of the model on `box`, their counts, the Fiedler score
    (for binary classifiers, `binary=True`), random-filtration and output-sublevel summaries.

    Fiedler scores are recorded for each weighting in `fiedler_weights`: the first under
    `fiedler_*`, the others under `fiedler_<weights>_*`.
    `records` holds one dict per measurement; `frames` (when `keep_frames`) the region maps.
    `state.loss` is recorded when the caller passes a state with a `loss` attribute.
    """

    box: tuple[float, float, float, float] = (-1.0, 1.0, -1.0, 1.0)
    every: int = 1
    binary: bool = True
    n_orders: int = 4
    output: int = 0
    keep_frames: bool = False
    fiedler_weights: tuple = ("length", "unit")
    seed: int = 0
    records: list = field(default_factory=list)
    frames: list = field(default_factory=list)
    _calls: int = 0

    def __call__(self, step: int, model, state=None) -> None:
        self._calls += 1
        if (self._calls - 1) % self.every:
            return
        with single_thread():
            self._record(step, model, state)

    def _record(self, step: int, model, state) -> None:
        rm = regions_2d(model, box=self.box)
        rec = {"step": int(step), **cell_counts(rm)}
        loss = getattr(state, "loss", None)
        if loss is not None:
            rec["loss"] = float(loss)
        if self.binary:
            for i, w in enumerate(self.fiedler_weights):
                prefix = "fiedler_" if i == 0 else f"fiedler_{w}_"
                rec.update({prefix + k: v for k, v in fiedler_score(rm, fiedler_partition(rm, weights=w)).items()})
        rnd = random_summary(rm, n_orders=self.n_orders, seed=self.seed)
        rec.update({f"random_{k}": rnd[k] for k in ("max_beta0", "max_beta1", "total_persistence0", "total_persistence1")})
        rec.update({f"sublevel_{k}": v for k, v in sublevel_summary(rm, output=self.output).items()})
        self.records.append(rec)
        if self.keep_frames:
            self.frames.append((int(step), rm))
