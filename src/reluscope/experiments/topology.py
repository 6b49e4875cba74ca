"""Topology of linear regions over training (Bosca et al. 2025; docs/methods.md, section 3).

`run_topo_binary`: a 2-D binary task (noisy moons, few points) trained long with weight decay, in
the grokking spirit; every `every` steps the exact regions on the box, the Fiedler partition of
the dual graph and its agreement with the network's decision (area-weighted, maximised over the
swap; our choice), counts and Betti summaries. The claim checked: the Fiedler partition comes to
follow the decision boundary.

`run_topo_regression`: a 2-D regression task (a smooth bump landscape) trained with a large Adam
step so the loss has spikes; cell counts and Betti summaries recorded against the training loss.
The claim checked: the number of cells and the Betti signals follow the loss, spikes included
(we report Spearman correlations of each signal with the loss, and the signals at loss spikes).

Defaults finish in a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from .._checks import single_thread
from ..regions.recorder import TopologyRecorder

__all__ = [
    "TopoBinaryConfig", "TopoRegressionConfig", "TopoResult", "run_topo_binary", "run_topo_regression",
    "write_topo_outputs", "spearman",
]


@dataclass(frozen=True)
class TopoBinaryConfig:
    data: str = "moons"
    n_train: int = 200
    n_val: int = 1000
    noise: float = 0.15
    hidden: tuple[int, ...] = (32, 32)
    epochs: int = 1500
    lr: float = 3e-3
    weight_decay: float = 1e-3
    batch_size: int = 50
    every: int = 300  # optimiser steps between measurements
    box: tuple[float, float, float, float] = (-2.0, 3.0, -1.5, 2.0)
    n_orders: int = 4
    n_frames: int = 6
    seed: int = 0

    def __post_init__(self):
        for name in ("n_train", "n_val", "epochs", "batch_size", "every", "n_orders", "n_frames"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {v!r}")


@dataclass(frozen=True)
class TopoRegressionConfig:
    n_train: int = 400
    hidden: tuple[int, ...] = (32, 32)
    steps: int = 3000
    lr: float = 1e-2
    batch_size: int = 400  # full batch: spikes come from the step size, not from sampling
    every: int = 50
    box: tuple[float, float, float, float] = (-1.0, 1.0, -1.0, 1.0)
    n_orders: int = 4
    seed: int = 0

    def __post_init__(self):
        for name in ("n_train", "steps", "batch_size", "every", "n_orders"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {v!r}")


@dataclass(frozen=True, eq=False)
class TopoResult:
    """`records`: one dict per measurement; `frames`: (step, RegionMap) for a frame strip;
    `summary`: headline numbers; `model`: the trained network."""

    config: object
    records: list
    frames: list
    summary: dict
    model: nn.Module = field(repr=False)


def spearman(a, b) -> float:
    """Spearman rank correlation (average ranks for ties); nan when either side is constant."""
    from scipy.stats import spearmanr

    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def _mlp(widths, seed):
    from ..train import mlp

    return mlp(widths[0], list(widths[1:-1]), widths[-1], seed=seed)


def _pick_frames(frames, k):
    if len(frames) <= k:
        return frames
    idx = np.unique(np.linspace(0, len(frames) - 1, k).round().astype(int))
    return [frames[i] for i in idx]


def run_topo_binary(config: TopoBinaryConfig = TopoBinaryConfig(), *, progress: bool = False) -> TopoResult:
    """Train a binary 2-D classifier long with weight decay, recording regions and Fiedler scores."""
    from ..data import make_toy
    from ..train import accuracy, train_classifier

    cfg = config
    x, y = make_toy(cfg.data, cfg.n_train, noise=cfg.noise, seed=cfg.seed)
    xv, yv = make_toy(cfg.data, cfg.n_val, noise=cfg.noise, seed=cfg.seed + 1)
    if int(y.max()) != 1:
        raise ValueError(f"data: expected a binary task, {cfg.data!r} has {int(y.max()) + 1} classes")
    model = _mlp((2, *cfg.hidden, 2), cfg.seed)
    rec = TopologyRecorder(box=cfg.box, binary=True, n_orders=cfg.n_orders, keep_frames=True, seed=cfg.seed)

    def callback(step, m, state):
        rec(step, m, state)
        rec.records[-1].update(train_accuracy=accuracy(m, x, y), val_accuracy=accuracy(m, xv, yv))

    t0 = time.perf_counter()
    with single_thread():  # tiny nets: threads only add overhead
        result = train_classifier(
            model, x, y, epochs=cfg.epochs, lr=cfg.lr, weight_decay=cfg.weight_decay, batch_size=cfg.batch_size,
            seed=cfg.seed, callbacks=[callback], callback_every=cfg.every, progress=progress,
        )
    recs = rec.records
    agree = [r["fiedler_agreement"] for r in recs]
    summary = {
        "seconds": time.perf_counter() - t0, "steps": result.steps, "measurements": len(recs),
        "final_val_accuracy": recs[-1]["val_accuracy"], "final_train_accuracy": recs[-1]["train_accuracy"],
        "first_step_val_accuracy_0.95": next((r["step"] for r in recs if r["val_accuracy"] >= 0.95), None),
        "fiedler_agreement_start": agree[0], "fiedler_agreement_final": agree[-1],
        "fiedler_agreement_max": max(agree), "fiedler_iou_final": recs[-1]["fiedler_iou"],
        "fiedler_unit_agreement_start": recs[0]["fiedler_unit_agreement"],
        "fiedler_unit_agreement_final": recs[-1]["fiedler_unit_agreement"],
        "fiedler_unit_agreement_mean_after_start": float(np.mean([r["fiedler_unit_agreement"] for r in recs[1:]])) if len(recs) > 1 else None,
        "fiedler_agreement_mean_after_start": float(np.mean(agree[1:])) if len(recs) > 1 else None,
        "faces_start": recs[0]["faces"], "faces_final": recs[-1]["faces"], "faces_max": max(r["faces"] for r in recs),
        "spearman_agreement_vs_val_accuracy": spearman(agree, [r["val_accuracy"] for r in recs]),
    }
    return TopoResult(cfg, recs, _pick_frames(rec.frames, cfg.n_frames), summary, result.model)


def regression_target(x: torch.Tensor) -> torch.Tensor:
    """A bumpy landscape on [-1, 1]^2 with several wells (so the output's sublevel sets have topology)."""
    return torch.sin(3 * x[:, 0]) * torch.cos(3 * x[:, 1]) + 0.5 * torch.exp(-8 * ((x[:, 0] - 0.3) ** 2 + (x[:, 1] + 0.4) ** 2))


def run_topo_regression(config: TopoRegressionConfig = TopoRegressionConfig(), *, progress: bool = False) -> TopoResult:
    """Fit a 2-D regression with a large Adam step; record cell counts and Betti summaries vs loss."""
    from tqdm.auto import tqdm

    cfg = config
    gen = torch.Generator().manual_seed(cfg.seed)
    x0, x1, y0, y1 = cfg.box
    x = torch.rand(cfg.n_train, 2, generator=gen) * torch.tensor([x1 - x0, y1 - y0]) + torch.tensor([x0, y0])
    y = regression_target(x).unsqueeze(1)
    model = _mlp((2, *cfg.hidden, 1), cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    rec = TopologyRecorder(box=cfg.box, binary=False, n_orders=cfg.n_orders, keep_frames=True, seed=cfg.seed)
    t0 = time.perf_counter()
    order_gen = torch.Generator().manual_seed(cfg.seed + 1)
    losses = []
    with torch.random.fork_rng(), single_thread():
        torch.manual_seed(cfg.seed)
        for step in tqdm(range(cfg.steps + 1), disable=not progress, desc="topo-regression"):
            idx = torch.randperm(cfg.n_train, generator=order_gen)[: cfg.batch_size]
            with torch.no_grad():
                full = float(nn.functional.mse_loss(model(x), y))
            losses.append(full)
            if step % cfg.every == 0:
                model.eval()
                rec(step, model, type("State", (), {"loss": full})())
                model.train()
            if step == cfg.steps:
                break
            loss = nn.functional.mse_loss(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    recs = rec.records
    loss_r = [r["loss"] for r in recs]
    signals = ("faces", "random_max_beta1", "random_total_persistence1", "sublevel_n_pairs0", "sublevel_n_pairs1", "sublevel_total_persistence0")
    lo = np.minimum.accumulate(np.array(loss_r))
    spikes = [i for i in range(1, len(recs)) if loss_r[i] > 2 * lo[i - 1] and loss_r[i] > 1.5 * loss_r[i - 1]]
    summary = {
        "seconds": time.perf_counter() - t0, "steps": cfg.steps, "measurements": len(recs),
        "loss_start": loss_r[0], "loss_final": loss_r[-1], "loss_min": float(min(losses)),
        "faces_start": recs[0]["faces"], "faces_final": recs[-1]["faces"],
        **{f"spearman_{s}_vs_loss": spearman([r[s] for r in recs], loss_r) for s in signals},
        "loss_spikes": [
            {"step": recs[i]["step"], "loss_before": loss_r[i - 1], "loss": loss_r[i],
             "faces_before": recs[i - 1]["faces"], "faces": recs[i]["faces"],
             "sublevel_n_pairs0_before": recs[i - 1]["sublevel_n_pairs0"], "sublevel_n_pairs0": recs[i]["sublevel_n_pairs0"]}
            for i in spikes
        ],
    }
    return TopoResult(cfg, recs, _pick_frames(rec.frames, 6), summary, model)


def _csv(records) -> str:
    keys = list(dict.fromkeys(k for r in records for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    for r in records:
        w.writerow(r)
    return buf.getvalue()


def write_topo_outputs(result: TopoResult, out: Path, *, name: str) -> dict:
    """Write `name`.json (config, summary, records), `name`.csv and figures; returns the paths."""
    from ..io_utils import write_bytes_atomic, write_json_atomic, write_text_atomic
    from ..viz._common import report_figure
    from ..viz.regions import plot_counts_vs_loss, plot_fiedler, plot_region_frames, plot_regions

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": out / f"{name}.json", "csv": out / f"{name}.csv"}
    write_json_atomic(files["json"], {"config": asdict(result.config), "summary": result.summary, "records": result.records})
    write_text_atomic(files["csv"], _csv(result.records))

    def save(fig, key):
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        files[key] = out / f"{name}_{key}.png"
        write_bytes_atomic(files[key], buf.getvalue())

    frames = result.frames
    fig, axes = report_figure(1, len(frames), figsize=(2.6 * len(frames), 2.8))
    plot_region_frames(frames, axes=np.atleast_1d(axes))
    save(fig, "frames")
    fig, ax = report_figure(figsize=(7, 4))
    if isinstance(result.config, TopoBinaryConfig):
        steps = [r["step"] for r in result.records]
        ax.plot(steps, [r["fiedler_agreement"] for r in result.records], label="Fiedler agreement (length weights)")
        ax.plot(steps, [r["fiedler_unit_agreement"] for r in result.records], label="Fiedler agreement (unit weights)")
        ax.plot(steps, [r["fiedler_iou"] for r in result.records], label="Fiedler IoU (length)", alpha=0.6)
        ax.plot(steps, [r["val_accuracy"] for r in result.records], label="val accuracy")
        ax.plot(steps, [r["train_accuracy"] for r in result.records], label="train accuracy", ls="--")
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
        save(fig, "fiedler")
        from ..regions import fiedler_partition

        rm = frames[-1][1]
        fig, axes = report_figure(1, 2, figsize=(10, 5))
        plot_regions(rm, ax=axes[0])
        plot_fiedler(rm, fiedler_partition(rm), ax=axes[1])
        save(fig, "final")
    else:
        plot_counts_vs_loss(result.records, keys=("faces", "random_max_beta1", "sublevel_n_pairs0", "sublevel_n_pairs1"), ax=ax)
        save(fig, "counts")
    return files
