"""Folding during training, with and without the folding regulariser, and under FGSM (MNIST).

* `run_folding_training`: one MLP trained with Adam; every `every` steps the exact chi on fixed
  digit-1 / digit-4 test segments and the validation error are recorded, so folding can be read
  against training progress and generalisation error.
* `run_folding_regulariser`: the same architecture and seeds trained with `lam * folding_penalty`
  (our smooth surrogate; the papers' exact term is not public) and without it; exact chi and
  test accuracy compared.
* `run_fgsm_interaction`: interaction effect I(k) at the middle of the walk, and chi, on segments
  between clean MNIST 5 and 7 test images vs the same segments with FGSM-perturbed endpoints.

Each takes its config dataclass (`FoldingTrainingConfig`, `FoldingRegulariserConfig`,
`FgsmConfig`) and returns a frozen result; `write_folding_training`, `write_folding_regulariser`
and `write_fgsm_interaction` write it atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .._checks import check_int
from ..folding import draw_pairs, folding_loss, interaction_effect, path_folding_many
from ..folding.path import path_chi

__all__ = [
    "FoldingTrainingConfig", "TrainingCurve", "run_folding_training", "write_folding_training",
    "FoldingRegulariserConfig", "RegulariserRun", "RegulariserResult", "run_folding_regulariser",
    "write_folding_regulariser", "FgsmConfig", "FgsmInteraction", "run_fgsm_interaction",
    "write_fgsm_interaction", "fgsm", "training_document", "fgsm_document",
]


def _check_ints(config, names, minimum=1):
    for name in names:
        check_int(getattr(config, name), name, minimum=minimum)


def _widths(value, name: str) -> tuple[int, ...]:
    widths = tuple(value)
    if not widths:
        raise ValueError(f"{name}: expected a non-empty sequence of ints >= 1, got {value!r}")
    return tuple(check_int(w, name) for w in widths)


def _data(n_train: int, n_val: int, seed: int):
    from ..data import load_mnist

    x, y = load_mnist("train")
    xt, yt = load_mnist("test")
    order = torch.as_tensor(np.random.default_rng(seed).permutation(len(x)))
    tr, va = order[:n_train], order[n_train:n_train + n_val]
    mu, sd = x[tr].mean(0), x[tr].std(0).clamp(min=0.1)  # chi of a given net is unchanged by it
    return ((x[tr] - mu) / sd, y[tr]), ((x[va] - mu) / sd, y[va]), ((xt - mu) / sd, yt)


@dataclass(frozen=True)
class FoldingTrainingConfig:
    """One MLP (`hidden` widths) trained with Adam for `epochs`; chi on `pairs` digit-1 -> digit-4
    test segments and the validation error every `every` optimiser steps."""

    hidden: tuple[int, ...] = (16, 16, 16, 16)
    epochs: int = 6
    every: int = 40
    pairs: int = 100
    n_train: int = 10_000
    n_val: int = 1_000
    lr: float = 3e-3
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "hidden", _widths(self.hidden, "hidden"))
        _check_ints(self, ("epochs", "every", "pairs", "n_train", "n_val"))
        check_int(self.seed, "seed", minimum=0)


@dataclass(frozen=True)
class TrainingCurve:
    steps: np.ndarray
    chi_mean: np.ndarray
    share_folded: np.ndarray
    val_error: np.ndarray
    hidden: tuple[int, ...]


def run_folding_training(config: FoldingTrainingConfig = FoldingTrainingConfig(), *, data=None) -> TrainingCurve:
    """Exact chi (digits 1 -> 4) and validation error every `config.every` steps of one training
    run. `data`: ((x, y), (x_val, y_val), (x_test, y_test)) instead of MNIST (tests)."""
    from ..train import accuracy, mlp, train_classifier

    hidden, epochs, every, pairs, lr, seed = (config.hidden, config.epochs, config.every, config.pairs, config.lr,
                                              config.seed)
    (x, y), (xv, yv), (xt, yt) = data if data is not None else _data(config.n_train, config.n_val, seed)
    idx = draw_pairs(yt, (1, 4), budget=pairs, seed=seed)
    x0, x1 = xt[torch.as_tensor(idx[:, 0])], xt[torch.as_tensor(idx[:, 1])]
    rec: list[tuple[int, float, float, float]] = []

    def measure(step, model, state):
        chi, _ = path_chi(model, x0, x1)
        rec.append((step, float(chi.mean()), float((chi > 0).mean()), 1 - accuracy(model, xv, yv)))

    model = mlp(x.shape[1], list(hidden), 10, seed=seed)
    train_classifier(model, x, y, epochs=epochs, lr=lr, batch_size=64, seed=seed, callbacks=[measure],
                     callback_every=every)
    s, c, f, e = (np.array(v) for v in zip(*rec))
    return TrainingCurve(s, c, f, e, tuple(hidden))


def write_folding_training(curve: TrainingCurve, out) -> dict:
    """Write folding_training.json (the curve) and folding_training.png (mean chi and validation
    error against the optimiser step) into the folder `out`, atomically; returns the paths."""
    from matplotlib.figure import Figure

    from ..io_utils import write_json_atomic
    from ..viz import save_figure

    out = Path(out)
    ax = Figure(figsize=(6, 3.6)).subplots()
    ax.plot(curve.steps, curve.chi_mean, marker="o", label="mean chi (exact)")
    ax.plot(curve.steps, curve.val_error, marker="s", label="validation error")
    ax.set_xlabel("optimiser step")
    ax.legend()
    out.mkdir(parents=True, exist_ok=True)
    files = {"png": save_figure(ax.figure, out / "folding_training.png")}
    files["json"] = write_json_atomic(out / "folding_training.json", training_document(curve))
    return files


def training_document(curve: TrainingCurve) -> dict:
    """The JSON document of a curve: hidden widths, steps, mean chi, share folded, validation error."""
    return {"hidden": curve.hidden, "steps": curve.steps, "chi_mean": curve.chi_mean,
            "share_folded": curve.share_folded, "val_error": curve.val_error}


@dataclass(frozen=True)
class RegulariserRun:
    lam: float
    seed: int
    test_accuracy: float
    chi_mean: float
    share_folded: float


@dataclass(frozen=True)
class FoldingRegulariserConfig:
    """`seeds` nets per weight in `lams` (0 = baseline) trained with loss + lam * folding_penalty
    (soft-bit temperature `tau`, `n_points` per segment); exact chi on `pairs` digit-1 -> 4 segments."""

    lams: tuple[float, ...] = (0.0, 0.05)
    hidden: tuple[int, ...] = (16, 16, 16, 16)
    seeds: int = 2
    epochs: int = 3
    pairs: int = 100
    tau: float = 0.5
    n_points: int = 11
    n_train: int = 10_000
    lr: float = 3e-3

    def __post_init__(self):
        object.__setattr__(self, "lams", tuple(float(v) for v in self.lams))
        object.__setattr__(self, "hidden", _widths(self.hidden, "hidden"))
        _check_ints(self, ("seeds", "epochs", "pairs", "n_train"))
        check_int(self.n_points, "n_points", minimum=2)
        if not self.tau > 0:
            raise ValueError(f"tau: expected a temperature > 0, got {self.tau!r}")


@dataclass(frozen=True)
class RegulariserResult:
    """Every (lam, seed) run of `run_folding_regulariser`, lams outer, seeds inner."""

    config: FoldingRegulariserConfig
    runs: tuple[RegulariserRun, ...]

    def by_lambda(self) -> dict[str, dict]:
        """Per lam (as a string key): mean exact chi and mean test accuracy over the seeds."""
        table = {}
        for value in self.config.lams:
            sel = [r for r in self.runs if r.lam == value]
            table[str(value)] = {"chi_mean": float(sum(r.chi_mean for r in sel) / len(sel)),
                                 "test_accuracy": float(sum(r.test_accuracy for r in sel) / len(sel))}
        return table

    def document(self) -> dict:
        """The JSON document `write_folding_regulariser` writes."""
        return {"note": "surrogate: soft bits sigmoid(z/tau), soft Hamming, logsumexp max; the papers' term is not public",
                "by_lambda": self.by_lambda(), "runs": list(self.runs)}


def run_folding_regulariser(config: FoldingRegulariserConfig = FoldingRegulariserConfig(), *,
                            data=None) -> RegulariserResult:
    """Same nets and seeds trained with loss + lam * folding_penalty for each lam (0 = baseline).
    `data`: ((x, y), (x_val, y_val), (x_test, y_test)) instead of MNIST (tests)."""
    from ..train import accuracy, mlp, train_classifier

    lams, hidden, seeds, epochs, pairs = config.lams, config.hidden, config.seeds, config.epochs, config.pairs
    tau, n_points, lr = config.tau, config.n_points, config.lr
    (x, y), _, (xt, yt) = data if data is not None else _data(config.n_train, 1_000, 0)
    idx = draw_pairs(yt, (1, 4), budget=pairs, seed=0)
    x0, x1 = xt[torch.as_tensor(idx[:, 0])], xt[torch.as_tensor(idx[:, 1])]
    runs = []
    for lam in lams:
        for s in range(seeds):
            model = mlp(x.shape[1], list(hidden), 10, seed=s)
            extra = folding_loss(lam, classes=(1, 4), n_pairs=8, tau=tau, n_points=n_points, seed=s) if lam else None
            train_classifier(model, x, y, epochs=epochs, lr=lr, batch_size=64, seed=s, extra_loss=extra)
            chi, _ = path_chi(model, x0, x1)
            runs.append(RegulariserRun(float(lam), s, accuracy(model, xt, yt), float(chi.mean()), float((chi > 0).mean())))
    return RegulariserResult(config, tuple(runs))


def write_folding_regulariser(result: RegulariserResult, out) -> Path:
    """Write `result.document()` (note, per-lam means, runs) as JSON, atomically, to the file `out`."""
    from ..io_utils import write_json_atomic

    return write_json_atomic(Path(out), result.document())


def fgsm(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, attack_size: float) -> torch.Tensor:
    """Fast gradient sign method: x + attack_size * sign(grad_x cross_entropy(model(x), y)), so
    `attack_size` is the L-infinity distance of every perturbed input from its original."""
    x = x.clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(model(x), y)
    (grad,) = torch.autograd.grad(loss, x)
    return (x + attack_size * grad.sign()).detach()


@dataclass(frozen=True)
class FgsmConfig:
    """FGSM endpoints at L-infinity distance `attack_size` (standardised input units) on `pairs`
    digit-5 -> digit-7 test segments; `seed` of data split, pairs and the trained net."""

    attack_size: float = 0.1
    pairs: int = 100
    seed: int = 0

    def __post_init__(self):
        if not self.attack_size >= 0:
            raise ValueError(f"attack_size: expected an FGSM step >= 0, got {self.attack_size!r}")
        check_int(self.pairs, "pairs")
        check_int(self.seed, "seed", minimum=0)


@dataclass(frozen=True)
class FgsmInteraction:
    attack_size: float  # FGSM step: L-infinity distance of the perturbed endpoints (standardised units)
    chi_clean: np.ndarray
    chi_adv: np.ndarray
    interaction_clean: np.ndarray  # I(k) at the walk's middle pattern, per segment
    interaction_adv: np.ndarray
    accuracy_adv: float  # accuracy on the perturbed endpoints


def run_fgsm_interaction(config: FgsmConfig = FgsmConfig(), *, model=None, data=None) -> FgsmInteraction:
    """chi and I(k at the middle) on 5 -> 7 segments, clean vs FGSM-perturbed endpoints.

    `config.attack_size` is in the units of the (standardised) inputs. Without `model`, trains a
    784-64-64-10 MLP. `data`: ((x, y), (x_val, y_val), (x_test, y_test)) instead of MNIST (tests).
    """
    from ..train import accuracy, mlp, train_classifier

    eps, pairs, seed = config.attack_size, config.pairs, config.seed

    (x, y), _, (xt, yt) = data if data is not None else _data(10_000, 1_000, seed)
    if model is None:
        model = mlp(x.shape[1], [64, 64], 10, seed=seed)
        train_classifier(model, x, y, epochs=2, lr=1e-3, seed=seed)
    idx = draw_pairs(yt, (5, 7), budget=pairs, seed=seed)
    i0, i1 = torch.as_tensor(idx[:, 0]), torch.as_tensor(idx[:, 1])
    a0, a1 = fgsm(model, xt[i0], yt[i0], eps), fgsm(model, xt[i1], yt[i1], eps)
    acc = accuracy(model, torch.cat([a0, a1]), torch.cat([yt[i0], yt[i1]]))

    def measure(p, q):
        res = path_folding_many(model, p, q)
        return (np.array([r.chi for r in res]),
                np.array([interaction_effect(r.walk, (r.n_patterns + 1) // 2) for r in res]))

    chi_c, int_c = measure(xt[i0], xt[i1])
    chi_a, int_a = measure(a0, a1)
    return FgsmInteraction(eps, chi_c, chi_a, int_c, int_a, acc)


def fgsm_document(result: FgsmInteraction) -> dict:
    """The JSON summary `write_fgsm_interaction` writes: means over the segments, clean vs FGSM."""
    return {
        "attack_size": result.attack_size, "accuracy_on_perturbed_endpoints": result.accuracy_adv,
        "chi_mean": {"clean": float(result.chi_clean.mean()), "fgsm": float(result.chi_adv.mean())},
        "interaction_mean": {"clean": float(result.interaction_clean.mean()),
                             "fgsm": float(result.interaction_adv.mean())},
        "interaction_abs_mean": {"clean": float(abs(result.interaction_clean).mean()),
                                 "fgsm": float(abs(result.interaction_adv).mean())},
    }


def write_fgsm_interaction(result: FgsmInteraction, out) -> Path:
    """Write `fgsm_document(result)` as JSON, atomically, to the file `out`; returns its path."""
    from ..io_utils import write_json_atomic

    return write_json_atomic(Path(out), fgsm_document(result))
