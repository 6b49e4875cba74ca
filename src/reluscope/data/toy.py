"""Seeded 2-D toy classification sets (moons, circles, spirals, xor, blobs) and sklearn's digits.

The toy sets are our own numpy code (no sklearn needed), deterministic for a given `seed`, and
balanced: class c gets n // k points, the first n % k classes one more. Points come out in class
order; shuffle them yourself if order matters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from .._checks import check_int, check_positive

if TYPE_CHECKING:
    from typing import Any

__all__ = ["TOY_DATASETS", "make_toy", "load_digits"]


def _counts(n: int, k: int) -> list[int]:
    return [n // k + (c < n % k) for c in range(k)]


def _moons(n, rng, **_):
    a, b = _counts(n, 2)
    ta, tb = rng.uniform(0, np.pi, a), rng.uniform(0, np.pi, b)
    upper = np.stack([np.cos(ta), np.sin(ta)], 1)
    lower = np.stack([1 - np.cos(tb), 0.5 - np.sin(tb)], 1)
    return [upper, lower]


def _circles(n, rng, *, factor=0.5, **_):
    out = []
    for radius, m in zip((1.0, factor), _counts(n, 2)):
        t = rng.uniform(0, 2 * np.pi, m)
        out.append(radius * np.stack([np.cos(t), np.sin(t)], 1))
    return out


def _spirals(n, rng, *, turns=1.5, **_):
    """Two interleaved Archimedean spirals (radius grows linearly with the angle)."""
    out = []
    for c, m in enumerate(_counts(n, 2)):
        s = np.sqrt(rng.uniform(0, 1, m))  # sqrt: points spread evenly along the arc length
        angle = s * turns * 2 * np.pi + c * np.pi
        out.append(s[:, None] * np.stack([np.cos(angle), np.sin(angle)], 1))
    return out


def _xor(n, rng, **_):
    """Uniform points in [-1, 1]^2; the class is whether the two coordinates have the same sign."""
    out = []
    for c, m in enumerate(_counts(n, 2)):
        p = rng.uniform(0, 1, (m, 2))
        signs = np.where(rng.random(m) < 0.5, 1.0, -1.0)
        # class 0: quadrants I and III (same sign), class 1: II and IV
        p *= np.stack([signs, signs if c == 0 else -signs], 1)
        out.append(p)
    return out


def _blobs(n, rng, *, centers=3, **_):
    """Isotropic Gaussians (std 1 before `noise`) at evenly spaced points of a circle of radius 4."""
    angle = 2 * np.pi * np.arange(centers) / centers
    mean = 4.0 * np.stack([np.cos(angle), np.sin(angle)], 1)
    return [mean[c] + rng.normal(size=(m, 2)) for c, m in enumerate(_counts(n, centers))]


TOY_DATASETS: dict[str, Callable] = {
    "moons": _moons,
    "circles": _circles,
    "spirals": _spirals,
    "xor": _xor,
    "blobs": _blobs,
}
_DEFAULT_NOISE = {"moons": 0.1, "circles": 0.05, "spirals": 0.02, "xor": 0.0, "blobs": 0.0}


def make_toy(name: str, n: int = 1000, *, noise: float | None = None, seed: int = 0, **options: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded 2-D classification set as (x float32 [n, 2], y int64 [n]).

    `noise` is the std of Gaussian noise added to every coordinate (defaults: moons 0.1, circles
    0.05, spirals 0.02, xor 0, blobs 0). Options: circles `factor` (inner radius, 0.5), spirals
    `turns` (1.5), blobs `centers` (3 classes).
    """
    if name not in TOY_DATASETS:
        raise ValueError(f"name: expected one of {', '.join(TOY_DATASETS)}, got {name!r}")
    n = check_int(n, "n")
    noise = _DEFAULT_NOISE[name] if noise is None else check_positive(float(noise), "noise", allow_zero=True)
    allowed = {"circles": {"factor"}, "spirals": {"turns"}, "blobs": {"centers"}}.get(name, set())
    if set(options) - allowed:
        raise TypeError(f"make_toy({name!r}): unexpected options {sorted(set(options) - allowed)}; allowed: {sorted(allowed) or 'none'}")
    if name == "blobs":
        check_int(options.get("centers", 3), "centers")
    rng = np.random.default_rng(seed)
    parts = TOY_DATASETS[name](int(n), rng, **options)
    x = np.concatenate(parts)
    if noise:
        x = x + rng.normal(scale=noise, size=x.shape)
    y = np.concatenate([np.full(len(p), c) for c, p in enumerate(parts)])
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.int64))


def load_digits(split: str = "all") -> tuple[torch.Tensor, torch.Tensor]:
    """sklearn's bundled 8x8 digits (no download) as (x float32 [N, 64] in [0, 1], y int64).

    `split`: "all" (1797 images), "train" (the first 1437 = 80%) or "test" (the last 360); the
    split is fixed, so results are comparable across runs.
    """
    if split not in ("all", "train", "test"):
        raise ValueError(f"split: expected 'all', 'train' or 'test', got {split!r}")
    try:
        from sklearn.datasets import load_digits as _sk_load_digits
    except ImportError as err:
        raise ImportError("load_digits needs scikit-learn: pip install 'reluscope[data]' (or scikit-learn)") from err
    bunch = _sk_load_digits()
    x = torch.from_numpy((bunch.data / 16.0).astype(np.float32))  # pixel values are 0..16
    y = torch.from_numpy(bunch.target.astype(np.int64))
    cut = {"all": slice(None), "train": slice(None, 1437), "test": slice(1437, None)}[split]
    return x[cut], y[cut]
