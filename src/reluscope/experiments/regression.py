"""Topology around loss spikes of a 2-D regression (Bosca et al.; see
`reluscope.experiments.topology`): regions recorded around every spike, a Mann-Whitney test."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from .._checks import single_thread
from ..results import Result
from ..regions.recorder import TopologyRecord, TopologyRecorder
from ..viz import report_figure
from ..viz.regions import plot_counts_vs_loss
from ._common import check_ints
from ._topology import RecordedFiles, _mlp, _pick, _save, _write_records, spearman


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
        check_ints(self, ("n_train", "steps", "batch_size", "every", "n_orders", "n_frames"))
        check_ints(self, ("window",), minimum=0)
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


def spike_test(records: Sequence[TopologyRecord], every: int) -> SpikeTest:
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


@dataclass(frozen=True)
class RegressionFiles(RecordedFiles):
    """What `write_regression` wrote."""

    counts: Path


def write_regression(result: RegressionResult, out: str | Path, *, name: str = "regression") -> RegressionFiles:
    """Write `name`.json, `name`.csv and PNG figures (loss with the measured steps, counts)."""
    rows, files = _write_records(result, out, name)
    out = Path(out)
    fig, ax = report_figure(figsize=(8, 4))
    plot_counts_vs_loss(rows, keys=("faces", "random_max_beta1_per_face", "sublevel_n_pairs0"), ax=ax)
    spikes = [r.step for r in result.records if r.spike]
    for s in spikes:
        ax.axvline(s, color="red", lw=0.5, alpha=0.5)
    return RegressionFiles(**files, counts=_save(fig, out / f"{name}_counts.png"))
