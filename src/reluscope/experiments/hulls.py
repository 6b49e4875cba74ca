"""Nearest-convex-hull (NCH) experiment of Jia et al.: NCH accuracy per hidden layer vs the network.

One config = one trained MLP (`HullsConfig` -> `run_hulls_config` -> a `HullsRun` row), so a study is
a list of configs run in a plain loop or on the sweep engine. Protocol:

* The official training split is cut into a validation set (`val_per_class` images per class,
  never trained on) and a pool; the net trains on `net_train_size` images of the pool (all of it
  when None). The class hulls are spanned by `hull_per_class` of the net's own training images per
  class (capped by what the class has).
* For every hidden layer (after each activation): NCH accuracy on the validation images, on the
  test images, and leave-one-out on the hull points (a class's only point is not kept: that hull is
  empty, its distance infinite); misinclusion of training (leave-one-out) and test points, with the
  paper's tolerance 0.03 relative to each hull's radius (largest distance of a hull point from its
  class centroid), each point counted once.
* The layer is chosen by validation accuracy (ties: the earlier layer), never on the test set;
  the reported NCH figure is the chosen layer's test accuracy, next to the network's test accuracy
  on the same images.

`QUICK` is small enough for a few minutes on 2 cores; `paper_configs()` is the paper's scale (4 x 1024
MLPs, full MNIST / Fashion-MNIST, hulls of up to 6,000 points per class), meant for the sweep engine.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from .._checks import as_enum
from ..data import ImageSet, load_dataset
from ..hull.classifier import NearestConvexHull
from ..hull.properties import MISINCLUSION_FRACTION
from ..io_utils import write_json_atomic
from ..results import Result
from ..sweep import decode, run_sweep
from ..train import accuracy, mlp, train_classifier

__all__ = [
    "HullsConfig", "LayerRow", "HullsRun", "HullsSummary", "HullsResult", "QUICK", "paper_configs",
    "run_hulls_config", "run_hulls_experiment", "write_hulls_experiment", "layer_activations", "format_table",
]

_ACTS = (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.LeakyReLU, nn.GELU, nn.SiLU)


@dataclass(frozen=True)
class HullsConfig:
    """One trained net and its hulls. Sizes are images; per-class counts are capped by availability."""

    dataset: str = "mnist"
    activation: str = "relu"
    width: int = 256
    depth: int = 4
    net_train_size: int | None = 10_000
    epochs: int = 2
    hull_per_class: int = 150
    val_per_class: int = 30
    test_per_class: int | None = 60
    seed: int = 0


@dataclass(frozen=True)
class LayerRow(Result):
    layer: str
    nch_val: float
    nch_test: float
    nch_train_loo: float
    misinclusion_train: float
    misinclusion_test: float


@dataclass(frozen=True)
class HullsRun(Result):
    """Per-layer rows, the layer chosen on validation and its NCH test accuracy vs the network's."""

    config: HullsConfig
    layers: tuple[LayerRow, ...]
    chosen_layer: str
    nch_test: float
    net_val: float
    net_test: float
    hull_points: int
    test_points: int
    seconds: float

    @classmethod
    def from_dict(cls, d: dict) -> HullsRun:
        """The run of its `to_dict()` (a sweep row's JSON form), read as the sweep engine reads it."""
        return decode(cls, d)


QUICK = (
    HullsConfig(dataset="mnist"),
    HullsConfig(dataset="fashion-mnist"),
)


def paper_configs(seeds: Iterable[int] = (0, 1, 2)) -> list[HullsConfig]:
    """The paper's scale: 4 x 1024 MLPs (ReLU and sigmoid) on full MNIST and Fashion-MNIST, hulls of up
    to 6,000 training points per class, 500 validation images per class held out, the full test set."""
    return [HullsConfig(dataset=ds, activation=act, width=1024, depth=4, net_train_size=None, epochs=10,
                        hull_per_class=6000, val_per_class=500, test_per_class=None, seed=s)
            for ds in ("mnist", "fashion-mnist") for act in ("relu", "sigmoid") for s in seeds]


def layer_activations(model: nn.Module, x: torch.Tensor, *, include_input: bool = True) -> list[tuple[str, np.ndarray]]:
    """(name, float64 [N, units]) after every activation module of an nn.Sequential, in order."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model: expected an nn.Sequential, got {type(model).__name__}")
    out = [("input", x.reshape(x.shape[0], -1).double().numpy())] if include_input else []
    h = x
    with torch.no_grad():
        for name, module in model.named_children():
            h = module(h)
            if isinstance(module, _ACTS):
                out.append((f"{name}:{type(module).__name__}", h.reshape(h.shape[0], -1).double().numpy()))
    return out


def _subset(y: torch.Tensor, per_class: int, rng: np.random.Generator) -> np.ndarray:
    y = y.numpy()
    return np.sort(np.concatenate([rng.choice(np.flatnonzero(y == c), min(per_class, int((y == c).sum())), replace=False)
                                   for c in np.unique(y)]))


def _loader(name: str):
    image_set = as_enum(name, ImageSet, "dataset")
    return lambda split: load_dataset(image_set, split)


def split_indices(y_train: torch.Tensor, y_test: torch.Tensor, config: HullsConfig):
    """(val, net, hull, test) index arrays; val and net are disjoint, hull is inside net."""
    rng = np.random.default_rng(config.seed)
    n = y_train.shape[0]
    val = _subset(y_train, config.val_per_class, rng)
    pool = np.setdiff1d(np.arange(n), val)
    size = pool.size if config.net_train_size is None else min(config.net_train_size, pool.size)
    net = np.sort(rng.choice(pool, size, replace=False))
    hull = net[_subset(y_train[torch.from_numpy(net)], config.hull_per_class, rng)]
    test = np.arange(y_test.shape[0]) if config.test_per_class is None else _subset(y_test, config.test_per_class, rng)
    return val, net, hull, test


def run_hulls_config(config: HullsConfig | dict) -> HullsRun:
    """Train one net, measure every hidden layer, choose the layer on validation."""

    config = HullsConfig(**config) if isinstance(config, dict) else config
    t0 = time.perf_counter()
    load = _loader(config.dataset)
    xtr, ytr = load("train")
    xte, yte = load("test")
    val, net, hull, test = split_indices(ytr, yte, config)
    torch.manual_seed(config.seed)
    model = mlp(784, [config.width] * config.depth, 10, activation=config.activation, seed=config.seed)
    lr = 1e-3 if config.activation == "relu" else 3e-3
    train_classifier(model, xtr[net], ytr[net], epochs=config.epochs, lr=lr, seed=config.seed)
    model.eval()
    parts = {k: (xtr[v], ytr[v]) for k, v in (("val", val), ("hull", hull))}
    parts["test"] = (xte[test], yte[test])
    acts = {k: layer_activations(model, x, include_input=False) for k, (x, _) in parts.items()}
    labels = {k: y.numpy() for k, (_, y) in parts.items()}
    rows = []
    for li, (name, a_hull) in enumerate(acts["hull"]):
        clf = NearestConvexHull().fit(a_hull, labels["hull"])
        p_val, _ = clf.classify(acts["val"][li][1])
        p_te, m_te = clf.classify(acts["test"][li][1], labels["test"], inside_fraction=MISINCLUSION_FRACTION)
        p_tr, m_tr = clf.classify(a_hull, labels["hull"], loo=True, inside_fraction=MISINCLUSION_FRACTION)
        rows.append(LayerRow(
            name, float((p_val == labels["val"]).mean()), float((p_te == labels["test"]).mean()),
            float((p_tr == labels["hull"]).mean()), float(m_tr.mean()), float(m_te.mean()),
        ))
    chosen = max(range(len(rows)), key=lambda i: (rows[i].nch_val, -i))  # ties: the earlier layer
    return HullsRun(
        config, tuple(rows), rows[chosen].layer, rows[chosen].nch_test,
        accuracy(model, *parts["val"]), accuracy(model, *parts["test"]), int(hull.size), int(test.size),
        time.perf_counter() - t0,
    )


@dataclass(frozen=True)
class HullsSummary(Result):
    """One (dataset, activation) over its runs: mean NCH test accuracy at the validation-chosen layer
    vs the network's, the chosen layers, and the largest test misinclusion (any layer, first layer)."""

    dataset: str
    activation: str
    nch_test: float
    net_test: float
    runs: int
    chosen_layers: tuple[str, ...]
    max_misinclusion_test: float
    first_layer_misinclusion_test: float
    nch_beats_network: bool

    @property
    def key(self) -> str:
        """"dataset/activation", the summary's key in the JSON files."""
        return f"{self.dataset}/{self.activation}"


@dataclass(frozen=True)
class HullsResult(Result):
    """Every run of `run_hulls_experiment`, in the order of the configs."""

    runs: tuple[HullsRun, ...]
    seconds: float
    settings: dict = field(default_factory=dict)

    def summary(self) -> tuple[HullsSummary, ...]:
        """Per (dataset, activation), in order of first appearance."""
        groups: dict[tuple[str, str], list[HullsRun]] = {}
        for r in self.runs:
            groups.setdefault((r.config.dataset, r.config.activation), []).append(r)
        return tuple(HullsSummary(
            ds, act, float(np.mean([r.nch_test for r in runs])), float(np.mean([r.net_test for r in runs])), len(runs),
            tuple(r.chosen_layer for r in runs), float(max(max(row.misinclusion_test for row in r.layers) for r in runs)),
            float(max(r.layers[0].misinclusion_test for r in runs)),
            bool(np.mean([r.nch_test for r in runs]) > np.mean([r.net_test for r in runs])),
        ) for (ds, act), runs in groups.items())

    def write(self, out: str | Path) -> Path:
        """`write_hulls_experiment(self, out)`."""
        return write_hulls_experiment(self, out)


def run_hulls_experiment(configs: Iterable[HullsConfig] = QUICK, *, out: str | Path | None = None,
                         address: str | None = None, workers: int | None = None,
                         mapper: Callable[[Callable, list], Sequence] | None = None,
                         progress: bool = False) -> HullsResult:
    """Run every config as one task of a sweep and collect the runs.

    With `out`, on the sweep engine (`reluscope.sweep.run_sweep`: rows in `out/sweep.jsonl`, a rerun
    resumes; `address` / `workers` as there, `workers=0` in this process); or through
    `mapper(task, configs)` (e.g. a reproduce context's map). One of the two is needed."""
    configs = list(configs)
    t0 = time.perf_counter()
    if (out is None) == (mapper is None):
        raise ValueError("run_hulls_experiment: pass either out (a folder for the sweep's rows) or mapper")
    if mapper is None:

        summary = run_sweep(run_hulls_config, configs, out=out, address=address, workers=workers,
                            retry_failed=True, progress=progress).check("hull configs")
        rows = summary.results(HullsRun)
    else:
        rows = mapper(run_hulls_config, configs)
    runs = tuple(r if isinstance(r, HullsRun) else HullsRun.from_dict(r) for r in rows)
    return HullsResult(runs, time.perf_counter() - t0, {"configs": [asdict(c) for c in configs]})


def write_hulls_experiment(result: HullsResult, out: str | Path) -> Path:
    """Write the runs, seconds, settings and per-(dataset, activation) summary (keyed
    "dataset/activation") as JSON, atomically, to the file `out`; returns its path."""
    return write_json_atomic(Path(out), {"runs": result.runs, "seconds": result.seconds, "settings": result.settings,
                                         "summary": {s.key: s for s in result.summary()}})


def format_table(exp: HullsResult) -> str:
    """Every layer of every run as a fixed-width text table (the chosen layer starred)."""
    head = "dataset        act      layer          NCH_val NCH_te  NCH_loo mis_tr  mis_te  net_te  chosen"
    lines = [head]
    for r in exp.runs:
        for row in r.layers:
            lines.append(
                f"{r.config.dataset:<14} {r.config.activation:<8} {row.layer:<14} {row.nch_val:.3f}   {row.nch_test:.3f}  "
                f"{row.nch_train_loo:.3f}   {row.misinclusion_train:.3f}   {row.misinclusion_test:.3f}   "
                f"{r.net_test:.3f}   {'*' if row.layer == r.chosen_layer else ''}"
            )
    return "\n".join(lines)


def __getattr__(name: str):
    if name == "HullsExperiment":
        warnings.warn("reluscope.experiments.hulls.HullsExperiment is deprecated; use HullsResult",
                      DeprecationWarning, stacklevel=2)
        return HullsResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
