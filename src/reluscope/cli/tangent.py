"""Tangent-similarity commands: `reluscope tangent` and `reluscope experiment tangent`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..data import fit_to_model, load_dataset, sample_per_class
from ..experiments.tangent import TangentConfig, run_tangent_experiment, with_overrides, write_tangent_experiment
from ..tangent import (
    LandmarkClassifier, LinearSimilarityClassifier, goodness_curve, per_input_gap, sign_agreement_mask,
    similarity_gap, tangent_similarity,
)
from ..tangent.features import Normalization
from ..tangent.similarity import Metric
from ..train import accuracy
from ..viz.tangent import plot_gap_histograms
from ._common import DataNameOpt, ModelArg, add_commands, address_option, check_workers, emit_json, load_user_model as load_model, save_figure, user_errors, workers_option

__all__ = ["register", "tangent", "tangent_experiment"]


_NormalizeOpt = Annotated[Normalization, typer.Option(help="Normalisation of the tangent vectors: none (default: the Euler-identity form), per_input_minmax (degenerate, see docs/methods.md), per_parameter_minmax (over the landmarks), l2 or value_scaling.")]


def _per_class(x, y, k: int, seed: int):
    import torch

    idx = sample_per_class(y, k, generator=torch.Generator().manual_seed(seed))
    return x[idx], y[idx]


@user_errors
def tangent(
    model_path: ModelArg,
    out: Annotated[Path, typer.Option(help="Output JSON file (gap, goodness, accuracies).")],
    data_name: DataNameOpt = "mnist",
    metric: Annotated[Metric, typer.Option(help="Similarity: euclidean, full, block, sparse or hidden.")] = Metric.BLOCK,
    per_output: Annotated[bool, typer.Option(help="Per-output gradients summed over outputs (else the gradient of the summed outputs).")] = True,
    normalize: _NormalizeOpt = Normalization.NONE,
    per_class: Annotated[int, typer.Option(help="Test inputs per class to evaluate.")] = 20,
    landmarks_per_class: Annotated[int, typer.Option(help="Training inputs per class used as landmarks (and for the sparse mask).")] = 20,
    threshold: Annotated[float, typer.Option(help="Sign-agreement threshold of the sparse metric.")] = 1.15,
    seed: Annotated[int, typer.Option(help="Seed of the input choice.")] = 0,
    plot: Annotated[Optional[Path], typer.Option(help="Also write the per-input gap histogram (PNG).")] = None,
):
    """Tangent similarity of a model on test inputs: gap, (eps, gamma) curve, and the landmark and
    linear classifiers' accuracies against the network's own."""
    import torch

    model = load_model(model_path).eval()
    xt, yt = load_dataset(data_name, "train", seed=seed)
    xs, ys = load_dataset(data_name, "test", seed=seed)
    xs, ys = _per_class(fit_to_model(model, xs, data_name), ys, per_class, seed)
    xl, yl = _per_class(fit_to_model(model, xt, data_name), yt, landmarks_per_class, seed + 1)
    extra = {}
    if metric is Metric.SPARSE:
        extra["mask"] = sign_agreement_mask(model, xl, yl, threshold=threshold, progress=True)
    n = xs.shape[0]
    s_all = tangent_similarity(model, torch.cat([xs, xl]), metric=metric.value, per_output=per_output,
                               normalize=normalize.value, progress=True, **extra)
    s, s_ll, s_tl = s_all[:n, :n], s_all[n:, n:], s_all[:n, n:]
    gap = similarity_gap(s, ys)
    gaps = per_input_gap(s, ys)
    curve = goodness_curve(s, ys)
    if plot is not None:
        ax = plot_gap_histograms({metric.value: gaps.numpy()}, title=f"{model_path.name}: per-input gaps")
        save_figure(ax.figure, plot)
    emit_json({
        "model": model_path, "data": data_name, "metric": metric.value, "per_output": per_output,
        "normalize": normalize.value, "n_inputs": n, "n_landmarks": xl.shape[0],
        "gap": gap.gap, "same_class_mean": gap.same, "cross_class_mean": gap.cross,
        "eps_at_gamma_0": curve.eps_at(0.0),
        "goodness_curve": {"gamma": curve.gamma, "eps": curve.eps},
        "network_accuracy": accuracy(model, xs, ys),
        "landmark_accuracy": LandmarkClassifier().fit(s_ll, yl).score(s_tl, ys),
        "linear_accuracy": LinearSimilarityClassifier().fit(s_ll, yl).score(s_tl, ys),
        "sparse_fraction_kept": extra["mask"].fraction if extra else None,
    }, out)


@user_errors(out="folder")
def tangent_experiment(
    out: Annotated[Path, typer.Option(help="Output folder: tangent.json, tangent_gaps.png and the sweep's rows in sweep/ (a rerun resumes from them).")] = Path("out/tangent"),
    full: Annotated[bool, typer.Option(help="The authors' CNN width 64, all training images, 200 test images per class (long on a CPU).")] = False,
    quick: Annotated[bool, typer.Option(help="A few minutes on 2 CPU cores: MNIST, 6,000 training images, 30 + 30 images per class (default: the fair scale, 20,000 training images, 100 + 100 per class, 2,000 held out).")] = False,
    datasets: Annotated[Optional[str], typer.Option(help="Comma-separated: mnist,fashion-mnist (default both).")] = None,
    per_class: Annotated[Optional[int], typer.Option(help="Test images per class.")] = None,
    landmarks_per_class: Annotated[Optional[int], typer.Option(help="Landmark training images per class.")] = None,
    n_heldout: Annotated[Optional[int], typer.Option(help="Held-out training images the second linear classifier is fitted on.")] = None,
    n_train: Annotated[Optional[int], typer.Option(help="Training images for the CNN.")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Training epochs.")] = None,
    width: Annotated[Optional[int], typer.Option(help="Channels of the convolutions (64 in the paper).")] = None,
    normalize: _NormalizeOpt = Normalization.NONE,
    seed: Annotated[int, typer.Option(help="Seed of data choice and training.")] = 0,
    address: address_option("data sets") = None,
    workers: workers_option("data sets") = None,
):
    """The authors' CNN on MNIST and Fashion-MNIST: gaps of the block and sparse similarities and
    classifier accuracies against the network's (is the similarity at least as good?)."""

    config = TangentConfig.full() if full else (TangentConfig.quick() if quick else TangentConfig())
    names = tuple(d.strip() for d in datasets.split(",")) if datasets else None
    config = with_overrides(config, datasets=names, per_class=per_class, landmarks_per_class=landmarks_per_class,
                            n_heldout=n_heldout, n_train=n_train, epochs=epochs, width=width, seed=seed,
                            normalize=normalize.value)
    check_workers(workers)
    result = run_tangent_experiment(config, out=out / "sweep", address=address, workers=workers, progress=True)
    files = write_tangent_experiment(result, out)
    for r in result.datasets:
        typer.echo(f"{r.dataset}: network {r.network_accuracy:.3f}; " + ", ".join(
            f"{k} {v:.3f}" for k, v in r.classifier_accuracy.items()) + f"; at least as good: {r.at_least_as_good}", err=True)
    typer.echo(files.json.read_text().rstrip())  # written by write_tangent_experiment; printed here


def register(app: typer.Typer, experiment: typer.Typer) -> None:
    """Add `reluscope tangent` and `reluscope experiment tangent`."""
    add_commands(app, {"tangent": tangent})
    add_commands(experiment, {"tangent": tangent_experiment})
