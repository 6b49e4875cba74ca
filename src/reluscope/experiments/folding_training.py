"""Folding during training, with and without the folding regulariser, and under FGSM (MNIST).

* `run_folding_training`: one MLP trained with Adam; every `every` steps the exact chi on fixed
  digit-1 / digit-4 test segments and the validation error are recorded, so folding can be read
  against training progress and generalisation error.
* `run_folding_regulariser`: the same architecture and seeds trained with `lam * folding_penalty`
  (our smooth surrogate; the papers' exact term is not public) and without it; exact chi and
  test accuracy compared. One task per net (`regulariser_task(RegulariserConfig)`), on raw pixels
  in [0, 1] (the papers' input) and the study's seeded split: `reluscope experiment
  folding-regulariser` and `reluscope reproduce folding` both run it.
* `run_fgsm_interaction`: interaction effect I(k) at the middle of the walk, and chi, on segments
  between clean MNIST 5 and 7 test images vs the same segments with FGSM-perturbed endpoints.

Each takes its config dataclass (`FoldingTrainingConfig`, `FoldingRegulariserConfig`,
`FgsmConfig`) and returns a frozen `Result` (`FoldingTrainingResult`, `FoldingRegulariserResult`,
`FgsmInteractionResult`: `save`/`load` round trip); `write_folding_training`,
`write_folding_regulariser` and `write_fgsm_interaction` write their files atomically.
`run_folding_training` and `run_fgsm_interaction` standardise the pixels with the training
split's mean and deviation (chi of a given net is unchanged by it; training is not).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from .._checks import check_int, single_thread
from ..data import split_mnist
from ..folding import aggregate_folding, draw_pairs, folding_loss, interaction_effect, path_folding_many, soft_folding
from ..folding.path import path_chi
from ..io_utils import write_json_atomic
from ..results import Result
from ..train import accuracy, mlp, train_classifier
from ..viz import save_figure
from ._common import WrittenFiles, check_ints, check_widths, segments

__all__ = [
    "FoldingTrainingConfig", "FoldingTrainingResult", "FoldingTrainingFiles", "run_folding_training",
    "write_folding_training",
    "RegulariserConfig", "RegulariserRow", "regulariser_task", "FoldingRegulariserConfig",
    "RegulariserSummary", "FoldingRegulariserResult", "run_folding_regulariser", "write_folding_regulariser",
    "FgsmConfig", "CleanVsFgsm", "FgsmSummary", "FgsmInteractionResult", "run_fgsm_interaction",
    "write_fgsm_interaction", "fgsm",
]

# (x, y) train, validation and test pairs, as `data=` of the run_ functions takes them (tests)
Splits = tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _standardised(n_train: int, n_val: int, seed: int) -> Splits:
    """The seeded MNIST split standardised with the training part's mean and deviation."""
    (x, y), (xv, yv), (xt, yt) = split_mnist(n_train, n_val, seed=seed)
    mu, sd = x.mean(0), x.std(0).clamp(min=0.1)  # chi of a given net is unchanged by it
    return ((x - mu) / sd, y), ((xv - mu) / sd, yv), ((xt - mu) / sd, yt)


@dataclass(frozen=True, kw_only=True)
class _TrainingSettings:
    """What the MLPs of this module share, declared and checked once: `hidden` widths, Adam for
    `epochs` at `lr` on `n_train` images, exact chi on `pairs` digit-1 -> digit-4 test segments."""

    hidden: tuple[int, ...] = (16, 16, 16, 16)
    epochs: int = 2
    pairs: int = 100
    n_train: int = 10_000
    lr: float = 3e-3

    def __post_init__(self):
        object.__setattr__(self, "hidden", check_widths(self.hidden, "hidden"))
        check_ints(self, ("epochs", "pairs", "n_train"))


# ----------------------------------------------------------------------------- folding during training


@dataclass(frozen=True)
class FoldingTrainingConfig(_TrainingSettings):
    """One MLP trained for `epochs` (default 6); chi and the validation error (`n_val` images)
    every `every` optimiser steps. `seed`: data split, segments and net."""

    hidden: tuple[int, ...] = (16, 16, 16, 16)
    epochs: int = field(default=6, kw_only=True)
    every: int = 40
    n_val: int = 1_000
    seed: int = 0

    def __post_init__(self):
        super().__post_init__()
        check_ints(self, ("every", "n_val"))
        check_int(self.seed, "seed", minimum=0)


@dataclass(frozen=True)
class FoldingTrainingResult(Result):
    """Mean exact chi, share of folded segments and validation error at each measured step."""

    steps: np.ndarray
    chi_mean: np.ndarray
    share_folded: np.ndarray
    val_error: np.ndarray
    hidden: tuple[int, ...]


@dataclass(frozen=True)
class FoldingTrainingFiles(WrittenFiles):
    """What `write_folding_training` wrote."""

    png: Path
    json: Path


def run_folding_training(config: FoldingTrainingConfig = FoldingTrainingConfig(), *,
                         data: Splits | None = None) -> FoldingTrainingResult:
    """Exact chi (digits 1 -> 4) and validation error every `config.every` steps of one training
    run. `data`: ((x, y), (x_val, y_val), (x_test, y_test)) instead of MNIST (tests)."""
    (x, y), (xv, yv), test = data if data is not None else _standardised(config.n_train, config.n_val, config.seed)
    x0, x1 = segments(test, (1, 4), config.pairs, config.seed)
    rec: list[tuple[int, float, float, float]] = []

    def measure(step, model, state):
        chi, _ = path_chi(model, x0, x1)
        rec.append((step, float(chi.mean()), float((chi > 0).mean()), 1 - accuracy(model, xv, yv)))

    model = mlp(x.shape[1], list(config.hidden), 10, seed=config.seed)
    train_classifier(model, x, y, epochs=config.epochs, lr=config.lr, batch_size=64, seed=config.seed,
                     callbacks=[measure], callback_every=config.every)
    s, c, f, e = (np.array(v) for v in zip(*rec))
    return FoldingTrainingResult(s, c, f, e, tuple(config.hidden))


def write_folding_training(curve: FoldingTrainingResult, out: str | Path) -> FoldingTrainingFiles:
    """Write folding_training.json (the curve's fields) and folding_training.png (mean chi and
    validation error against the optimiser step) into the folder `out`, atomically."""
    from matplotlib.figure import Figure  # drawing only: importing the module stays free of matplotlib

    out = Path(out)
    ax = Figure(figsize=(6, 3.6)).subplots()
    ax.plot(curve.steps, curve.chi_mean, marker="o", label="mean chi (exact)")
    ax.plot(curve.steps, curve.val_error, marker="s", label="validation error")
    ax.set_xlabel("optimiser step")
    ax.legend()
    out.mkdir(parents=True, exist_ok=True)
    png = save_figure(ax.figure, out / "folding_training.png")
    doc = {"hidden": curve.hidden, "steps": curve.steps, "chi_mean": curve.chi_mean,
           "share_folded": curve.share_folded, "val_error": curve.val_error}
    return FoldingTrainingFiles(png=png, json=write_json_atomic(out / "folding_training.json", doc))


# ----------------------------------------------------------------------------- the regulariser


@dataclass(frozen=True, kw_only=True)
class _SurrogateSettings:
    """The surrogate's settings: soft-bit temperature `tau`, `n_points` per surrogate segment;
    `data_seed` fixes the split and the evaluation segments."""

    tau: float = 0.5
    n_points: int = 11
    data_seed: int = 0

    def __post_init__(self):
        check_int(self.n_points, "n_points", minimum=2)
        check_int(self.data_seed, "data_seed", minimum=0)
        if not self.tau > 0:
            raise ValueError(f"tau: expected a temperature > 0, got {self.tau!r}")


@dataclass(frozen=True)
class RegulariserConfig(_TrainingSettings, _SurrogateSettings):
    """One net (seed `seed`) trained with loss + lam * folding_penalty (lam = 0: the baseline) on
    raw pixels, `n_pairs` surrogate segments per batch."""

    lam: float
    seed: int
    n_pairs: int = 8

    def __post_init__(self):
        _TrainingSettings.__post_init__(self)
        _SurrogateSettings.__post_init__(self)
        check_int(self.seed, "seed", minimum=0)
        check_int(self.n_pairs, "n_pairs")


@dataclass(frozen=True)
class RegulariserRow(Result):
    """One regularised (or baseline) net: test accuracy and its exact folding on the segments."""

    config: RegulariserConfig
    test_accuracy: float
    phi_exact: float
    chi_mean_exact: float
    share_folded_exact: float
    soft_chi_mean: float  # the surrogate itself on the evaluation segments, at the training tau

    @property
    def lam(self) -> float:
        return self.config.lam

    @property
    def seed(self) -> int:
        return self.config.seed


def regulariser_task(config: RegulariserConfig) -> RegulariserRow:
    """Train one net with the folding surrogate (lam > 0 rewards folding) and measure exact chi,
    on the study's MNIST split (raw pixels in [0, 1]). One CPU thread, as every sweep task."""
    with single_thread():
        return _regularised(config, split_mnist(config.n_train, 1_000, seed=config.data_seed))


def _regularised(config: RegulariserConfig, data: Splits) -> RegulariserRow:
    (x, y), _, test = data
    x0, x1 = segments(test, (1, 4), config.pairs, config.data_seed)
    model = mlp(x.shape[1], list(config.hidden), 10, seed=config.seed)
    extra = (folding_loss(config.lam, classes=(1, 4), n_pairs=config.n_pairs, tau=config.tau, n_points=config.n_points,
                          seed=config.seed) if config.lam else None)
    train_classifier(model, x, y, epochs=config.epochs, lr=config.lr, batch_size=64, seed=config.seed,
                     extra_loss=extra)
    chi, _ = path_chi(model, x0, x1)
    with torch.no_grad():
        soft = soft_folding(model, x0, x1, tau=config.tau, n_points=config.n_points)
    return RegulariserRow(config, float(accuracy(model, *test)), aggregate_folding(chi), float(chi.mean()),
                          float((chi > 0).mean()), float(soft.mean()))


@dataclass(frozen=True)
class FoldingRegulariserConfig(_TrainingSettings, _SurrogateSettings):
    """`seeds` nets per weight in `lams` (0 = baseline) trained for `epochs` (default 3) with
    loss + lam * folding_penalty; net i of each lam has seed i (the settings of `RegulariserConfig`)."""

    lams: tuple[float, ...] = (0.0, 0.05)
    seeds: int = 2
    epochs: int = field(default=3, kw_only=True)

    def __post_init__(self):
        object.__setattr__(self, "lams", tuple(float(v) for v in self.lams))
        _TrainingSettings.__post_init__(self)
        _SurrogateSettings.__post_init__(self)
        check_int(self.seeds, "seeds")

    def nets(self) -> list[RegulariserConfig]:
        """One `RegulariserConfig` per (lam, seed), lams outer, seeds inner, sharing every setting."""
        shared = {f.name: getattr(self, f.name) for f in fields(_TrainingSettings) + fields(_SurrogateSettings)}
        return [RegulariserConfig(lam=lam, seed=s, **shared) for lam in self.lams for s in range(self.seeds)]


@dataclass(frozen=True)
class RegulariserSummary(Result):
    """Means over the seeds of one lam."""

    lam: float
    test_accuracy: float
    phi_exact: float
    chi_mean_exact: float
    share_folded_exact: float
    soft_chi_mean: float


_SUMMARISED = ("test_accuracy", "phi_exact", "chi_mean_exact", "share_folded_exact", "soft_chi_mean")
_NOTE = "surrogate: soft bits sigmoid(z/tau), soft Hamming, logsumexp max; the papers' term is not public"


@dataclass(frozen=True)
class FoldingRegulariserResult(Result):
    """Every (lam, seed) net of `run_folding_regulariser`, lams outer, seeds inner."""

    config: FoldingRegulariserConfig
    runs: tuple[RegulariserRow, ...]

    def by_lambda(self) -> tuple[RegulariserSummary, ...]:
        """Per lam of the config: the means over its seeds."""
        out = []
        for value in self.config.lams:
            sel = [r for r in self.runs if r.lam == value]
            out.append(RegulariserSummary(value, *(float(np.mean([getattr(r, k) for r in sel])) for k in _SUMMARISED)))
        return tuple(out)


def run_folding_regulariser(config: FoldingRegulariserConfig = FoldingRegulariserConfig(), *,
                            data: Splits | None = None,
                            mapper: Callable[[Callable, list], Iterable] | None = None) -> FoldingRegulariserResult:
    """Same nets and seeds trained with loss + lam * folding_penalty for each lam (0 = baseline).

    One `regulariser_task` per net, run by `mapper(task, configs)` (default: the builtin `map`, in
    this process; `reluscope reproduce` passes its sweep). `data`: ((x, y), (x_val, y_val),
    (x_test, y_test)) instead of MNIST (tests; runs here)."""
    nets = config.nets()
    if data is not None:
        rows = [_regularised(c, data) for c in nets]
    else:
        rows = list((mapper or map)(regulariser_task, nets))
    return FoldingRegulariserResult(config, tuple(rows))


def write_folding_regulariser(result: FoldingRegulariserResult, out: str | Path) -> Path:
    """Write the note, the per-lam means (keyed by lam as a string) and every run as JSON,
    atomically, to the file `out`; returns its path."""
    doc = {"note": _NOTE,
           "by_lambda": {str(s.lam): {k: getattr(s, k) for k in _SUMMARISED} for s in result.by_lambda()},
           "runs": list(result.runs)}
    return write_json_atomic(Path(out), doc)


# ----------------------------------------------------------------------------- FGSM


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
class CleanVsFgsm(Result):
    """One statistic on the clean segments and on the same segments with FGSM endpoints."""

    clean: float
    fgsm: float


@dataclass(frozen=True)
class FgsmSummary(Result):
    """Means over the segments, clean vs FGSM (the JSON `write_fgsm_interaction` writes)."""

    attack_size: float
    accuracy_on_perturbed_endpoints: float
    chi_mean: CleanVsFgsm
    interaction_mean: CleanVsFgsm
    interaction_abs_mean: CleanVsFgsm


@dataclass(frozen=True)
class FgsmInteractionResult(Result):
    """chi and I(k) per segment, clean vs FGSM endpoints."""

    attack_size: float  # FGSM step: L-infinity distance of the perturbed endpoints (standardised units)
    chi_clean: np.ndarray
    chi_adv: np.ndarray
    interaction_clean: np.ndarray  # I(k) at the walk's middle pattern, per segment
    interaction_adv: np.ndarray
    accuracy_adv: float  # accuracy on the perturbed endpoints

    def summary(self) -> FgsmSummary:
        """Means over the segments, clean vs FGSM."""
        return FgsmSummary(
            self.attack_size, self.accuracy_adv,
            CleanVsFgsm(float(self.chi_clean.mean()), float(self.chi_adv.mean())),
            CleanVsFgsm(float(self.interaction_clean.mean()), float(self.interaction_adv.mean())),
            CleanVsFgsm(float(abs(self.interaction_clean).mean()), float(abs(self.interaction_adv).mean())))


def run_fgsm_interaction(config: FgsmConfig = FgsmConfig(), *, model: torch.nn.Module | None = None,
                         data: Splits | None = None) -> FgsmInteractionResult:
    """chi and I(k at the middle) on 5 -> 7 segments, clean vs FGSM-perturbed endpoints.

    `config.attack_size` is in the units of the (standardised) inputs. Without `model`, trains a
    784-64-64-10 MLP. `data`: ((x, y), (x_val, y_val), (x_test, y_test)) instead of MNIST (tests).
    """
    eps, seed = config.attack_size, config.seed
    (x, y), _, (xt, yt) = data if data is not None else _standardised(10_000, 1_000, seed)
    if model is None:
        model = mlp(x.shape[1], [64, 64], 10, seed=seed)
        train_classifier(model, x, y, epochs=2, lr=1e-3, seed=seed)
    idx = draw_pairs(yt, (5, 7), budget=config.pairs, seed=seed)
    i0, i1 = torch.as_tensor(idx[:, 0]), torch.as_tensor(idx[:, 1])
    a0, a1 = fgsm(model, xt[i0], yt[i0], eps), fgsm(model, xt[i1], yt[i1], eps)
    acc = accuracy(model, torch.cat([a0, a1]), torch.cat([yt[i0], yt[i1]]))

    def measure(p, q):
        res = path_folding_many(model, p, q)
        return (np.array([r.chi for r in res]),
                np.array([interaction_effect(r.walk, (r.n_patterns + 1) // 2) for r in res]))

    chi_c, int_c = measure(xt[i0], xt[i1])
    chi_a, int_a = measure(a0, a1)
    return FgsmInteractionResult(eps, chi_c, chi_a, int_c, int_a, acc)


def write_fgsm_interaction(result: FgsmInteractionResult, out: str | Path) -> Path:
    """Write `result.summary()` as JSON, atomically, to the file `out`; returns its path."""
    return write_json_atomic(Path(out), result.summary())


_DEPRECATED = {"TrainingCurve": "FoldingTrainingResult", "RegulariserResult": "FoldingRegulariserResult",
               "RegulariserRun": "RegulariserRow", "FgsmInteraction": "FgsmInteractionResult"}


def __getattr__(name: str):
    if name in _DEPRECATED:
        warnings.warn(f"reluscope.experiments.folding_training.{name} is deprecated; use {_DEPRECATED[name]}",
                      DeprecationWarning, stacklevel=2)
        return globals()[_DEPRECATED[name]]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
