"""Folding vs depth and folding vs generalisation error on MNIST (Lewandowski et al.), as a sweep.

One task per net: `folding_net_task(FoldingNetConfig) -> FoldingNetRow` trains one ReLU MLP on raw
pixels in [0, 1] (the papers' input) with Adam and measures it several times during training:
when its validation accuracy first reaches each level of `levels` (checked every `check_every`
steps), and at the end of `epochs` epochs (trained past the target). At every snapshot it gives
Phi (median of the positive chi values, the papers' measure), the mean chi and the share of folded
segments, each exact and on the papers' 11-point grid, on the same digit 1 -> digit 4 test
segments for every net, plus the test error.

- Claim 1 (folding grows with depth) uses the snapshot at `target` (0.9): the net "trained until
  the validation accuracy reaches 0.9". Nets that never reach it are left out and counted.
- Claim 2 (folding drops as the generalisation error grows) uses every snapshot of nets of the
  same depth: nets stopped before 0.9, at 0.9 and trained past it.

Tasks are pure seeded functions of their config, so `reluscope.sweep.run_sweep` (or any map) can
run them anywhere; `folding_study_configs` builds the list for a grid. See docs/methods.md.

A whole study is `FoldingStudyConfig -> run_folding_study -> FoldingStudyResult ->
write_folding_study`: the grid's nets run on the sweep engine (`reluscope.sweep.run_sweep`: an
embedded Ray on all cores, a cluster with `address`, or this process with `workers=0`), their rows
kept in `out/sweep.jsonl` so that a rerun resumes. `reluscope experiment folding-depth` and
`reluscope reproduce folding` both run it.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from .._checks import single_thread
from ..data import split_mnist
from ..folding import aggregate_folding
from ..folding.path import BISECTION_TOL, path_chi
from ..io_utils import to_jsonable, write_json_atomic, write_text_atomic
from ..network import to_network
from ..results import Result
from ..sweep import run_sweep
from ..train import accuracy, mlp, train_classifier
from ..viz import save_figure
from ..viz.folding import FoldingDepthDisplay, FoldingErrorDisplay
from . import folding_training
from ._common import WrittenFiles, check_ints, check_widths, csv_text, segments

__all__ = [
    "FoldingNetConfig", "FoldingSnapshot", "FoldingNetRow", "folding_net_task", "folding_study_configs",
    "FoldingStudyConfig", "FoldingStudyResult", "FoldingStudyFiles", "run_folding_study", "write_folding_study",
    "Trend", "MeasureTrends", "DepthTrend", "DepthSummary", "spearman_trend", "MEASURES",
]

# (name, description) of the per-net folding measures, the papers' Phi first
MEASURES = (
    ("phi_exact", "Phi (median of positive chi), exact walks"),
    ("phi_grid", "Phi, 11-point grid"),
    ("chi_mean_exact", "mean chi, exact walks"),
    ("chi_mean_grid", "mean chi, 11-point grid"),
    ("share_folded_exact", "share of folded segments, exact walks"),
    ("share_folded_grid", "share of folded segments, 11-point grid"),
)


@dataclass(frozen=True, kw_only=True)
class _NetSettings:
    """What every net of a study shares: data split, segments, training and measuring settings
    (one declaration for `FoldingNetConfig` and `FoldingStudyConfig`, so their defaults agree)."""

    data_seed: int = 0
    n_train: int = 10_000
    n_val: int = 1_000
    pairs: int = 100
    classes: tuple[int, int] = (1, 4)
    levels: tuple[float, ...] = (0.7, 0.8, 0.9)
    target: float = 0.9
    epochs: int = 4
    check_every: int = 25
    lr: float = 3e-3
    batch_size: int = 64
    include_output: bool = True
    grid_points: int = 11


@dataclass(frozen=True)
class FoldingNetConfig(_NetSettings):
    """One net of the study. `data_seed` fixes the train/validation split and the segments (the
    same for every net of a study); `seed` fixes the initialisation and the batch order. The
    keyword-only fields after `seed` (`data_seed` ... `grid_points`) are shared with
    `FoldingStudyConfig`."""

    depth: int
    width: int
    seed: int


@dataclass(frozen=True)
class FoldingSnapshot(Result):
    """The net measured once: why (`stage`: 'level 0.8' or 'end'), when, and its folding."""

    stage: str
    level: float | None
    step: int
    val_accuracy: float
    test_error: float
    phi_exact: float
    phi_grid: float
    chi_mean_exact: float
    chi_mean_grid: float
    share_folded_exact: float
    share_folded_grid: float
    mean_regions: float


@dataclass(frozen=True)
class FoldingNetRow(Result):
    config: FoldingNetConfig
    snapshots: tuple[FoldingSnapshot, ...]
    reached_target: bool
    seconds: float
    walks_exact: bool = True  # False: smooth activations, walks found by bisection
    walk_tolerance: float | None = None  # the bisection's tolerance in t when not exact

    def at_target(self) -> FoldingSnapshot | None:
        """The snapshot taken when the validation accuracy first reached the target."""
        for s in self.snapshots:
            if s.level == self.config.target:
                return s
        return None


def _data(config: FoldingNetConfig):
    """Raw MNIST pixels in [0, 1]: train / validation split and the segments' endpoints."""
    split = split_mnist(config.n_train, config.n_val, seed=config.data_seed)
    return split.train, split.val, split.test, segments(split.test, config.classes, config.pairs, config.data_seed)


def _measure(model, stage, level, step, val_acc, xt, yt, x0, x1, config) -> FoldingSnapshot:
    exact, lengths = path_chi(model, x0, x1, include_output=config.include_output)
    grid, _ = path_chi(model, x0, x1, include_output=config.include_output, n_points=config.grid_points)
    return FoldingSnapshot(
        stage=stage, level=level, step=step, val_accuracy=float(val_acc),
        test_error=1.0 - float(accuracy(model, xt, yt)),
        phi_exact=aggregate_folding(exact), phi_grid=aggregate_folding(grid),
        chi_mean_exact=float(exact.mean()), chi_mean_grid=float(grid.mean()),
        share_folded_exact=float((exact > 0).mean()), share_folded_grid=float((grid > 0).mean()),
        mean_regions=float(lengths.mean()),
    )


def folding_net_task(config: FoldingNetConfig) -> FoldingNetRow:
    """Train one net and measure it at every level it reaches and at the end (see module doc).

    Runs on one CPU thread: these nets are tiny, and threads only add contention (a sweep runs
    many tasks side by side instead)."""

    with single_thread():
        return _folding_net_task(config)


def _folding_net_task(config: FoldingNetConfig) -> FoldingNetRow:
    start = time.perf_counter()
    (x, y), (xv, yv), (xt, yt), (x0, x1) = _data(config)
    net_seed = config.seed * 100_003 + config.depth * 31 + config.width
    model = mlp(x.shape[1], [config.width] * config.depth, 10, seed=net_seed)
    levels = sorted(set(config.levels) | {config.target})
    snaps: list[FoldingSnapshot] = []

    def check(step, net, state):
        pending = [lv for lv in levels if lv not in {s.level for s in snaps}]
        if not pending:
            return
        val = accuracy(net, xv, yv)
        for lv in pending:
            if val >= lv:
                snaps.append(_measure(net, f"level {lv:g}", lv, step, val, xt, yt, x0, x1, config))

    train_classifier(model, x, y, epochs=config.epochs, lr=config.lr, batch_size=config.batch_size,
                     seed=net_seed, callbacks=[check], callback_every=config.check_every)
    reached = any(s.level == config.target for s in snaps)
    val = accuracy(model, xv, yv)
    snaps.append(_measure(model, "end", None, -1, val, xt, yt, x0, x1, config))

    exact = bool(to_network(model).piecewise_linear)
    return FoldingNetRow(config, tuple(snaps), reached, time.perf_counter() - start,
                         walks_exact=exact, walk_tolerance=None if exact else BISECTION_TOL)


def folding_study_configs(depths: Sequence[int], widths: Sequence[int], seeds: int, **common: object) -> list[FoldingNetConfig]:
    """One config per (depth, width, seed), all sharing `common` settings (and so the segments)."""
    return [FoldingNetConfig(depth=d, width=w, seed=s, **common) for d in depths for w in widths for s in range(seeds)]


# ----------------------------------------------------------------------------- the study


@dataclass(frozen=True)
class FoldingStudyConfig(_NetSettings):
    """A grid of nets, depths x widths x `seeds`, sharing the data split, the segments and the
    training settings (the keyword-only fields `data_seed` ... `grid_points` are those of
    `FoldingNetConfig`; only the default of `epochs` differs).

    The default is the quick scale of `reluscope reproduce folding` (24 nets, minutes on 2 cores);
    `paper()` is the papers' grid (2,000 nets: hours on many cores, see the README's Sweeps section).
    """

    depths: tuple[int, ...] = (3, 4, 5, 6)
    widths: tuple[int, ...] = (10, 14, 18)
    seeds: int = 2
    epochs: int = field(default=6, kw_only=True)

    @classmethod
    def paper(cls, **changes: object) -> "FoldingStudyConfig":
        """The papers' grid: widths 10-18, 100 nets per architecture, all training images but the
        validation split, 1,000 segments, 10 epochs, snapshots also at 0.85."""
        return cls(**{**dict(widths=(10, 12, 14, 16, 18), seeds=100, n_train=59_000, pairs=1_000, epochs=10,
                             levels=(0.7, 0.8, 0.85, 0.9)), **changes})

    def __post_init__(self):
        check_ints(self, ("seeds", "n_train", "n_val", "pairs", "epochs", "check_every", "batch_size", "grid_points"))
        for name in ("depths", "widths"):
            object.__setattr__(self, name, check_widths(getattr(self, name), name))
        if not 0 < self.target <= 1:
            raise ValueError(f"target: expected a validation accuracy in (0, 1], got {self.target!r}")

    def nets(self) -> list[FoldingNetConfig]:
        """One `FoldingNetConfig` per (depth, width, seed), in that order."""
        common = {f.name: getattr(self, f.name) for f in fields(_NetSettings)}
        return folding_study_configs(self.depths, self.widths, self.seeds, **common)


@dataclass(frozen=True)
class FoldingStudyResult(Result):
    """Every net of a study (`rows`, in the order of `config.nets()`), and the two claims' statistics.

    - `depth_trends()`: Spearman's rho of (depth, measure) over the nets at the target, one `Trend`
      per measure of `MEASURES` (Phi first: the papers' measure).
    - `error_trends()`: per depth, rho of (test error, measure) over every snapshot of its nets.
    """

    config: FoldingStudyConfig
    rows: tuple[FoldingNetRow, ...]
    seconds: float = 0.0

    def at_target(self) -> list[tuple[int, FoldingSnapshot]]:
        """(depth, snapshot at the target) of the nets that reached it."""
        return [(r.config.depth, r.at_target()) for r in self.rows if r.reached_target]

    def depth_trends(self, *, seed: int = 0) -> MeasureTrends:
        """Spearman's rho of (depth, measure) over the nets at the target, for every measure."""
        nets = self.at_target()
        return MeasureTrends(*(spearman_trend([d for d, _ in nets], [getattr(s, m) for _, s in nets], seed=seed)
                               for m, _ in MEASURES))

    def error_trends(self, measure: str = "phi_exact", *, seed: int = 0) -> tuple[DepthTrend, ...]:
        """Per depth of the config: Spearman's rho of (test error, `measure`) over every snapshot."""
        if measure not in dict(MEASURES):
            raise ValueError(f"measure: expected one of {[m for m, _ in MEASURES]}, got {measure!r}")
        out = []
        for d in self.config.depths:
            snaps = [s for r in self.rows if r.config.depth == d for s in r.snapshots]
            out.append(DepthTrend(d, spearman_trend([s.test_error for s in snaps], [getattr(s, measure) for s in snaps],
                                                    seed=seed)))
        return tuple(out)

    def summary(self) -> tuple[DepthSummary, ...]:
        """Per depth: nets at the target / trained, the mean of each measure and of the test error there."""
        nets = self.at_target()
        out = []
        for d in self.config.depths:
            sel = [s for dd, s in nets if dd == d]
            means = (float(np.mean([getattr(s, m) for s in sel])) if sel else None
                     for m in [m for m, _ in MEASURES] + ["test_error"])
            out.append(DepthSummary(d, len(sel), sum(r.config.depth == d for r in self.rows), *means))
        return tuple(out)


@dataclass(frozen=True)
class DepthSummary(Result):
    """One depth of a study: nets at the target of those trained, and the means at the target
    (None when no net of that depth reached it)."""

    depth: int
    nets_at_target: int
    trained: int
    phi_exact: float | None
    phi_grid: float | None
    chi_mean_exact: float | None
    chi_mean_grid: float | None
    share_folded_exact: float | None
    share_folded_grid: float | None
    test_error: float | None


def _table(result: FoldingStudyResult) -> list[dict]:
    """One flat CSV row per net: its config, whether it reached the target, and its folding there
    (None when it did not) and at the end."""
    rows = []
    for r in result.rows:
        at, end = r.at_target(), r.snapshots[-1]
        row = {"depth": r.config.depth, "width": r.config.width, "seed": r.config.seed,
               "reached_target": r.reached_target, "step_at_target": at.step if at else None}
        for m in [m for m, _ in MEASURES] + ["test_error"]:
            row[f"{m}_at_target"] = getattr(at, m) if at else None
        for m in [m for m, _ in MEASURES] + ["test_error", "val_accuracy"]:
            row[f"{m}_end"] = getattr(end, m)
        row["seconds"] = r.seconds
        rows.append(row)
    return rows


def run_folding_study(config: FoldingStudyConfig = FoldingStudyConfig(), *, out: str | Path, address: str | None = None,
                      workers: int | None = None, progress: bool = False) -> FoldingStudyResult:
    """Train and measure every net of the grid on the sweep engine; rows in `out/sweep.jsonl`.

    A rerun with the same `out` reuses the nets already there (and reruns failed ones), so a killed
    study resumes. `address` / `workers` as in `reluscope.sweep.run_sweep` (`workers=0`: in this
    process, no Ray). Raises once the other nets have finished if any net failed.
    """

    start = time.perf_counter()
    summary = run_sweep(folding_net_task, config.nets(), out=out, address=address, workers=workers,
                        retry_failed=True, progress=progress).check("folding study nets")
    return FoldingStudyResult(config, tuple(summary.results(FoldingNetRow)), time.perf_counter() - start)


@dataclass(frozen=True)
class FoldingStudyFiles(WrittenFiles):
    """What `write_folding_study` wrote."""

    csv: Path
    json: Path
    depth: Path
    error: Path


def write_folding_study(result: FoldingStudyResult, out: str | Path) -> FoldingStudyFiles:
    """Write folding_study.json (config, trends, per-depth summary), folding_study.csv (one row per
    net) and the figures folding_vs_depth.png and folding_vs_error.png into `out`."""

    out = Path(out)
    table_path = write_text_atomic(out / "folding_study.csv", csv_text(_table(result)))
    doc = {"config": result.config, "seconds": result.seconds, "depth_trends": result.depth_trends(),
           "error_trends": {m: result.error_trends(m) for m in ("phi_exact", "chi_mean_exact")},
           "summary": result.summary(), "nets": len(result.rows),
           "nets_at_target": len(result.at_target())}
    return FoldingStudyFiles(
        table_path, write_json_atomic(out / "folding_study.json", to_jsonable(doc)),
        save_figure(FoldingDepthDisplay.from_result(result).to_figure(), out / "folding_vs_depth.png"),
        save_figure(FoldingErrorDisplay.from_result(result).to_figure(), out / "folding_vs_error.png"))


# ----------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class Trend(Result):
    """Spearman's rho of (x, y) over `n` nets, its p-value and a percentile bootstrap interval."""

    n: int
    rho: float
    p_value: float
    ci_low: float
    ci_high: float
    boot: int = field(default=2000, repr=False)

    def text(self) -> str:
        return f"rho {self.rho:+.2f} (p = {self.p_value:.2g}, 95% CI [{self.ci_low:+.2f}, {self.ci_high:+.2f}], n = {self.n})"


@dataclass(frozen=True)
class MeasureTrends(Result):
    """One `Trend` per folding measure of `MEASURES` (Phi first); `trends[name]` reads one by name."""

    phi_exact: Trend
    phi_grid: Trend
    chi_mean_exact: Trend
    chi_mean_grid: Trend
    share_folded_exact: Trend
    share_folded_grid: Trend

    def __getitem__(self, measure: str) -> Trend:
        if measure not in dict(MEASURES):
            raise KeyError(measure)
        return getattr(self, measure)


@dataclass(frozen=True)
class DepthTrend(Result):
    """The `Trend` of the nets of one depth."""

    depth: int
    trend: Trend


def spearman_trend(x: Sequence[float], y: Sequence[float], *, boot: int = 2000, seed: int = 0) -> Trend:
    """Spearman's rho with a percentile bootstrap interval over the pairs (resampled with
    replacement; resamples with a constant side are skipped)."""
    from scipy.stats import spearmanr

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(x)
    if n < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return Trend(n, float("nan"), float("nan"), float("nan"), float("nan"), boot)
    rho, p = spearmanr(x, y)
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(boot):
        i = rng.integers(0, n, n)
        if np.all(x[i] == x[i][0]) or np.all(y[i] == y[i][0]):
            continue
        stats.append(spearmanr(x[i], y[i])[0])
    lo, hi = (np.nanpercentile(stats, [2.5, 97.5]) if stats else (np.nan, np.nan))
    return Trend(n, float(rho), float(p), float(lo), float(hi), boot)


_MOVED = ("RegulariserConfig", "RegulariserRow", "regulariser_task")
_FIGURES = {"depth_figure": FoldingDepthDisplay, "error_figure": FoldingErrorDisplay}


def __getattr__(name: str):
    if name in _FIGURES:  # the study's figures are viz Displays now
        display = _FIGURES[name]
        warnings.warn(f"reluscope.experiments.folding_study.{name}(...) is now "
                      f"reluscope.viz.folding.{display.__name__}(...).to_figure()", DeprecationWarning, stacklevel=2)
        return lambda points, depths: display(points, depths).to_figure()
    # the regulariser moved to folding_training (one implementation for the CLI and reproduce)
    if name in _MOVED:
        warnings.warn(f"reluscope.experiments.folding_study.{name} moved to reluscope.experiments.folding_training",
                      DeprecationWarning, stacklevel=2)
        return getattr(folding_training, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
