"""The seeded MNIST train / validation split every MNIST experiment draws (one rule, one cache)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from .._checks import check_int
from .mnist import load_mnist

__all__ = ["MnistSplit", "split_mnist"]


@dataclass(frozen=True)
class MnistSplit:
    """(x, y) pairs of raw MNIST pixels in [0, 1]: `train` and `val` are disjoint subsets of the
    official training set, `test` is the official test set. Unpacks as (train, val, test)."""

    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return iter((self.train, self.val, self.test))


def split_mnist(n_train: int, n_val: int, *, seed: int = 0) -> MnistSplit:
    """The first `n_train` images of a seeded permutation of MNIST's training set for training and
    the next `n_val` for validation, plus the test set.

    The permutation is numpy's `default_rng(seed).permutation(60000)`, so a seed names the same
    split for every study. Cached per process (two splits: Ray workers reuse theirs); treat the
    tensors as read-only.
    """
    check_int(n_train, "n_train")
    check_int(n_val, "n_val", minimum=0)
    check_int(seed, "seed", minimum=0)
    return _split(int(n_train), int(n_val), int(seed))


@functools.lru_cache(maxsize=2)
def _split(n_train: int, n_val: int, seed: int) -> MnistSplit:
    x, y = load_mnist("train")
    if n_train + n_val > len(x):
        raise ValueError(f"n_train + n_val: expected at most {len(x)}, got {n_train + n_val}")
    order = torch.as_tensor(np.random.default_rng(seed).permutation(len(x)))
    tr, va = order[:n_train], order[n_train:n_train + n_val]
    return MnistSplit((x[tr], y[tr]), (x[va], y[va]), load_mnist("test"))
