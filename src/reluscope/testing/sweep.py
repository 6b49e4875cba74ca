"""Small tasks for testing and benchmarking sweeps; importable by Ray workers (tasks must be)."""

from __future__ import annotations

import time
from ..data import make_toy, split_mnist
from ..folding import draw_pairs
from ..folding.path import path_chi
from ..train import accuracy, mlp, train_classifier

__all__ = ["toy_training", "flaky", "sleepy", "depth_net"]


def toy_training(config: dict) -> dict:
    """Train a small MLP on two moons (seeded) and report its accuracy and final loss."""
    import torch

    x, y = make_toy("moons", config.get("n", 200), seed=config["seed"])
    model = mlp(2, [config["width"]] * config["depth"], 2, seed=config["seed"])
    fit = train_classifier(model, x, y, epochs=config.get("epochs", 5), seed=config["seed"])
    with torch.no_grad():
        weight_sum = float(sum(p.double().sum() for p in model.parameters()))
    return {"accuracy": accuracy(model, x, y), "losses": [h.loss for h in fit.history], "weight_sum": weight_sum}


def flaky(config: dict) -> dict:
    """Raises for configs with `fail` set; otherwise echoes the config's `seed`."""
    if config.get("fail"):
        raise ValueError(f"seed {config['seed']}: failing on purpose")
    return {"seed": config["seed"]}


def sleepy(config: dict) -> dict:
    """Sleeps `config['sleep']` seconds (default 0.2): a task that takes a while and costs no CPU."""
    time.sleep(config.get("sleep", 0.2))
    return {"seed": config["seed"]}


def depth_net(config: dict) -> dict:
    """One net of the folding depth study: train a depth x width ReLU MLP on MNIST (seeded, fixed
    epochs), then chi on `pairs` segments between test digits 1 and 4. The benchmark's grid."""

    (x, y), (xv, yv), (xt, yt) = split_mnist(config["n_train"], config["n_val"], seed=config.get("data_seed", 0))
    model = mlp(x.shape[1], [config["width"]] * config["depth"], 10, seed=config["seed"])
    fit = train_classifier(model, x, y, x_val=xv, y_val=yv, epochs=config["epochs"], lr=3e-3,
                           batch_size=64, seed=config["seed"])
    pairs = draw_pairs(yt, (1, 4), budget=config["pairs"], seed=config.get("data_seed", 0))
    chi, lengths = path_chi(model, xt[pairs[:, 0]], xt[pairs[:, 1]])
    return {"val_accuracy": float(fit.final_accuracy), "test_accuracy": accuracy(model, xt, yt),
            "chi_mean": float(chi.mean()), "mean_regions": float(lengths.mean())}
