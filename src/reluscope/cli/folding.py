"""Folding commands: `reluscope fold`, `reluscope cantornet`, `reluscope experiment folding-depth`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .._checks import check_int
from ..data import fit_to_model, load_dataset
from ..experiments.folding_training import (
    FgsmConfig, FoldingRegulariserConfig, FoldingTrainingConfig, run_fgsm_interaction, run_folding_regulariser,
    run_folding_training, write_fgsm_interaction, write_folding_regulariser, write_folding_training,
)
from ..experiments.folding_study import MEASURES, FoldingStudyConfig, run_folding_study, write_folding_study
from ..folding import global_folding
from ..folding.cantor import cantornet_folding
from ..folding.global_ import Aggregator, PairStrategy
from ..viz.folding import plot_cantornet_curves, plot_folding_histogram
from ._common import DataNameOpt, EpochsOpt, MemoryBudgetOpt, ModelArg, OutJsonOpt, add_commands, address_option, check_workers, emit_json, load_user_model as load_model, save_figure, user_errors, workers_option

__all__ = ["register", "fold", "cantornet", "folding_depth"]


_RunSeedOpt = Annotated[int, typer.Option(help="Seed of data split, pairs and net.")]  # the one-net experiments


def _classes(text: str) -> tuple[int, int]:
    try:
        a, b = (int(c) for c in text.split(","))
    except ValueError:
        raise ValueError(f"classes: expected two comma-separated labels like 1,4, got {text!r}") from None
    return a, b


@user_errors
def fold(
    model_path: ModelArg,
    out: Annotated[Path, typer.Option(help="Output JSON file (all chi values, pairs, aggregate).")],
    data_name: DataNameOpt = "mnist",
    split: Annotated[str, typer.Option(help="Split of the data set: train or test.")] = "test",
    classes: Annotated[str, typer.Option(help="The two classes the segments join, comma-separated.")] = "1,4",
    budget: Annotated[int, typer.Option(help="Number of segments (pairs) to evaluate.")] = 1000,
    pairs: Annotated[PairStrategy, typer.Option(help="Pair strategy: random, all or centroids.")] = PairStrategy.RANDOM,
    aggregator: Annotated[Aggregator, typer.Option(help="How chi values become one number.")] = Aggregator.MEDIAN_POSITIVE,
    n_points: Annotated[Optional[int], typer.Option(help="Sample this many equally spaced points (the papers use 11) instead of exact traversal.")] = None,
    include_output: Annotated[bool, typer.Option(help="Code the output units' sign bits too (the authors do).")] = True,
    seed: Annotated[int, typer.Option(help="Seed of the pair choice.")] = 0,
    plot: Annotated[Optional[Path], typer.Option(help="Also write a histogram of chi (PNG).")] = None,
    memory_budget: MemoryBudgetOpt = 2 * 1024**3,
):
    """Global folding of a model between two classes: chi on many segments, aggregated (JSON)."""

    model = load_model(model_path)
    x, y = load_dataset(data_name, split, seed=seed)
    x = fit_to_model(model, x, data_name)
    res = global_folding(model, x, y, classes=_classes(classes), pairs=pairs.value, budget=budget,
                         aggregator=aggregator.value, include_output=include_output, n_points=n_points,
                         seed=seed, progress=True, memory_budget=memory_budget)
    if plot is not None:
        ax = plot_folding_histogram(res.chi, title=f"{model_path.name}: classes {res.classes[0]} vs {res.classes[1]}")
        save_figure(ax.figure, plot)
    emit_json({
        "model": model_path, "data": data_name, "split": split, "classes": res.classes,
        "pairs_strategy": res.strategy.value, "aggregator": res.aggregator.value,
        "exact": res.exact, "n_points": n_points, "include_output": include_output, "value": res.value,
        "mean": res.aggregate("mean"), "max": res.aggregate("max"), "share_folded": res.aggregate("share_folded"),
        "n_segments": len(res.chi), "mean_walk_length": float(res.n_patterns.mean()),
        "chi": res.chi, "pairs": res.pairs,
    }, out)


@user_errors
def cantornet(
    out: Annotated[Path, typer.Option(help="Output JSON file with the chi table.")],
    k_max: Annotated[int, typer.Option("--k-max", help="Largest recursion depth k (rows for k = 1..k_max).")] = 5,
    n_points: Annotated[int, typer.Option(help="Grid points of the papers' sampling to compare with.")] = 11,
    plot: Annotated[Optional[Path], typer.Option(help="Also write the running chi curves (PNG).")] = None,
):
    """chi of CantorNet A, B, C along (0, 3/4) -> (1, 3/4) for k = 1..k_max: exact (rational
    arithmetic), float64 exact traversal, and the papers' grid."""

    k_max = check_int(k_max, "k_max")
    rows = cantornet_folding(range(1, k_max + 1), n_points=n_points)
    typer.echo(f"{'k':>2} {'rep':>3} {'units':>6} {'regions':>7} {'chi exact':>10} {'chi float64':>11} {f'chi {n_points} pts':>11}", err=True)
    for r in rows:
        typer.echo(f"{r.k:>2} {r.representation:>3} {r.hidden_units:>6} {r.regions:>7} {r.chi_exact:>10.4f} "
                   f"{r.chi_float:>11.4f} {r.chi_grid:>11.4f}", err=True)
    if plot is not None:
        axes = plot_cantornet_curves(rows)
        save_figure(axes[0].figure, plot)
    emit_json({"path": [[0, 0.75], [1, 0.75]], "n_points": n_points, "include_output": True, "rows": [
        {"k": r.k, "representation": r.representation, "hidden_units": r.hidden_units, "regions": r.regions,
         "chi_exact": r.chi_exact, "chi_float64": r.chi_float, "regions_float64": r.regions_float,
         "chi_grid": r.chi_grid} for r in rows]}, out)


def _ints(text, name):
    if text is None:
        return None
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"{name}: expected comma-separated integers, got {text!r}") from None


@user_errors(out="folder")
def folding_depth(
    out: Annotated[Path, typer.Option(help="Output folder: folding_study.json/.csv, folding_vs_depth.png, folding_vs_error.png, and the sweep's rows in sweep/ (a rerun resumes from them).")] = Path("out/folding-depth"),
    full: Annotated[bool, typer.Option(help="The papers' grid: widths 10-18, 100 nets per architecture, 59,000 images, 1,000 segments, 10 epochs (2,000 nets: hours on many cores).")] = False,
    seeds: Annotated[Optional[int], typer.Option(help="Nets per architecture (default 2, or 100 with --full).")] = None,
    pairs: Annotated[Optional[int], typer.Option(help="Segments between digit-1 and digit-4 test images.")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Training epochs; snapshots when validation accuracy first reaches each level, and at the end.")] = None,
    n_train: Annotated[Optional[int], typer.Option(help="Training images (raw pixels).")] = None,
    depths: Annotated[Optional[str], typer.Option(help="Hidden layer counts, comma-separated (default 3,4,5,6).")] = None,
    widths: Annotated[Optional[str], typer.Option(help="Widths, comma-separated (default 10,14,18; 10,12,14,16,18 with --full).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the data split and the segments (each net's seed is its index).")] = 0,
    address: address_option("nets") = None,
    workers: workers_option("nets") = None,
):
    """Folding vs depth and folding vs generalisation error on MNIST (Lewandowski et al.): MLPs of
    3-6 hidden layers, each measured when its validation accuracy first reaches 0.7 / 0.8 / 0.9 and
    at the end; Phi, mean chi and share folded, exact and on the 11-point grid. One sweep task per net."""
    check_workers(workers)
    changes = {k: v for k, v in dict(seeds=seeds, pairs=pairs, epochs=epochs, n_train=n_train,
                                      depths=_ints(depths, "--depths"), widths=_ints(widths, "--widths")).items()
               if v is not None}
    config = FoldingStudyConfig.paper(data_seed=seed, **changes) if full else FoldingStudyConfig(data_seed=seed, **changes)
    result = run_folding_study(config, out=out / "sweep", address=address, workers=workers, progress=True)
    files = write_folding_study(result, out)
    trends = result.depth_trends(seed=seed)
    error_trends = result.error_trends(seed=seed)
    for m, _ in MEASURES:
        typer.echo(f"depth vs {m}: {trends[m].text()}", err=True)
    for t in error_trends:
        typer.echo(f"depth {t.depth}: test error vs phi_exact: {t.trend.text()}", err=True)
    emit_json({"out": out, "files": files, "nets": len(result.rows), "nets_at_target": len(result.at_target()),
               "depth_trends": trends, "error_trends": error_trends, "summary": result.summary()})


@user_errors(out="folder")
def folding_training(
    out: Annotated[Path, typer.Option(help="Output folder: folding_training.json and .png.")] = Path("out/folding-training"),
    hidden: Annotated[str, typer.Option(help="Hidden widths, comma-separated.")] = "16,16,16,16",
    epochs: EpochsOpt = FoldingTrainingConfig.epochs,
    every: Annotated[int, typer.Option(help="Measure every this many optimiser steps.")] = FoldingTrainingConfig.every,
    pairs: Annotated[int, typer.Option(help="Digit-1 -> digit-4 test segments.")] = FoldingTrainingConfig.pairs,
    seed: _RunSeedOpt = FoldingTrainingConfig.seed,
):
    """Exact folding (digits 1 -> 4) and validation error recorded during training on MNIST."""

    widths = tuple(int(h) for h in hidden.split(",") if h.strip())
    curve = run_folding_training(FoldingTrainingConfig(widths, epochs=epochs, every=every, pairs=pairs, seed=seed))
    typer.echo(write_folding_training(curve, out).json.read_text().rstrip())


@user_errors
def folding_regulariser(
    out: OutJsonOpt = Path("out/folding-regulariser.json"),
    lam: Annotated[float, typer.Option(help="Weight of the folding penalty (> 0 rewards folding).")] = 0.05,
    seeds: Annotated[int, typer.Option(help="Nets per setting.")] = FoldingRegulariserConfig.seeds,
    epochs: EpochsOpt = FoldingRegulariserConfig.epochs,
    tau: Annotated[float, typer.Option(help="Soft-bit temperature of the surrogate.")] = FoldingRegulariserConfig.tau,
):
    """Train with and without the smooth folding surrogate; compare exact chi and test accuracy
    (raw pixels in [0, 1], as `reluscope reproduce folding`)."""

    result = run_folding_regulariser(FoldingRegulariserConfig((0.0, lam), seeds=seeds, epochs=epochs, tau=tau))
    typer.echo(write_folding_regulariser(result, out).read_text().rstrip())


@user_errors
def folding_adversarial(
    out: OutJsonOpt = Path("out/folding-adversarial.json"),
    attack_size: Annotated[float, typer.Option(help="FGSM step: L-infinity distance of the perturbed endpoints (standardised input units).")] = FgsmConfig.attack_size,
    pairs: Annotated[int, typer.Option(help="Digit-5 -> digit-7 test segments.")] = FgsmConfig.pairs,
    seed: _RunSeedOpt = FgsmConfig.seed,
):
    """Interaction effect I(k) and chi on MNIST 5 -> 7 segments, clean vs FGSM-perturbed endpoints."""

    res = run_fgsm_interaction(FgsmConfig(attack_size, pairs=pairs, seed=seed))
    typer.echo(write_fgsm_interaction(res, out).read_text().rstrip())


def register(app: typer.Typer, experiment: typer.Typer) -> None:
    """Add `fold`, `cantornet` and the folding experiments."""
    add_commands(app, {"fold": fold, "cantornet": cantornet})
    add_commands(experiment, {
        "folding-depth": folding_depth, "folding-training": folding_training,
        "folding-regulariser": folding_regulariser, "folding-adversarial": folding_adversarial,
    })
