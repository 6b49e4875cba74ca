"""Small tasks for testing and benchmarking sweeps; importable by Ray workers (tasks must be).

Their configs are dicts on purpose: the sweep engine takes dict configs as well as dataclasses, and
these tasks are how the tests and `bench/sweep.py` exercise that path. `flaky` and `sleepy` echo
the config's seed as a plain JSON object and have no annotated result type, so they exercise the
engine's untyped path too (rows stay JSON); `toy_training` and `depth_net` return frozen
dataclasses, which `SweepSummary.results(result_type(task))` rebuilds from the rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from ..data import make_toy, split_mnist
from ..folding import draw_pairs
from ..folding.path import path_chi
from ..train import accuracy, mlp, train_classifier

__all__ = ["toy_training", "ToyTrainingRow", "flaky", "sleepy", "depth_net", "DepthNetRow"]


@dataclass(frozen=True)
class ToyTrainingRow:
    """What `toy_training` reports: training accuracy, the loss per epoch and the sum of the weights."""

    accuracy: float
    losses: tuple[float, ...]
    weight_sum: float


def toy_training(config: dict) -> ToyTrainingRow:
    """Train a small MLP on two moons (seeded) and report its accuracy and final loss."""
    x, y = make_toy("moons", config.get("n", 200), seed=config["seed"])
    model = mlp(2, [config["width"]] * config["depth"], 2, seed=config["seed"])
    fit = train_classifier(model, x, y, epochs=config.get("epochs", 5), seed=config["seed"])
    with torch.no_grad():
        weight_sum = float(sum(p.double().sum() for p in model.parameters()))
    return ToyTrainingRow(accuracy(model, x, y), tuple(h.loss for h in fit.history), weight_sum)


def flaky(config: dict) -> dict:
    """Raises for configs with `fail` set; otherwise echoes the config's `seed`."""
    if config.get("fail"):
        raise ValueError(f"seed {config['seed']}: failing on purpose")
    return {"seed": config["seed"]}


def sleepy(config: dict) -> dict:
    """Sleeps `config['sleep']` seconds (default 0.2): a task that takes a while and costs no CPU."""
    time.sleep(config.get("sleep", 0.2))
    return {"seed": config["seed"]}


@dataclass(frozen=True)
class DepthNetRow:
    """What `depth_net` reports for one net: accuracies, mean chi and mean regions per segment."""

    val_accuracy: float
    test_accuracy: float
    chi_mean: float
    mean_regions: float


def depth_net(config: dict) -> DepthNetRow:
    """One net of the folding depth study: train a depth x width ReLU MLP on MNIST (seeded, fixed
    epochs), then chi on `pairs` segments between test digits 1 and 4. The benchmark's grid."""

    (x, y), (xv, yv), (xt, yt) = split_mnist(config["n_train"], config["n_val"], seed=config.get("data_seed", 0))
    model = mlp(x.shape[1], [config["width"]] * config["depth"], 10, seed=config["seed"])
    fit = train_classifier(model, x, y, x_val=xv, y_val=yv, epochs=config["epochs"], lr=3e-3,
                           batch_size=64, seed=config["seed"])
    pairs = draw_pairs(yt, (1, 4), budget=config["pairs"], seed=config.get("data_seed", 0))
    chi, lengths = path_chi(model, xt[pairs[:, 0]], xt[pairs[:, 1]])
    return DepthNetRow(float(fit.final_accuracy), accuracy(model, xt, yt), float(chi.mean()), float(lengths.mean()))
