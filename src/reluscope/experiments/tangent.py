"""Tangent similarities on MNIST and Fashion-MNIST (Racz & Daroczy, ESANN 2021; docs/methods.md).

The authors' CNN (conv 5x5 64, conv 5x5 64, max-pool, conv 3x3 64 x2, max-pool, fc -64, fc 64-10)
adapted to 28x28 inputs (the flattened size is 64 * 3 * 3 = 576 instead of CIFAR's 1024), trained
on each dataset. On `per_class` test images per class we measure the similarity gap of the block,
sparse, Euclidean and hidden-feature similarities, and classify the test images with the landmark
and linear classifiers, the landmarks being `landmarks_per_class` training images per class (the
sparse metric's mask is computed from these labelled landmarks, never from the test labels). The
linear classifier is fitted twice: on the landmarks' own similarities, and on `n_heldout` other
training images' similarities to the landmarks. Beside accuracy we report the paper's goodness
criterion: the share of test images whose mean similarity to their own class exceeds the mean
over the other classes. The paper's claim: the block similarity is at least as good as the
network itself.

The tangent metrics are used per output and without normalisation by default: that is the form
in which Euler's identity ties <g_k(x), theta> to the logits (the paper's reason for "at least as
good"). `variants` adds the block metric's landmark classifier in other forms (summed over
outputs, per-input min-max, per-parameter min-max) for comparison.

`TangentConfig()` is the fair scale (width-16 CNN, 20,000 training images, 3 epochs, 100 test and
100 landmark images per class, 2,000 held-out images); `TangentConfig.quick()` is sized for a
2-core CPU in a few minutes; `TangentConfig.full()` is the authors' CNN width (64) on all
training images with 200 test images per class.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from ..data import load_fashion_mnist, load_mnist, sample_per_class
from ..io_utils import write_json_atomic
from ..results import Result
from ..sweep import run_sweep
from ..tangent import (
    Normalization,
    LandmarkClassifier,
    LinearSimilarityClassifier,
    goodness_curve,
    per_input_gap,
    sign_agreement_mask,
    similarity_gap,
    tangent_similarity,
)
from ..train import accuracy, train_classifier
from ..viz import report_figure, save_figure
from ..viz.tangent import plot_gap_histograms
from ._common import WrittenFiles, check_ints

__all__ = ["TangentConfig", "TangentDatasetResult", "TangentExperimentResult", "TangentFiles", "tangent_cnn",
           "run_tangent_experiment", "write_tangent_experiment", "run_dataset", "dataset_task", "with_overrides",
           "VARIANTS"]

DATASETS = ("mnist", "fashion-mnist")


def tangent_cnn(input_shape: tuple[int, int, int] = (1, 28, 28), *, width: int = 64, classes: int = 10, seed: int = 0) -> nn.Sequential:
    """The authors' CNN for inputs [C, H, W] (247,434 parameters on CIFAR-10's 3x32x32)."""
    c, h, w = input_shape
    torch.manual_seed(seed)
    flat_h, flat_w = ((h - 8) // 2 - 4) // 2, ((w - 8) // 2 - 4) // 2
    if flat_h < 1 or flat_w < 1:
        raise ValueError(f"input_shape: expected images of at least 18x18, got {list(input_shape)}")
    return nn.Sequential(
        nn.Conv2d(c, width, 5), nn.ReLU(), nn.Conv2d(width, width, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(width, width, 3), nn.ReLU(), nn.Conv2d(width, width, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(width * flat_h * flat_w, 64), nn.ReLU(), nn.Linear(64, classes),
    )


VARIANTS = ("summed", "per_input_minmax", "per_parameter_minmax")


@dataclass(frozen=True)
class TangentConfig:
    datasets: tuple[str, ...] = DATASETS
    width: int = 16
    n_train: int = 20_000
    epochs: int = 3
    per_class: int = 100
    landmarks_per_class: int = 100
    n_heldout: int = 2_000
    threshold: float = 1.15
    normalize: str = "none"  # of the tangent metrics (a Normalization name; see module doc)
    per_output: bool = True
    variants: tuple[str, ...] = VARIANTS
    memory_budget: int = 2 * 1024**3  # bytes of per-sample gradients held at once
    seed: int = 0

    @classmethod
    def quick(cls) -> "TangentConfig":
        """A few minutes on 2 CPU cores: MNIST only, 6,000 training images, 2 epochs, 30 test and
        30 landmark images per class, 600 held-out images."""
        return cls(datasets=("mnist",), n_train=6_000, epochs=2, per_class=30, landmarks_per_class=30,
                   n_heldout=600)

    @classmethod
    def full(cls) -> "TangentConfig":
        """The authors' CNN width 64, all training images but the held-out ones, 200 test images per class."""
        return cls(width=64, n_train=58_000, epochs=5, per_class=200, landmarks_per_class=200)

    def __post_init__(self):
        for v in self.variants:
            if v not in VARIANTS:
                raise ValueError(f"variants: expected names from {list(VARIANTS)}, got {v!r}")
        check_ints(self, ("width", "n_train", "epochs", "per_class", "landmarks_per_class", "n_heldout"))
        Normalization.parse(self.normalize)
        for d in self.datasets:
            if d not in DATASETS:
                raise ValueError(f"datasets: expected names from {list(DATASETS)}, got {d!r}")


@dataclass(frozen=True)
class TangentDatasetResult(Result):
    """One data set: the network, the similarity gaps and goodness per metric, the classifiers."""

    dataset: str
    n_parameters: int
    network_accuracy: float  # on the evaluated test images
    gaps: dict  # metric -> {"gap", "same", "cross"}
    per_input_gaps: dict  # metric -> list of per-input gaps (histograms)
    eps_at_zero: dict  # metric -> share of inputs whose per-input gap is < 0
    share_good: dict  # metric -> share of test inputs with same-class mean > other-class mean (the paper's criterion)
    classifier_accuracy: dict  # "metric/landmark", "metric/linear", "block/linear-heldout" -> accuracy
    variant_accuracy: dict  # "summed", "per_input_minmax", ... -> block landmark / linear accuracy
    sparse_fraction: float
    at_least_as_good: bool  # best block-metric classifier >= network accuracy
    n_test: int
    seconds: float


def _per_class(x, y, k, gen):
    idx = sample_per_class(y, k, generator=gen)
    return x[idx], y[idx]


def _load(name):
    loader = load_mnist if name == "mnist" else load_fashion_mnist
    return loader("train", flatten=False), loader("test", flatten=False)


def _split(x_train, y_train, config, gen):
    """Disjoint training images: the network's, the held-out ones and the landmarks."""
    order = torch.randperm(x_train.shape[0], generator=gen)
    need = config.n_train + config.n_heldout
    if need >= x_train.shape[0]:
        raise ValueError(f"n_train + n_heldout: expected fewer than {x_train.shape[0]} images, got {need}")
    train, held, rest = order[: config.n_train], order[config.n_train:need], order[need:]
    lm = rest[sample_per_class(y_train[rest], config.landmarks_per_class, generator=gen)]
    return train, held, lm


def run_dataset(name: str, config: TangentConfig, *, progress: bool = False) -> TangentDatasetResult:
    start = time.perf_counter()
    (x_train, y_train), (x_test, y_test) = _load(name)
    gen = torch.Generator().manual_seed(config.seed)
    train, held, lm = _split(x_train, y_train, config, gen)
    model = tangent_cnn(tuple(x_train.shape[1:]), width=config.width, seed=config.seed)
    model = train_classifier(
        model, x_train[train], y_train[train], epochs=config.epochs, lr=1e-3, batch_size=64,
        seed=config.seed, progress=progress,
    ).model.eval()
    xs, ys = _per_class(x_test, y_test, config.per_class, gen)
    xl, yl = x_train[lm], y_train[lm]
    xh, yh = x_train[held], y_train[held]
    net_acc = float(accuracy(model, xs, ys))

    mask = sign_agreement_mask(model, xl, yl, threshold=config.threshold, progress=progress)
    metrics = {"block": {}, "sparse": {"mask": mask}, "euclidean": {}, "hidden": {}}
    gaps, per_input, eps0, good, acc = {}, {}, {}, {}, {}
    n = xs.shape[0]
    both = torch.cat([xs, xl])
    for metric, extra in metrics.items():
        # one matrix over test images and landmarks: its blocks serve the gap and the classifiers
        # euclidean is the dense counterpart of sparse (same per-output gradients, no mask)
        opts = {} if metric == "hidden" else {"normalize": config.normalize, "per_output": config.per_output,
                                               "memory_budget": config.memory_budget}
        s_all = tangent_similarity(model, both, metric=metric, progress=progress, **opts, **extra)
        s = s_all[:n, :n]
        g = similarity_gap(s, ys)
        gaps[metric] = {"gap": g.gap, "same": g.same, "cross": g.cross}
        per_input[metric] = per_input_gap(s, ys).tolist()
        eps0[metric] = goodness_curve(s, ys, gammas=[0.0]).eps_at(0.0)
        good[metric] = float((per_input_gap(s, ys) > 0).double().mean())
        if metric in ("block", "sparse", "hidden"):
            s_ll, s_tl = s_all[n:, n:], s_all[:n, n:]
            acc[f"{metric}/landmark"] = LandmarkClassifier().fit(s_ll, yl).score(s_tl, ys)
            acc[f"{metric}/linear"] = LinearSimilarityClassifier().fit(s_ll, yl).score(s_tl, ys)
        if metric == "block":
            s_hl = tangent_similarity(model, xh, xl, metric="block", progress=progress, **opts)
            acc["block/linear-heldout"] = LinearSimilarityClassifier().fit(s_hl, yh).score(s_tl, ys)
    variants = {}
    for v in config.variants:
        opts = {"per_output": False} if v == "summed" else {"normalize": v}
        s_all = tangent_similarity(model, both, metric="block", progress=progress, memory_budget=config.memory_budget,
                                   **opts)
        s_ll, s_tl = s_all[n:, n:], s_all[:n, n:]
        variants[v] = {"landmark": LandmarkClassifier().fit(s_ll, yl).score(s_tl, ys),
                       "linear": LinearSimilarityClassifier().fit(s_ll, yl).score(s_tl, ys),
                       "share_good": float((per_input_gap(s_all[:n, :n], ys) > 0).double().mean())}
    best_block = max(acc["block/landmark"], acc["block/linear"], acc["block/linear-heldout"])
    return TangentDatasetResult(
        dataset=name,
        n_parameters=sum(p.numel() for p in model.parameters()),
        network_accuracy=net_acc,
        gaps=gaps,
        per_input_gaps=per_input,
        eps_at_zero=eps0,
        share_good=good,
        classifier_accuracy=acc,
        variant_accuracy=variants,
        sparse_fraction=mask.fraction,
        at_least_as_good=best_block >= net_acc,
        n_test=n,
        seconds=time.perf_counter() - start,
    )


def dataset_task(config: TangentConfig) -> TangentDatasetResult:
    """One data set (`config.datasets[0]`) -> its result: the pure seeded task of the sweep."""
    if len(config.datasets) != 1:
        raise ValueError(f"config.datasets: a task runs one data set, got {list(config.datasets)}")
    return run_dataset(config.datasets[0], config)


@dataclass(frozen=True)
class TangentExperimentResult(Result):
    """Every data set of a run of `run_tangent_experiment`, in the order of `config.datasets`."""

    config: TangentConfig
    datasets: tuple[TangentDatasetResult, ...]
    seconds: float = 0.0


@dataclass(frozen=True)
class TangentFiles(WrittenFiles):
    """What `write_tangent_experiment` wrote."""

    gaps: Path
    json: Path


def run_tangent_experiment(config: TangentConfig | None = None, *, out: str | Path, address: str | None = None,
                           workers: int | None = None, progress: bool = False) -> TangentExperimentResult:
    """Every data set of `config` as one task of a sweep (`reluscope.sweep.run_sweep`; rows in
    `out/sweep.jsonl`, a rerun resumes), so the data sets train side by side on separate cores,
    or on a cluster with `address`. `workers=0` runs them here, one after another, without Ray.
    The summary and figure are written by `write_tangent_experiment`."""

    config = config or TangentConfig()
    start = time.perf_counter()
    configs = [replace(config, datasets=(name,)) for name in config.datasets]
    summary = run_sweep(dataset_task, configs, out=out, address=address, workers=workers, retry_failed=True,
                        progress=progress).check("tangent data sets")
    return TangentExperimentResult(config, tuple(summary.results(TangentDatasetResult)),
                                   time.perf_counter() - start)


def write_tangent_experiment(result: TangentExperimentResult, out: str | Path) -> TangentFiles:
    """Write tangent.json (config, and per data set every result but the per-input gaps, which
    are summarised by their 5/25/50/75/95% quantiles) and tangent_gaps.png (per data set, the
    per-input gap histograms of the block and sparse metrics) into the folder `out`, atomically."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    n = len(result.datasets)
    fig, axes = report_figure(n, 2, figsize=(10, 3.6 * n), squeeze=False)
    for row, r in zip(axes, result.datasets):
        for ax, metric in zip(row, ("block", "sparse")):
            plot_gap_histograms({metric: r.per_input_gaps[metric]}, ax=ax, title=f"{r.dataset}: {metric} metric")
    gaps = save_figure(fig, out / "tangent_gaps.png")
    return TangentFiles(gaps, write_json_atomic(out / "tangent.json", _document(result)))


def _document(result: TangentExperimentResult) -> dict:
    out = {"config": asdict(result.config), "datasets": {}}
    for r in result.datasets:
        d = {k: v for k, v in asdict(r).items() if k != "per_input_gaps"}
        d["per_input_gap_quantiles"] = {
            m: np.nanquantile(np.asarray(v, dtype=float), [0.05, 0.25, 0.5, 0.75, 0.95]).tolist()
            for m, v in r.per_input_gaps.items()
        }
        out["datasets"][r.dataset] = d
    return out


def with_overrides(config: TangentConfig, **overrides: object) -> TangentConfig:
    """`config` with the overrides that are not None (the CLI's options left unset stay)."""
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})
