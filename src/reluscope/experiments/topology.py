"""Topology of linear regions over training (Bosca et al. 2025; docs/methods.md, section 3).

Two protocols, each a frozen config -> `run_*` -> frozen result -> `write_*(result, out)`:

`run_grok` (binary): the Fiedler split of the region map's dual graph, in every `GraphVariant`,
against the network's decision, tracked over a training run that groks, with the best straight
cut of the box as the baseline. The set-up (`GrokConfig`): sparse parity (inputs uniform in
{-1, 1}^24, label = parity of the first 3 coordinates), 400 training inputs, an MLP 24-128-128-2
whose initial weights are multiplied by `init_scale` = 2, full-batch AdamW (lr 1e-3, decoupled
weight decay 1.0). The regions are those of the 2-D plane through three training inputs. The
net memorises the training set within a few hundred steps and reaches test accuracy 0.9 an
order of magnitude later. Checkpoints are log-spaced in steps.

2-D tasks did not grok in our search (moons, circles, spirals, xor with 12 to 100 training points,
init scale 4 to 16, weight decay 0.1 to 1: test accuracy was already within a few points of its
final value when the training set was fitted; parity of a + b on an 11 x 11 lattice memorised
and stayed below chance), hence a task whose input *plane* is 2-D.

`run_regression`: a 2-D regression fitted with a large Adam step so the loss spikes. Regions
are measured every `every` steps and the step after it, and every step within `window` steps of
a spike (`TopologyRecorder`); the face-count change over one step at spike onsets is compared
with the change over one ordinary step by a two-sided Mann-Whitney U test.

`grok_row(config)` is one run as a row, the unit of a sweep over seeds (`run_grok_seeds`,
`write_grok_seeds`; `reluscope experiment topo-grok --seeds N --address ... --workers ...`).
"""

from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from ..regions.dual import GraphVariant
from .._checks import check_int, single_thread
from ..results import Result
from ..regions.recorder import TopologyRecorder

__all__ = [
    "GrokConfig", "GrokResult", "GrokSummary", "VariantTrack", "run_grok", "grok_row", "write_grok",
    "GrokSeedsResult", "run_grok_seeds", "write_grok_seeds",
    "RegressionConfig", "RegressionResult", "RegressionSummary", "SpikeTest", "run_regression", "write_regression",
    "sparse_parity", "regression_target", "spearman",
]


def _check_ints(cfg, names, minimum=1):
    for name in names:
        check_int(getattr(cfg, name), name, minimum=minimum)


def spearman(a, b) -> float:
    """Spearman rank correlation (average ranks for ties); nan when either side is constant."""
    from scipy.stats import spearmanr

    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def _mlp(widths, seed, scale=1.0):
    from ..train import mlp

    model = mlp(widths[0], list(widths[1:-1]), widths[-1], seed=seed)
    if scale != 1.0:
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(scale)
    return model


def _pick(frames, k):
    if len(frames) <= k:
        return list(frames)
    idx = np.unique(np.linspace(0, len(frames) - 1, k).round().astype(int))
    return [frames[i] for i in idx]


def _csv(rows) -> str:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    for r in rows:
        w.writerow(r)
    return buf.getvalue()


def _write_common(out: Path, name: str, config, summary, rows) -> dict:
    from ..io_utils import write_json_atomic, write_text_atomic

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": out / f"{name}.json", "csv": out / f"{name}.csv"}
    write_json_atomic(files["json"], {"config": asdict(config), "summary": asdict(summary), "records": rows})
    write_text_atomic(files["csv"], _csv(rows))
    return files


def _save(fig, path: Path) -> Path:
    from ..viz import save_figure  # the one figure -> atomic file writer (closes pyplot figures)

    return save_figure(fig, path, dpi=110)


# ----------------------------------------------------------------------------- grokking


@dataclass(frozen=True)
class GrokConfig:
    """The grokking set-up (module docstring). `n_checkpoints` log-spaced steps are measured
    (plus step 0) on the plane through training inputs `plane_points`, the box around them with
    `margin`; `grid` is the authors' grid size; `straight_directions` the straight-cut search."""

    n_bits: int = 24
    k: int = 3
    n_train: int = 400
    n_test: int = 2000
    hidden: tuple[int, ...] = (128, 128)
    init_scale: float = 2.0
    weight_decay: float = 1.0
    lr: float = 1e-3
    steps: int = 4000
    n_checkpoints: int = 16
    plane_points: tuple[int, int, int] = (0, 1, 2)
    margin: float = 0.25
    grid: int = 200
    n_orders: int = 2
    straight_directions: int = 180
    n_frames: int = 6
    seed: int = 0

    def __post_init__(self):
        _check_ints(self, ("n_bits", "k", "n_train", "n_test", "steps", "n_checkpoints", "grid", "n_orders",
                           "straight_directions", "n_frames"))
        if self.k > self.n_bits:
            raise ValueError(f"k: expected at most n_bits = {self.n_bits}, got {self.k}")
        if len(self.plane_points) != 3 or len(set(self.plane_points)) != 3 or not all(
            isinstance(i, int) and 0 <= i < self.n_train for i in self.plane_points
        ):
            raise ValueError(f"plane_points: expected 3 distinct training indices in [0, {self.n_train}), got {self.plane_points!r}")
        for name in ("init_scale", "lr", "margin"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: expected a positive number, got {getattr(self, name)!r}")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay: expected a number >= 0, got {self.weight_decay!r}")


def sparse_parity(n_bits: int, k: int, n_train: int, n_test: int, seed: int):
    """(x_train, y_train, x_test, y_test): uniform inputs in {-1, 1}^n_bits, y = parity of the
    number of -1 among the first k coordinates."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 2, (n_train + n_test, n_bits), generator=g).float() * 2 - 1
    y = ((x[:, :k] < 0).sum(1) % 2).long()
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


@dataclass(frozen=True)
class VariantTrack(Result):
    """One split (a graph variant, or "straight-cut") over the checkpoints: kappa at the start, at
    the first checkpoint with train accuracy >= 0.99, at the end and its maximum; the share of
    checkpoints where it is degenerate, and where its kappa beats the best straight cut's."""

    name: str
    kappa_start: float
    kappa_at_fit: float | None
    kappa_final: float
    kappa_max: float
    degenerate_share: float
    beats_straight_share: float
    spearman_kappa_vs_test_accuracy: float


@dataclass(frozen=True)
class GrokSummary(Result):
    """`fit_step`: first checkpoint with train accuracy >= 0.99; `rise_step`: first with test
    accuracy >= 0.9; `grokked`: rise_step >= 10 x fit_step (test accuracy rose long after the fit)."""

    seconds: float
    measurements: int
    fit_step: int | None
    rise_step: int | None
    grokked: bool
    test_accuracy_at_fit: float | None
    final_train_accuracy: float
    final_test_accuracy: float
    faces_start: int
    faces_final: int
    tracks: tuple[VariantTrack, ...]


@dataclass(frozen=True, eq=False)
class GrokResult(Result):
    """`records`: `TopologyRecord`s (accuracies in `metrics`); `frames`: (step, RegionMap)."""

    config: GrokConfig
    records: tuple
    frames: tuple
    summary: GrokSummary


def _checkpoints(steps: int, n: int) -> list[int]:
    return sorted({0, steps, *np.unique(np.geomspace(1, steps, n).round().astype(int)).tolist()})


def _tracks(records, fit_idx) -> tuple[VariantTrack, ...]:
    test = [r.metrics["test_accuracy"] for r in records]
    straight = np.array([r.fiedler.straight_cut.score.kappa for r in records])

    def track(name, scores):
        k = np.array([s.kappa for s in scores])
        return VariantTrack(
            name, float(k[0]), None if fit_idx is None else float(k[fit_idx]), float(k[-1]), float(k.max()),
            float(np.mean([s.degenerate for s in scores])), float(np.mean(k > straight + 1e-12)), spearman(k, test),
        )

    out = [track(v.value, [r.fiedler[v].score for r in records]) for v in (x.variant for x in records[0].fiedler.variants)]
    out.append(track("straight-cut", [r.fiedler.straight_cut.score for r in records]))
    return tuple(out)


def run_grok(config: GrokConfig = GrokConfig(), *, progress: bool = False) -> GrokResult:
    """Train on sparse parity (module docstring) and track every Fiedler variant on the plane."""
    from tqdm.auto import tqdm

    from ..train import accuracy

    cfg = config
    from ..regions import Plane

    x, y, xt, yt = sparse_parity(cfg.n_bits, cfg.k, cfg.n_train, cfg.n_test, cfg.seed)
    model = _mlp((cfg.n_bits, *cfg.hidden, 2), cfg.seed, cfg.init_scale)
    plane = Plane.through_points(*(x[i].double() for i in cfg.plane_points))

    def metrics(m):
        return {"train_accuracy": accuracy(m, x, y), "test_accuracy": accuracy(m, xt, yt)}

    rec = TopologyRecorder(
        box=plane.box_around_anchors(cfg.margin), plane=plane, every=1, binary=True, n_orders=cfg.n_orders, keep_frames=True, grid=cfg.grid,
        straight_directions=cfg.straight_directions, metrics=metrics, seed=cfg.seed,
    )
    checkpoints = set(_checkpoints(cfg.steps, cfg.n_checkpoints))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    t0 = time.perf_counter()
    with torch.random.fork_rng(), single_thread():
        torch.manual_seed(cfg.seed)
        for step in tqdm(range(cfg.steps + 1), disable=not progress, desc="grok"):
            if step in checkpoints:
                model.eval()
                with torch.no_grad():
                    loss = float(nn.functional.cross_entropy(model(x), y))
                rec(step, model, type("State", (), {"loss": loss})())
                model.train()
            if step == cfg.steps:
                break
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    recs = tuple(rec.records)
    tr = [r.metrics["train_accuracy"] for r in recs]
    te = [r.metrics["test_accuracy"] for r in recs]
    fit_idx = next((i for i, a in enumerate(tr) if a >= 0.99), None)
    rise_idx = next((i for i, a in enumerate(te) if a >= 0.9), None)
    fit_step = None if fit_idx is None else recs[fit_idx].step
    rise_step = None if rise_idx is None else recs[rise_idx].step
    summary = GrokSummary(
        seconds=time.perf_counter() - t0, measurements=len(recs), fit_step=fit_step, rise_step=rise_step,
        grokked=bool(fit_step is not None and rise_step is not None and rise_step >= 10 * max(fit_step, 1)),
        test_accuracy_at_fit=None if fit_idx is None else te[fit_idx], final_train_accuracy=tr[-1],
        final_test_accuracy=te[-1], faces_start=recs[0].counts.faces, faces_final=recs[-1].counts.faces,
        tracks=_tracks(recs, fit_idx),
    )
    return GrokResult(cfg, recs, tuple(_pick(rec.frames, cfg.n_frames)), summary)


def grok_row(config: GrokConfig) -> dict:
    """One grokking run as a row, the unit of a sweep over seeds: the summary flattened, and under
    "records" every checkpoint's flat row (accuracies, counts, each variant's scores)."""
    result = run_grok(config)
    s = result.summary
    row = {"seed": config.seed, **{k: v for k, v in asdict(s).items() if k != "tracks"}}
    for t in s.tracks:
        key = t.name.replace("-", "_")
        row.update({f"{key}_kappa_final": t.kappa_final, f"{key}_kappa_max": t.kappa_max,
                    f"{key}_beats_straight_share": t.beats_straight_share, f"{key}_degenerate_share": t.degenerate_share})
    row["records"] = [r.as_row() for r in result.records]
    return row


@dataclass(frozen=True)
class GrokSeedsResult:
    """One `grok_row` per seed of `run_grok_seeds`, in seed order (`config.seed` is the first run's)."""

    config: GrokConfig
    rows: tuple[dict, ...]


def run_grok_seeds(config: GrokConfig, seeds, *, out, address: str | None = None, workers: int | None = None,
                   progress: bool = False) -> GrokSeedsResult:
    """One grokking run per seed (`grok_row`), as a sweep (`reluscope.sweep.run_sweep`: rows in
    `out/sweep.jsonl`, a rerun resumes; `workers=0` runs them here without Ray); rows in seed order."""
    from ..sweep import run_sweep

    configs = [replace(config, seed=int(s)) for s in seeds]
    if not configs:
        raise ValueError("seeds: expected at least one seed")
    rows = run_sweep(grok_row, configs, out=out, address=address, workers=workers, retry_failed=True,
                     progress=progress).check("grokking runs").results()
    return GrokSeedsResult(config, tuple(rows))


def write_grok_seeds(result: GrokSeedsResult, out) -> dict:
    """grok_seeds.json (config, rows with their checkpoints), grok_seeds.csv (one summary row per
    seed) and grok_seeds.png (accuracies and the default split's and the straight cut's kappa per seed)."""
    from ..io_utils import write_json_atomic, write_text_atomic
    from ..viz._common import report_figure

    out, rows, config = Path(out), list(result.rows), result.config
    files = {"json": write_json_atomic(out / "grok_seeds.json", {"config": asdict(config), "runs": rows}),
             "csv": write_text_atomic(out / "grok_seeds.csv", _csv([{k: v for k, v in r.items() if k != "records"}
                                                                    for r in rows]))}
    fig, axes = report_figure(2, len(rows), figsize=(3.6 * len(rows), 5.6), sharex=True, squeeze=False)
    for col, r in enumerate(rows):
        recs = r["records"]
        steps = np.maximum([x["step"] for x in recs], 0.5)
        axes[0][col].plot(steps, [x["train_accuracy"] for x in recs], "--", label="train")
        axes[0][col].plot(steps, [x["test_accuracy"] for x in recs], label="test")
        axes[0][col].set_title(f"seed {r['seed']}" + (" (grokked)" if r["grokked"] else ""))
        axes[1][col].plot(steps, [x["fiedler_length_rw_kappa"] for x in recs], label="Fiedler, normalised cut")
        axes[1][col].plot(steps, [x["fiedler_straight_kappa"] for x in recs], color="black", label="best straight cut")
        axes[1][col].set_xscale("log")
        axes[1][col].set_xlabel("step (0 drawn at 0.5)")
    axes[0][0].set_ylabel("accuracy")
    axes[1][0].set_ylabel("kappa (area-weighted)")
    axes[0][0].legend(fontsize=7)
    axes[1][0].legend(fontsize=7)
    files["figure"] = _save(fig, out / "grok_seeds.png")
    return files


def _write_frames(frames, path: Path) -> Path:
    """The region maps of the recorded frames side by side, as one PNG."""
    from ..viz._common import report_figure
    from ..viz.regions import plot_region_frames

    fig, axes = report_figure(1, len(frames), figsize=(2.6 * len(frames), 2.8))
    plot_region_frames(frames, axes=np.atleast_1d(axes))
    return _save(fig, path)


def write_grok(result: GrokResult, out, *, name: str = "grok") -> dict:
    """Write `name`.json (config, summary, records), `name`.csv and PNG figures; returns paths."""
    from ..viz._common import report_figure
    from ..viz.regions import plot_fiedler, plot_regions
    from ..regions import fiedler_partition

    rows = [r.as_row() for r in result.records]
    files = _write_common(out, name, result.config, result.summary, rows)
    out = Path(out)
    files["frames"] = _write_frames(result.frames, out / f"{name}_frames.png")
    steps = np.maximum([r.step for r in result.records], 0.5)
    fig, (ax1, ax2) = report_figure(2, 1, figsize=(8, 7), sharex=True)
    fig.suptitle("sparse parity: accuracy and Fiedler kappa on the plane through three training inputs", fontsize=9)
    ax1.plot(steps, [r.metrics["train_accuracy"] for r in result.records], label="train accuracy", ls="--")
    ax1.plot(steps, [r.metrics["test_accuracy"] for r in result.records], label="test accuracy")
    ax1.set_ylabel("accuracy")
    ax1.legend(fontsize=8)
    for v in result.records[0].fiedler.variants:
        ax2.plot(steps, [r.fiedler[v.variant].score.kappa for r in result.records], label=v.variant.value)
    ax2.plot(steps, [r.fiedler.straight_cut.score.kappa for r in result.records], label="best straight cut", color="black", lw=2)
    ax2.set_xscale("log")
    ax2.set_xlabel("step (0 drawn at 0.5)")
    ax2.set_ylabel("Cohen's kappa (area-weighted)")
    ax2.legend(fontsize=7, ncol=2)
    files["kappa"] = _save(fig, out / f"{name}_kappa.png")
    rm = result.frames[-1][1]
    fig, axes = report_figure(1, 2, figsize=(10, 5))
    plot_regions(rm, ax=axes[0])
    plot_fiedler(rm, fiedler_partition(rm), ax=axes[1])
    files["final"] = _save(fig, out / f"{name}_final.png")
    return files


# ----------------------------------------------------------------------------- regression


@dataclass(frozen=True)
class RegressionConfig:
    """2-D regression with loss spikes: regions every `every` steps (and the step after), and
    every step within `window` steps of a spike (loss > `spike_factor` x the previous step's)."""

    n_train: int = 400
    hidden: tuple[int, ...] = (32, 32)
    steps: int = 3000
    lr: float = 1e-2
    batch_size: int = 400  # full batch: spikes come from the step size, not from sampling
    every: int = 50
    window: int = 5
    spike_factor: float = 2.0
    box: tuple[float, float, float, float] = (-1.0, 1.0, -1.0, 1.0)
    n_orders: int = 2
    n_frames: int = 6
    seed: int = 0

    def __post_init__(self):
        _check_ints(self, ("n_train", "steps", "batch_size", "every", "n_orders", "n_frames"))
        _check_ints(self, ("window",), minimum=0)
        if not self.spike_factor > 1:
            raise ValueError(f"spike_factor: expected a number > 1, got {self.spike_factor!r}")


@dataclass(frozen=True)
class SpikeTest(Result):
    """Relative face-count change over one step, |F(s) - F(s-1)| / F(s-1), at spike onsets
    against ordinary steps (pairs k*every, k*every + 1 outside spike windows); two-sided
    Mann-Whitney U and its p-value (nan when a side is empty)."""

    n_spikes: int
    n_ordinary: int
    median_spike_change: float
    median_ordinary_change: float
    u: float
    p_value: float
    spike_changes: tuple[float, ...]
    ordinary_changes: tuple[float, ...]


@dataclass(frozen=True)
class RegressionSummary(Result):
    seconds: float
    measurements: int
    loss_start: float
    loss_final: float
    loss_min: float
    faces_start: int
    faces_final: int
    spearman_vs_loss: dict
    spike_test: SpikeTest


@dataclass(frozen=True, eq=False)
class RegressionResult(Result):
    config: RegressionConfig
    records: tuple
    frames: tuple
    summary: RegressionSummary
    losses: tuple[float, ...]


def regression_target(x: torch.Tensor) -> torch.Tensor:
    """A bumpy landscape on [-1, 1]^2 with several wells (so the output's sublevel sets have topology)."""
    return torch.sin(3 * x[:, 0]) * torch.cos(3 * x[:, 1]) + 0.5 * torch.exp(-8 * ((x[:, 0] - 0.3) ** 2 + (x[:, 1] + 0.4) ** 2))


def spike_test(records, every: int) -> SpikeTest:
    """The `SpikeTest` of recorded steps (needs consecutive steps around spikes and ordinary pairs)."""
    from scipy.stats import mannwhitneyu

    by_step = {r.step: r for r in records}

    def change(s):
        a, b = by_step.get(s - 1), by_step.get(s)
        if a is None or b is None:
            return None
        return abs(b.counts.faces - a.counts.faces) / a.counts.faces

    spikes = [c for r in records if r.spike and (c := change(r.step)) is not None]
    ordinary = [
        c for r in records
        if r.step % every == 1 and not r.in_spike_window and not by_step.get(r.step - 1, r).in_spike_window
        and (c := change(r.step)) is not None
    ]
    if spikes and ordinary:
        res = mannwhitneyu(spikes, ordinary, alternative="two-sided")
        u, pv = float(res.statistic), float(res.pvalue)
    else:
        u = pv = math.nan
    med = lambda v: float(np.median(v)) if v else math.nan  # noqa: E731
    return SpikeTest(len(spikes), len(ordinary), med(spikes), med(ordinary), u, pv, tuple(spikes), tuple(ordinary))


def run_regression(config: RegressionConfig = RegressionConfig(), *, progress: bool = False) -> RegressionResult:
    """Fit the 2-D regression with a large Adam step; record regions around every loss spike."""
    from tqdm.auto import tqdm

    cfg = config
    gen = torch.Generator().manual_seed(cfg.seed)
    x0, x1, y0, y1 = cfg.box
    x = torch.rand(cfg.n_train, 2, generator=gen) * torch.tensor([x1 - x0, y1 - y0]) + torch.tensor([x0, y0])
    y = regression_target(x).unsqueeze(1)
    model = _mlp((2, *cfg.hidden, 1), cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    rec = TopologyRecorder(
        box=cfg.box, every=cfg.every, binary=False, n_orders=cfg.n_orders, keep_frames=True, window=cfg.window,
        spike_factor=cfg.spike_factor, pair=True, seed=cfg.seed,
    )
    t0 = time.perf_counter()
    order_gen = torch.Generator().manual_seed(cfg.seed + 1)
    losses = []
    with torch.random.fork_rng(), single_thread():
        torch.manual_seed(cfg.seed)
        for step in tqdm(range(cfg.steps + 1), disable=not progress, desc="topo-regression"):
            idx = torch.randperm(cfg.n_train, generator=order_gen)[: cfg.batch_size]
            model.eval()
            with torch.no_grad():
                full = float(nn.functional.mse_loss(model(x), y))
            losses.append(full)
            rec(step, model, type("State", (), {"loss": full})())
            model.train()
            if step == cfg.steps:
                break
            loss = nn.functional.mse_loss(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    recs = tuple(rec.records)
    regular = [r for r in recs if r.step % cfg.every == 0]
    loss_r = [r.loss for r in regular]
    signals = {
        "faces": lambda r: r.counts.faces, "random_max_beta1": lambda r: r.random.max_beta1,
        "random_max_beta1_per_face": lambda r: r.random.max_beta1_per_face,
        "sublevel_n_pairs0": lambda r: r.sublevel.n_pairs0, "sublevel_n_pairs1": lambda r: r.sublevel.n_pairs1,
        "sublevel_total_persistence0": lambda r: r.sublevel.total_persistence0,
    }
    summary = RegressionSummary(
        seconds=time.perf_counter() - t0, measurements=len(recs), loss_start=losses[0], loss_final=losses[-1],
        loss_min=float(min(losses)), faces_start=recs[0].counts.faces, faces_final=recs[-1].counts.faces,
        spearman_vs_loss={k: spearman([f(r) for r in regular], loss_r) for k, f in signals.items()},
        spike_test=spike_test(recs, cfg.every),
    )
    return RegressionResult(cfg, recs, tuple(_pick(rec.frames, cfg.n_frames)), summary, tuple(losses))


def write_regression(result: RegressionResult, out, *, name: str = "regression") -> dict:
    """Write `name`.json, `name`.csv and PNG figures (loss with the measured steps, counts)."""
    from ..viz._common import report_figure
    from ..viz.regions import plot_counts_vs_loss

    rows = [r.as_row() for r in result.records]
    files = _write_common(out, name, result.config, result.summary, rows)
    out = Path(out)
    files["frames"] = _write_frames(result.frames, out / f"{name}_frames.png")
    fig, ax = report_figure(figsize=(8, 4))
    plot_counts_vs_loss(rows, keys=("faces", "random_max_beta1_per_face", "sublevel_n_pairs0"), ax=ax)
    spikes = [r.step for r in result.records if r.spike]
    for s in spikes:
        ax.axvline(s, color="red", lw=0.5, alpha=0.5)
    files["counts"] = _save(fig, out / f"{name}_counts.png")
    return files
