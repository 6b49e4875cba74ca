"""Type aliases for annotations; shapes are given in the docstrings ([N, units], [n + 1], ...).

Imported only under `typing.TYPE_CHECKING` by the modules that use them (every module has
`from __future__ import annotations`, so annotations are never evaluated at run time).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Union

import numpy as np
import torch

if TYPE_CHECKING:
    from .network import Network

__all__ = ["ArrayLike", "ModelLike"]

ArrayLike = Union[torch.Tensor, np.ndarray, Sequence]
"""A tensor, an array, or nested sequences of numbers."""

ModelLike = Union[torch.nn.Module, "Network"]
"""A torch module of the supported layers, or a converted `Network`."""
