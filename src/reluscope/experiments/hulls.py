"""Experiment `reluscope experiment hulls`: nearest-convex-hull accuracy per layer vs the network.

Reproduces the shape of Jia et al.'s Table 6: MLPs with 4 hidden layers (ReLU and sigmoid) on
MNIST and Fashion-MNIST; for every layer (input included) the NCH training accuracy
(leave-one-out), test accuracy, misinclusion on train and test, next to the network's accuracies on
the same points. Defaults are small (width 256, 100 training / 50 test points per class for the
hulls) so it runs in minutes on 2 cores; `full=True` uses width 1024 and 1000 / 200 per class.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn

from ..hull.classifier import overfitting_report

__all__ = ["HullsExperiment", "layer_activations", "run_hulls_experiment"]

_ACTS = (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.LeakyReLU, nn.GELU, nn.SiLU)


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


@dataclass(frozen=True)
class HullsExperiment:
    rows: tuple[dict, ...]  # one per (dataset, activation, layer): OverfittingRow fields + keys
    settings: dict
    seconds: float

    def nch_beats_network(self) -> dict:
        """Per (dataset, activation): best NCH test accuracy over layers vs the network's."""
        out = {}
        for r in self.rows:
            key = f"{r['dataset']}/{r['activation']}"
            best = out.get(key, {"best_nch_test": -1.0})
            if r["nch_test"] > best["best_nch_test"]:
                best = {"best_nch_test": r["nch_test"], "layer": r["layer"], "net_test": r["net_test"]}
            out[key] = best
        for v in out.values():
            v["nch_beats_network"] = bool(v["best_nch_test"] > v["net_test"])
        return out


def _subset(y: torch.Tensor, per_class: int, rng: np.random.Generator) -> np.ndarray:
    y = y.numpy()
    return np.sort(np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in np.unique(y)]))


def run_hulls_experiment(
    *,
    full: bool = False,
    datasets: tuple[str, ...] = ("mnist", "fashion-mnist"),
    activations: tuple[str, ...] = ("relu", "sigmoid"),
    width: int | None = None,
    train_per_class: int | None = None,
    test_per_class: int | None = None,
    net_train_size: int | None = None,
    epochs: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> HullsExperiment:
    from ..data import load_fashion_mnist, load_mnist
    from ..train import accuracy, mlp, train_classifier

    width = width or (1024 if full else 256)
    train_per_class = train_per_class or (1000 if full else 100)
    test_per_class = test_per_class or (200 if full else 50)
    net_train_size = net_train_size or (60000 if full else 12000)
    epochs = epochs or (10 if full else 4)
    loaders = {"mnist": load_mnist, "fashion-mnist": load_fashion_mnist}
    t0 = time.perf_counter()
    rows = []
    for ds in datasets:
        if ds not in loaders:
            raise ValueError(f"datasets: expected names from {sorted(loaders)}, got {ds!r}")
        xtr, ytr = loaders[ds]("train")
        xte, yte = loaders[ds]("test")
        rng = np.random.default_rng(seed)
        net_idx = torch.from_numpy(rng.choice(xtr.shape[0], min(net_train_size, xtr.shape[0]), replace=False))
        hull_tr = torch.from_numpy(_subset(ytr[net_idx], train_per_class, rng))
        hull_tr = net_idx[hull_tr]  # the hulls use points the network was trained on
        hull_te = torch.from_numpy(_subset(yte, test_per_class, rng))
        for act in activations:
            model = mlp(784, [width] * 4, 10, activation=act, seed=seed)
            lr = 1e-3 if act == "relu" else 3e-3
            train_classifier(model, xtr[net_idx], ytr[net_idx], epochs=epochs, lr=lr, seed=seed, progress=progress)
            model.eval()
            a_tr = layer_activations(model, xtr[hull_tr])
            a_te = layer_activations(model, xte[hull_te])
            layers = [(n, a, b) for (n, a), (_, b) in zip(a_tr, a_te)]
            report = overfitting_report(
                layers, ytr[hull_tr].numpy(), yte[hull_te].numpy(),
                net_train=accuracy(model, xtr[hull_tr], ytr[hull_tr]),
                net_test=accuracy(model, xte[hull_te], yte[hull_te]),
            )
            for r in report:
                rows.append({"dataset": ds, "activation": act, **asdict(r)})
            if progress:
                print(f"{ds}/{act}: " + ", ".join(f"{r.layer} {r.nch_test:.3f}" for r in report), flush=True)
    settings = dict(full=full, datasets=list(datasets), activations=list(activations), width=width,
                    train_per_class=train_per_class, test_per_class=test_per_class,
                    net_train_size=net_train_size, epochs=epochs, seed=seed)
    return HullsExperiment(tuple(rows), settings, time.perf_counter() - t0)


def format_table(exp: HullsExperiment) -> str:
    head = "dataset        act      layer          mis_tr  mis_te  NCH_tr  NCH_te  TR/TE   net_tr  net_te"
    lines = [head]
    for r in exp.rows:
        lines.append(
            f"{r['dataset']:<14} {r['activation']:<8} {r['layer']:<14} {r['misinclusion_train']:.3f}   "
            f"{r['misinclusion_test']:.3f}   {r['nch_train']:.3f}   {r['nch_test']:.3f}   {r['tr_te']:.3f}   "
            f"{r['net_train']:.3f}   {r['net_test']:.3f}"
        )
    return "\n".join(lines)
