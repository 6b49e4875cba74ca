"""Region commands: `reluscope regions`, `reluscope experiment topo-grok`, `topo-regression`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from .._checks import check_int
from ..data import fit_to_model, load_dataset
from ..experiments.topology import (
    GrokConfig, RegressionConfig, run_grok, run_grok_seeds, run_regression, write_grok, write_grok_seeds, write_regression,
)
from ..regions import Plane, fiedler_partition, regions_2d
from ..regions.summary import summarize_regions
from ..viz import report_figure
from ..viz.regions import FiedlerDisplay, RegionMapDisplay
from ._common import DeviceOpt, MemoryBudgetOpt, ModelArg, add_commands, address_option, check_workers, emit_json, load_user_model as load_model, save_figure, user_errors, workers_option

__all__ = ["register", "regions", "topo_grok", "topo_regression"]


def _floats(text: str, name: str, n: int) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"{name}: expected {n} comma-separated numbers, got {text!r}") from None
    if len(vals) != n:
        raise ValueError(f"{name}: expected {n} comma-separated numbers, got {text!r}")
    return vals


@user_errors
def regions(
    model_path: ModelArg,
    out: Annotated[Path, typer.Option(help="Output JSON file (counts, areas, timing, Fiedler score, topology).")],
    box: Annotated[Optional[str], typer.Option(help="xmin,xmax,ymin,ymax (plane coordinates with --data). Default: -1,1,-1,1, or around the three points.")] = None,
    data_name: Annotated[Optional[str], typer.Option("--data", help="For inputs of more than 2 numbers: the data set whose three inputs span the plane (mnist, fashion-mnist, digits).")] = None,
    points: Annotated[str, typer.Option(help="Indices of the three inputs (test split) spanning the plane.")] = "0,1,2",
    figure: Annotated[list[Path], typer.Option(help="Figure path(s): .png, .svg or .pdf (repeatable).")] = [],  # noqa: B006
    fiedler: Annotated[bool, typer.Option(help="Fiedler partition of the dual graph and its agreement with the decision (1 or 2 outputs).")] = True,
    topology: Annotated[bool, typer.Option(help="Betti summaries of random and output-sublevel filtrations.")] = False,
    device: DeviceOpt = "cpu",
    memory_budget: MemoryBudgetOpt = 2 * 1024**3,
):
    """Exact linear regions of a 2-D slice of a model: JSON summary plus an optional PNG/SVG."""
    import numpy as np

    model = load_model(model_path)
    plane = None
    if data_name is not None:
        idx = [int(i) for i in _floats(points, "points", 3)]
        x, _ = load_dataset(data_name, "test")
        if not all(0 <= i < len(x) for i in idx):
            raise ValueError(f"points: expected indices in [0, {len(x)}), got {points!r}")
        x = fit_to_model(model, x[idx], data_name)
        plane = Plane.through_points(x[0], x[1], x[2])
    chosen_box = _floats(box, "box", 4) if box is not None else (None if plane is not None else (-1.0, 1.0, -1.0, 1.0))
    t0 = time.perf_counter()
    rm = regions_2d(model, box=chosen_box, plane=plane, device=device, memory_budget=memory_budget, progress=True)
    seconds = time.perf_counter() - t0
    part = fiedler_partition(rm) if fiedler and rm.A.shape[1] in (1, 2) and rm.n_regions > 1 else None
    record = summarize_regions(rm, fiedler=part is not None, topology=topology, partition=part)
    summary = {
        "model": model_path, "box": rm.box, "plane": None if plane is None else {"data": data_name, "points": points},
        "seconds": seconds, **{k: v for k, v in record.to_dict().items() if v is not None},
    }
    for path in figure:
        fig, axes = report_figure(1, 2 if part is not None else 1, figsize=(10 if part is not None else 5, 5))
        axes = np.atleast_1d(axes)
        RegionMapDisplay.from_result(rm).plot(axes[0], decision_boundary=rm.A.shape[1] in (1, 2))
        if part is not None:
            FiedlerDisplay.from_result(rm, part).plot(axes[1])
        save_figure(fig, path)
    summary["figures"] = list(figure)
    emit_json(summary, out)


@user_errors(out="folder")
def topo_grok(
    out: Annotated[Path, typer.Option(help="Output folder: grok_seeds.json/.csv/.png, the sweep's rows in sweep/ (a rerun resumes from them), and with --maps grok.json/.csv and region-map figures.")] = Path("out/topo-grok"),
    steps: Annotated[int, typer.Option(help="Full-batch AdamW steps.")] = GrokConfig.steps,
    n_train: Annotated[int, typer.Option(help="Training inputs (sparse parity, 24 bits, parity of the first 3).")] = GrokConfig.n_train,
    init_scale: Annotated[float, typer.Option(help="Factor on the initial weights.")] = GrokConfig.init_scale,
    weight_decay: Annotated[float, typer.Option(help="Decoupled (AdamW) weight decay.")] = GrokConfig.weight_decay,
    checkpoints: Annotated[int, typer.Option(help="Log-spaced measured steps.")] = GrokConfig.n_checkpoints,
    seed: Annotated[int, typer.Option(help="Random seed of the first run.")] = GrokConfig.seed,
    seeds: Annotated[int, typer.Option(help="Runs, with seeds seed, seed+1, ...: one sweep task each.")] = 1,
    maps: Annotated[bool, typer.Option(help="Also redo the first seed's run here and draw its region maps and Fiedler splits (one more run).")] = False,
    address: address_option("seeds") = None,
    workers: workers_option("runs") = None,
):
    """Grokking (sparse parity, regions on the plane through three training inputs): every Fiedler
    graph variant and the best straight cut against the decision, over training, one run per seed."""
    seeds = check_int(seeds, "--seeds")
    check_workers(workers)
    cfg = GrokConfig(steps=steps, n_train=n_train, init_scale=init_scale, weight_decay=weight_decay, n_checkpoints=checkpoints, seed=seed)
    result = run_grok_seeds(cfg, range(seed, seed + seeds), out=out / "sweep", address=address, workers=workers,
                            progress=True)
    files = dict(write_grok_seeds(result, out))
    if maps:
        files.update(write_grok(run_grok(cfg, progress=True), out))
    emit_json({"runs": [{"seed": r.seed, "summary": r.summary} for r in result.rows], "files": files})


@user_errors(out="folder")
def topo_regression(
    out: Annotated[Path, typer.Option(help="Output folder (regression.json/.csv and PNG figures).")] = Path("out/topo-regression"),
    steps: Annotated[int, typer.Option(help="Optimiser steps.")] = RegressionConfig.steps,
    every: Annotated[int, typer.Option(help="Steps between regular measurements.")] = RegressionConfig.every,
    window: Annotated[int, typer.Option(help="Measure every step within this many steps of a loss spike.")] = RegressionConfig.window,
    lr: Annotated[float, typer.Option(help="Adam learning rate (large enough for loss spikes).")] = RegressionConfig.lr,
    seed: Annotated[int, typer.Option(help="Random seed.")] = RegressionConfig.seed,
):
    """2-D regression: cell counts and Betti summaries against the loss, every step around spikes."""
    cfg = RegressionConfig(steps=steps, every=every, window=window, lr=lr, seed=seed)
    result = run_regression(cfg, progress=True)
    emit_json({"summary": result.summary, "files": write_regression(result, out)})


def register(app: typer.Typer, experiment: typer.Typer) -> None:
    """Add `regions` to `app` and the two topology experiments to `experiment`."""
    add_commands(app, {"regions": regions})
    add_commands(experiment, {"topo-grok": topo_grok, "topo-regression": topo_regression})
