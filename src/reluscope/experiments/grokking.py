"""Topology over a grokking run (Bosca et al.; see `reluscope.experiments.topology`): Fiedler
splits of the region map against the decision, tracked over training, and a sweep over seeds."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from .._checks import single_thread
from ..io_utils import write_json_atomic, write_text_atomic
from ..regions import Plane, fiedler_partition
from ..regions.recorder import TopologyRecorder
from ..results import Result
from ..sweep import run_sweep
from ..train import accuracy
from ..viz import report_figure
from ..viz.regions import plot_fiedler, plot_regions
from ._common import WrittenFiles, check_ints
from ._topology import RecordedFiles, _csv, _mlp, _pick, _save, _write_records, spearman


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
        check_ints(self, ("n_bits", "k", "n_train", "n_test", "steps", "n_checkpoints", "grid", "n_orders",
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

    cfg = config

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


@dataclass(frozen=True)
class GrokRow(Result):
    """One grokking run of a sweep over seeds: its seed, summary, and every checkpoint's flat row
    (`TopologyRecord.as_row()`: accuracies, counts, each variant's scores; the CSV's columns)."""

    seed: int
    summary: GrokSummary
    records: tuple[dict, ...]

    def track(self, name: str) -> VariantTrack:
        """The summary's track of a graph variant ("length-rw", ...) or of "straight-cut"."""
        for t in self.summary.tracks:
            if t.name == name:
                return t
        raise KeyError(f"name: no track {name!r}; expected one of {[t.name for t in self.summary.tracks]}")


def grok_row(config: GrokConfig) -> GrokRow:
    """One grokking run as a row, the unit of a sweep over seeds."""
    result = run_grok(config)
    return GrokRow(config.seed, result.summary, tuple(r.as_row() for r in result.records))


def _flat(row: GrokRow) -> dict:
    """A row's CSV / summary columns: the summary flattened, four columns per track."""
    flat = {"seed": row.seed, **{k: v for k, v in asdict(row.summary).items() if k != "tracks"}}
    for t in row.summary.tracks:
        key = t.name.replace("-", "_")
        flat.update({f"{key}_kappa_final": t.kappa_final, f"{key}_kappa_max": t.kappa_max,
                     f"{key}_beats_straight_share": t.beats_straight_share, f"{key}_degenerate_share": t.degenerate_share})
    return flat


@dataclass(frozen=True)
class GrokSeedsResult(Result):
    """One `GrokRow` per seed of `run_grok_seeds`, in seed order (`config.seed` is the first run's)."""

    config: GrokConfig
    rows: tuple[GrokRow, ...]


def run_grok_seeds(config: GrokConfig, seeds: Iterable[int], *, out: str | Path, address: str | None = None, workers: int | None = None,
                   progress: bool = False) -> GrokSeedsResult:
    """One grokking run per seed (`grok_row`), as a sweep (`reluscope.sweep.run_sweep`: rows in
    `out/sweep.jsonl`, a rerun resumes; `workers=0` runs them here without Ray); rows in seed order."""

    configs = [replace(config, seed=int(s)) for s in seeds]
    if not configs:
        raise ValueError("seeds: expected at least one seed")
    rows = run_sweep(grok_row, configs, out=out, address=address, workers=workers, retry_failed=True,
                     progress=progress).check("grokking runs").results(GrokRow)
    return GrokSeedsResult(config, tuple(rows))


@dataclass(frozen=True)
class GrokSeedsFiles(WrittenFiles):
    """What `write_grok_seeds` wrote."""

    json: Path
    csv: Path
    figure: Path


def write_grok_seeds(result: GrokSeedsResult, out: str | Path) -> GrokSeedsFiles:
    """grok_seeds.json (config, rows with their checkpoints), grok_seeds.csv (one summary row per
    seed) and grok_seeds.png (accuracies and the default split's and the straight cut's kappa per seed)."""
    out, rows, config = Path(out), list(result.rows), result.config
    json = write_json_atomic(out / "grok_seeds.json", {"config": asdict(config), "runs": [
        {**_flat(r), "records": r.records} for r in rows]})
    csv = write_text_atomic(out / "grok_seeds.csv", _csv([_flat(r) for r in rows]))
    fig, axes = report_figure(2, len(rows), figsize=(3.6 * len(rows), 5.6), sharex=True, squeeze=False)
    for col, r in enumerate(rows):
        recs = r.records
        steps = np.maximum([x["step"] for x in recs], 0.5)
        axes[0][col].plot(steps, [x["train_accuracy"] for x in recs], "--", label="train")
        axes[0][col].plot(steps, [x["test_accuracy"] for x in recs], label="test")
        axes[0][col].set_title(f"seed {r.seed}" + (" (grokked)" if r.summary.grokked else ""))
        axes[1][col].plot(steps, [x["fiedler_length_rw_kappa"] for x in recs], label="Fiedler, normalised cut")
        axes[1][col].plot(steps, [x["fiedler_straight_kappa"] for x in recs], color="black", label="best straight cut")
        axes[1][col].set_xscale("log")
        axes[1][col].set_xlabel("step (0 drawn at 0.5)")
    axes[0][0].set_ylabel("accuracy")
    axes[1][0].set_ylabel("kappa (area-weighted)")
    axes[0][0].legend(fontsize=7)
    axes[1][0].legend(fontsize=7)
    return GrokSeedsFiles(json, csv, _save(fig, out / "grok_seeds.png"))


@dataclass(frozen=True)
class GrokFiles(RecordedFiles):
    """What `write_grok` wrote."""

    kappa: Path
    final: Path


def write_grok(result: GrokResult, out: str | Path, *, name: str = "grok") -> GrokFiles:
    """Write `name`.json (config, summary, records), `name`.csv and PNG figures; returns paths."""
    _, files = _write_records(result, out, name)
    out = Path(out)
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
    kappa = _save(fig, out / f"{name}_kappa.png")
    rm = result.frames[-1][1]
    fig, axes = report_figure(1, 2, figsize=(10, 5))
    plot_regions(rm, ax=axes[0])
    plot_fiedler(rm, fiedler_partition(rm), ax=axes[1])
    return GrokFiles(**files, kappa=kappa, final=_save(fig, out / f"{name}_final.png"))
