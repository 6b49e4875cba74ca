"""Record region counts, Fiedler scores and Betti summaries while a network trains.

`TopologyRecorder` is a callback for `reluscope.train.train_classifier(callbacks=[...])` (called
as `cb(step, model, state)`), or for any loop that calls it the same way, once per step.

It measures every `every`-th step and, with `window > 0`, every step within `window` steps of a
loss spike (a step whose loss is more than `spike_factor` times the previous step's; the state
must have a `loss`). The steps before a spike are known to be interesting only once the spike
happens, so the recorder keeps the weights of the last `window` steps and measures them then.
"""

from __future__ import annotations

import collections
import copy
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from ..regions.topology import CellCounts, RandomSummary, SublevelSummary, cell_counts, random_summary, sublevel_summary
from .dual import DEFAULT_GRID, FiedlerComparison, GraphVariant, compare_variants
from .._checks import as_enum, check_int, single_thread
from ..results import Result
from .partition import regions_2d

if TYPE_CHECKING:
    from torch import nn

    from ..train import TrainState

__all__ = ["TopologyRecord", "TopologyRecorder"]


@dataclass(frozen=True, eq=False)
class TopologyRecord(Result):
    """One measurement: `step`, `loss` (None when the caller passed none), the cell `counts`,
    `fiedler` (every graph variant's score and the best straight cut; None unless binary),
    `random` and `sublevel` filtration summaries, whether the step lies in a spike window,
    whether it is a spike onset, and the caller's `metrics` (e.g. accuracies)."""

    step: int
    loss: float | None
    counts: CellCounts
    fiedler: FiedlerComparison | None
    random: RandomSummary
    sublevel: SublevelSummary
    in_spike_window: bool = False
    spike: bool = False
    metrics: dict = field(default_factory=dict)

    def as_row(self) -> dict:
        """Flat {name: scalar} for CSV and JSON."""
        row = {"step": self.step, "loss": self.loss, **asdict(self.counts), "in_spike_window": self.in_spike_window, "spike": self.spike}
        row.update(self.metrics)
        if self.fiedler is not None:
            row.update({f"fiedler_{k}": v for k, v in self.fiedler.as_row().items()})
        row.update({f"random_{k}": v for k, v in self.random.as_row().items()})
        row.update({f"sublevel_{k}": v for k, v in self.sublevel.as_row().items()})
        return row


@dataclass
class TopologyRecorder:
    """Measure the regions of the model on `box` (of `plane`, a `Plane`, for inputs of more than
    two numbers; see the module docstring for when).

    `pair=True` also measures the call after each `every`-th one (one-step changes at ordinary
    times, to compare with changes across spikes). `binary=True`: score each of `variants` (`GraphVariant`) and the best straight cut against
    the decision (`straight_directions` directions searched). `metrics(model) -> dict` is recorded
    with each measurement. `records` holds `TopologyRecord`s in step order; `frames` (when
    `keep_frames`) holds (step, RegionMap) for the `every`-th steps.
    """

    box: tuple[float, float, float, float] = (-1.0, 1.0, -1.0, 1.0)
    plane: object = None
    every: int = 1
    binary: bool = True
    n_orders: int = 4
    output: int = 0
    keep_frames: bool = False
    variants: tuple = tuple(GraphVariant)
    grid: int = DEFAULT_GRID
    straight_directions: int = 180
    window: int = 0
    pair: bool = False
    spike_factor: float = 2.0
    metrics: object = None
    seed: int = 0
    records: list = field(default_factory=list)
    frames: list = field(default_factory=list)
    _calls: int = 0
    _last_loss: float | None = None
    _recent: collections.deque = field(default_factory=collections.deque)
    _until: int = -1

    def __post_init__(self):
        for name in ("every", "n_orders", "grid", "straight_directions"):
            check_int(getattr(self, name), name)
        check_int(self.window, "window", minimum=0)
        if not (isinstance(self.spike_factor, (int, float)) and self.spike_factor > 1):
            raise ValueError(f"spike_factor: expected a number > 1, got {self.spike_factor!r}")
        self.variants = tuple(as_enum(v, GraphVariant, "variants") for v in self.variants)

    def __call__(self, step: int, model: nn.Module, state: TrainState | None = None) -> None:
        self._calls += 1
        loss = getattr(state, "loss", None)
        loss = None if loss is None else float(loss)
        phase = (self._calls - 1) % self.every
        regular = phase == 0 or (self.pair and phase == 1)
        spike = (
            self.window > 0 and loss is not None and self._last_loss is not None
            and loss > self.spike_factor * self._last_loss
        )
        self._last_loss = loss
        with single_thread():
            if spike:  # the steps just before the spike, from the kept weights
                scratch = copy.deepcopy(model)
                for old_step, weights, old_loss, old_metrics in self._recent:
                    if not any(r.step == old_step for r in self.records[-self.window - 1:]):
                        scratch.load_state_dict(weights)
                        self._record(old_step, scratch, old_loss, True, False, old_metrics, keep=False)
                self._until = step + self.window
            in_window = spike or step <= self._until
            if regular or in_window:
                self._record(step, model, loss, in_window, spike, None, keep=phase == 0)
        if self.window > 0:
            metrics = self.metrics(model) if self.metrics is not None else {}
            self._recent.append((int(step), copy.deepcopy(model.state_dict()), loss, metrics))
            while len(self._recent) > self.window:
                self._recent.popleft()

    def _record(self, step: int, model, loss, in_window, spike, metrics, *, keep) -> None:
        rm = regions_2d(model, box=self.box, plane=self.plane)
        fiedler = None
        if self.binary:
            fiedler = compare_variants(rm, variants=self.variants, grid=self.grid, n_directions=self.straight_directions)
        if metrics is None:
            metrics = self.metrics(model) if self.metrics is not None else {}
        rec = TopologyRecord(
            int(step), loss, cell_counts(rm), fiedler, random_summary(rm, n_orders=self.n_orders, seed=self.seed),
            sublevel_summary(rm, output=self.output), in_window, spike, dict(metrics),
        )
        self.records.append(rec)
        self.records.sort(key=lambda r: r.step)
        if keep and self.keep_frames:
            self.frames.append((int(step), rm))
