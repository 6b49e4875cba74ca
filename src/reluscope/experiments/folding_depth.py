"""Folding vs depth on MNIST (Lewandowski et al.; protocol of the ESANN 2023 supplement).

ReLU MLPs with 3, 4, 5, 6 hidden layers x width 10, 12, 14, 16, 18, each trained with Adam until the
validation accuracy reaches 0.9 (or an epoch cap), several seeds; chi on the segments between test
images of digits 1 and 4 (the same pairs for every net, so nets are compared on equal terms).
The papers' claim: among nets that generalise well, folding grows with depth.

Defaults are sized for 2 CPU cores in a few minutes: 10,000 training images, 1,000 held-out
validation images, 2 seeds, 200 segments, exact traversal. `FoldingDepthConfig.full()` is the
papers' 100 repetitions (hours on a CPU).

Inputs are raw pixels in [0, 1], as the papers use them (`standardize=True` standardises per pixel
with the training statistics; that helps the narrow deep nets reach 0.9 sooner, and does not change
the walks of a given net, but it changes which nets training produces). `reluscope reproduce
folding` runs this study as a sweep of per-net tasks (`experiments.folding_study`) and reports Phi
first, then mean chi and the share of folded segments, exact and on the 11-point grid.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from tqdm.auto import tqdm

from ..folding import aggregate_folding, draw_pairs
from ..folding.path import path_chi

__all__ = ["FoldingDepthConfig", "FoldingDepthRun", "FoldingDepthResult", "run_folding_depth", "depth_trend"]


@dataclass(frozen=True)
class FoldingDepthConfig:
    depths: tuple[int, ...] = (3, 4, 5, 6)
    widths: tuple[int, ...] = (10, 12, 14, 16, 18)
    seeds: int = 2
    pairs: int = 200
    classes: tuple[int, int] = (1, 4)
    target_accuracy: float = 0.9
    max_epochs: int = 20
    n_train: int = 10_000
    n_val: int = 1_000
    lr: float = 3e-3
    batch_size: int = 64
    standardize: bool = False
    include_output: bool = True
    n_points: int | None = None  # None: exact traversal; 11: the papers' grid
    seed: int = 0

    @classmethod
    def full(cls) -> "FoldingDepthConfig":
        """The papers' scale: 100 repetitions per architecture, all 60,000 training images
        (less the validation split), 1,000 segments."""
        return cls(seeds=100, pairs=1000, n_train=59_000)

    def __post_init__(self):
        for name in ("seeds", "pairs", "max_epochs", "n_train", "n_val", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {v!r}")
        for name in ("depths", "widths"):
            v = tuple(getattr(self, name))
            if not v or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in v):
                raise ValueError(f"{name}: expected a non-empty sequence of ints >= 1, got {v!r}")
        if not 0 < self.target_accuracy <= 1:
            raise ValueError(f"target_accuracy: expected a number in (0, 1], got {self.target_accuracy!r}")


@dataclass(frozen=True)
class FoldingDepthRun:
    """One trained net: its architecture, how training went, and its folding over the segments."""

    depth: int
    width: int
    seed: int
    epochs: int
    val_accuracy: float
    test_accuracy: float
    reached_target: bool
    chi_mean: float
    chi_median_positive: float
    share_folded: float
    mean_regions: float
    seconds: float


@dataclass(frozen=True)
class FoldingDepthResult:
    config: FoldingDepthConfig
    runs: tuple[FoldingDepthRun, ...]
    pairs: np.ndarray = field(repr=False)  # int64 [P, 2] test-set indices of the segments

    def rows(self) -> list[dict]:
        return [asdict(r) for r in self.runs]

    def summary(self, *, reached_only: bool = True) -> list[dict]:
        """Per architecture: mean and standard deviation of chi over the nets (that reached the target)."""
        out = []
        for d in self.config.depths:
            for w in self.config.widths:
                runs = [r for r in self.runs if r.depth == d and r.width == w and (r.reached_target or not reached_only)]
                chi = np.array([r.chi_mean for r in runs])
                phi = np.array([r.chi_median_positive for r in runs])
                out.append({
                    "depth": d, "width": w, "nets": len(runs),
                    "chi_mean": float(chi.mean()) if len(chi) else None,
                    "chi_std": float(chi.std(ddof=1)) if len(chi) > 1 else None,
                    "phi_mean": float(phi.mean()) if len(phi) else None,
                    "test_accuracy": float(np.mean([r.test_accuracy for r in runs])) if runs else None,
                })
        return out


def _mnist(config: FoldingDepthConfig):
    from ..data import load_mnist

    x, y = load_mnist("train")
    xt, yt = load_mnist("test")
    if config.n_train + config.n_val > len(x):
        raise ValueError(f"n_train + n_val: expected at most {len(x)}, got {config.n_train + config.n_val}")
    rng = np.random.default_rng(config.seed)
    order = torch.as_tensor(rng.permutation(len(x)))
    tr, va = order[: config.n_train], order[config.n_train : config.n_train + config.n_val]
    x, xv = x[tr], x[va]
    if config.standardize:
        mu, sd = x.mean(0), x.std(0).clamp(min=0.1)
        x, xv, xt = (x - mu) / sd, (xv - mu) / sd, (xt - mu) / sd
    return (x, y[tr]), (xv, y[va]), (xt, yt)


def run_folding_depth(config: FoldingDepthConfig = FoldingDepthConfig(), *, data=None,
                      progress: bool = False) -> FoldingDepthResult:
    """Train every (depth, width, seed) net and measure its folding between two digit classes.

    `data` = ((x_train, y_train), (x_val, y_val), (x_test, y_test)) overrides MNIST (for tests).
    Only nets that reach `target_accuracy` count in `summary()` and `depth_trend`.
    """
    from ..train import accuracy, mlp, train_classifier

    (x, y), (xv, yv), (xt, yt) = data if data is not None else _mnist(config)
    pairs = draw_pairs(yt, config.classes, budget=config.pairs, seed=config.seed)
    x0, x1 = xt[torch.as_tensor(pairs[:, 0])], xt[torch.as_tensor(pairs[:, 1])]  # same segments for every net
    runs = []
    jobs = [(d, w, s) for d in config.depths for w in config.widths for s in range(config.seeds)]
    for d, w, s in tqdm(jobs, desc="folding-depth", unit="net", disable=not progress):
        t0 = time.perf_counter()
        net_seed = config.seed * 100_003 + s * 1009 + d * 31 + w
        model = mlp(x.shape[1], [w] * d, int(max(int(y.max()), int(yt.max()))) + 1, seed=net_seed)
        fit = train_classifier(model, x, y, x_val=xv, y_val=yv, epochs=config.max_epochs,
                               target_accuracy=config.target_accuracy, lr=config.lr,
                               batch_size=config.batch_size, seed=net_seed)
        chi, lengths = path_chi(model, x0, x1, include_output=config.include_output, n_points=config.n_points)
        runs.append(FoldingDepthRun(
            d, w, s, len(fit.history), float(fit.final_accuracy), accuracy(model, xt, yt), fit.reached_target,
            float(chi.mean()), aggregate_folding(chi, "median_positive"), float((chi > 0).mean()),
            float(lengths.mean()), time.perf_counter() - t0,
        ))
    return FoldingDepthResult(config, tuple(runs), pairs)


def depth_trend(result: FoldingDepthResult, *, reached_only: bool = True) -> dict:
    """Does folding grow with depth? Spearman rho of (depth, chi_mean) over the nets, overall and per
    width, and whether the per-depth mean chi increases from the shallowest to the deepest nets."""
    from scipy.stats import spearmanr

    runs = [r for r in result.runs if r.reached_target or not reached_only]
    out = {"nets": len(runs), "per_width": {}}
    if len(runs) >= 3:
        rho, p = spearmanr([r.depth for r in runs], [r.chi_mean for r in runs])
        out.update(spearman_rho=float(rho), p_value=float(p))
    for w in result.config.widths:
        sel = [r for r in runs if r.width == w]
        means = {d: float(np.mean([r.chi_mean for r in sel if r.depth == d]))
                 for d in result.config.depths if any(r.depth == d for r in sel)}
        entry = {"mean_chi_by_depth": means}
        if len(sel) >= 3 and len({r.depth for r in sel}) > 1:
            rho, p = spearmanr([r.depth for r in sel], [r.chi_mean for r in sel])
            entry.update(spearman_rho=float(rho), p_value=float(p))
        out["per_width"][w] = entry
    depth_means = [float(np.mean([r.chi_mean for r in runs if r.depth == d]))
                   for d in result.config.depths if any(r.depth == d for r in runs)]
    out["mean_chi_by_depth"] = dict(zip([d for d in result.config.depths if any(r.depth == d for r in runs)], depth_means))
    out["grows_with_depth"] = bool(out.get("spearman_rho", 0) > 0 and out.get("p_value", 1) < 0.05)
    return out


def with_overrides(config: FoldingDepthConfig, **changes) -> FoldingDepthConfig:
    """`dataclasses.replace` that ignores None values (for CLI options left unset)."""
    return replace(config, **{k: v for k, v in changes.items() if v is not None})
