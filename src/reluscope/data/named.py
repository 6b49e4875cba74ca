"""Data sets by name, as the command line and the experiments ask for them."""

from __future__ import annotations

import math
from enum import Enum
from typing import TYPE_CHECKING

import torch

from .._checks import as_enum
from ..network import to_network
from .mnist import load_fashion_mnist, load_mnist
from .toy import load_digits, make_toy

if TYPE_CHECKING:
    from .._types import ModelLike

__all__ = ["DatasetName", "ImageSet", "Split", "load_dataset", "fit_to_model", "IMAGE_SHAPES"]


class DatasetName(str, Enum):
    """Every data set reluscope loads by name: three image sets (flat rows) and the 2-D toy sets."""

    MNIST = "mnist"
    FASHION_MNIST = "fashion-mnist"
    DIGITS = "digits"
    MOONS = "moons"
    CIRCLES = "circles"
    SPIRALS = "spirals"
    XOR = "xor"
    BLOBS = "blobs"


class ImageSet(str, Enum):
    """The image sets that come from the verified cache (`reluscope data NAME` builds it); each has
    the value of its `DatasetName`. Their own option type, so that a command or function that needs
    one of them offers exactly these."""

    MNIST = "mnist"
    FASHION_MNIST = "fashion-mnist"


class Split(str, Enum):
    """TRAIN or TEST; toy sets draw the test split with seed + 1."""

    TRAIN = "train"
    TEST = "test"


IMAGE_SHAPES = {DatasetName.MNIST: (1, 28, 28), DatasetName.FASHION_MNIST: (1, 28, 28), DatasetName.DIGITS: (1, 8, 8)}


def load_dataset(name: DatasetName | str, split: Split | str = Split.TRAIN, *, n: int = 1000, seed: int = 0):
    """(x, y) of a named data set: images as flat rows, toy sets `n` points drawn with `seed`
    (the test split with seed + 1)."""
    name, split = as_enum(name, DatasetName, "data"), as_enum(split, Split, "split")
    if name is DatasetName.MNIST:
        return load_mnist(split.value)
    if name is DatasetName.FASHION_MNIST:
        return load_fashion_mnist(split.value)
    if name is DatasetName.DIGITS:
        return load_digits(split.value)
    return make_toy(name.value, n, seed=seed + (split is Split.TEST))


def fit_to_model(model: ModelLike, x: torch.Tensor, name: DatasetName | str | None = None) -> torch.Tensor:
    """Reshape flat data set rows to the model's input (image shape for convolutional models
    built without an input shape, taken from the data set `name`)."""
    shape = to_network(model).input_shape
    if shape is None and name is not None:
        shape = IMAGE_SHAPES.get(as_enum(name, DatasetName, "data"))
    if shape is not None and x[0].numel() == math.prod(shape):
        x = x.reshape(len(x), *shape)
    return x
