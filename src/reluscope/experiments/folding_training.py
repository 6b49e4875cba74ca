"""Folding during training, with and without the folding regulariser, and under FGSM (MNIST).

* `run_folding_training`: one MLP trained with Adam; every `every` steps the exact chi on fixed
  digit-1 / digit-4 test segments and the validation error are recorded, so folding can be read
  against training progress and generalisation error.
* `run_folding_regulariser`: the same architecture and seeds trained with `lam * folding_penalty`
  (our smooth surrogate; the papers' exact term is not public) and without it; exact chi and
  test accuracy compared.
* `run_fgsm_interaction`: interaction effect I(k) at the middle of the walk, and chi, on segments
  between clean MNIST 5 and 7 test images vs the same segments with FGSM-perturbed endpoints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..folding import draw_pairs, folding_loss, interaction_effect, path_folding_many
from ..folding.path import path_chi

__all__ = [
    "TrainingCurve", "run_folding_training", "RegulariserRun", "run_folding_regulariser",
    "FgsmInteraction", "run_fgsm_interaction", "fgsm",
]


def _data(n_train: int, n_val: int, seed: int):
    from ..data import load_mnist

    x, y = load_mnist("train")
    xt, yt = load_mnist("test")
    order = torch.as_tensor(np.random.default_rng(seed).permutation(len(x)))
    tr, va = order[:n_train], order[n_train:n_train + n_val]
    mu, sd = x[tr].mean(0), x[tr].std(0).clamp(min=0.1)  # chi of a given net is unchanged by it
    return ((x[tr] - mu) / sd, y[tr]), ((x[va] - mu) / sd, y[va]), ((xt - mu) / sd, yt)


@dataclass(frozen=True)
class TrainingCurve:
    steps: np.ndarray
    chi_mean: np.ndarray
    share_folded: np.ndarray
    val_error: np.ndarray
    hidden: tuple[int, ...]


def run_folding_training(hidden=(16, 16, 16, 16), *, epochs: int = 6, every: int = 40, pairs: int = 100,
                         n_train: int = 10_000, n_val: int = 1_000, lr: float = 3e-3, seed: int = 0,
                         data=None) -> TrainingCurve:
    """Exact chi (digits 1 -> 4) and validation error every `every` steps of one training run."""
    from ..train import accuracy, mlp, train_classifier

    (x, y), (xv, yv), (xt, yt) = data if data is not None else _data(n_train, n_val, seed)
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


@dataclass(frozen=True)
class RegulariserRun:
    lam: float
    seed: int
    test_accuracy: float
    chi_mean: float
    share_folded: float


def run_folding_regulariser(lams=(0.0, 0.05), *, hidden=(16, 16, 16, 16), seeds: int = 2, epochs: int = 3,
                            pairs: int = 100, tau: float = 0.5, n_points: int = 11, n_train: int = 10_000,
                            lr: float = 3e-3, data=None) -> list[RegulariserRun]:
    """Same nets and seeds trained with loss + lam * folding_penalty for each lam (0 = baseline)."""
    from ..train import accuracy, mlp, train_classifier

    (x, y), _, (xt, yt) = data if data is not None else _data(n_train, 1_000, 0)
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
    return runs


def fgsm(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """Fast gradient sign method: x + eps * sign(grad_x cross_entropy(model(x), y))."""
    x = x.clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(model(x), y)
    (grad,) = torch.autograd.grad(loss, x)
    return (x + eps * grad.sign()).detach()


@dataclass(frozen=True)
class FgsmInteraction:
    eps: float
    chi_clean: np.ndarray
    chi_adv: np.ndarray
    interaction_clean: np.ndarray  # I(k) at the walk's middle pattern, per segment
    interaction_adv: np.ndarray
    accuracy_adv: float  # accuracy on the perturbed endpoints


def run_fgsm_interaction(model=None, *, eps: float = 0.1, pairs: int = 100, seed: int = 0,
                         data=None) -> FgsmInteraction:
    """chi and I(k at the middle) on 5 -> 7 segments, clean vs FGSM-perturbed endpoints.

    `eps` is in the units of the (standardised) inputs. Without `model`, trains a 784-64-64-10 MLP.
    """
    from ..train import accuracy, mlp, train_classifier

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
