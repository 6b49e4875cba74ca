"""Input checks shared by every entry point.

Each check raises a ValueError or TypeError that names the argument, what was expected and what
came, so a user can fix the call without reading our code. Never `assert` on user input.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["as_float_tensor", "check_finite", "check_positive", "check_batch"]


def as_float_tensor(
    value, name: str, *, dtype: torch.dtype | None = None, device=None
) -> torch.Tensor:
    """Turn array-likes into a floating tensor; refuse bool/int/complex silently changing meaning."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.ascontiguousarray(value))
    elif not isinstance(value, torch.Tensor):
        try:
            value = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(
                f"{name}: expected a torch.Tensor or array of numbers, got {type(value).__name__}"
            ) from err
    if value.is_complex() or value.dtype == torch.bool:
        raise TypeError(f"{name}: expected a real floating tensor, got dtype {value.dtype}")
    if not value.is_floating_point():
        value = value.to(torch.get_default_dtype())
    if dtype is not None or device is not None:
        value = value.to(dtype=dtype or value.dtype, device=device or value.device)
    return value


def check_finite(value: torch.Tensor, name: str) -> torch.Tensor:
    if not bool(torch.isfinite(value).all()):
        bad = int((~torch.isfinite(value)).sum())
        raise ValueError(f"{name}: expected finite values, got {bad} NaN/inf entries")
    return value


def check_positive(value: float, name: str, *, allow_zero: bool = False) -> float:
    ok = value >= 0 if allow_zero else value > 0
    if not np.isfinite(value) or not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: expected a finite number {bound}, got {value!r}")
    return value


def check_batch(
    x: torch.Tensor, name: str, input_shape: Sequence[int] | None, *, allow_empty: bool = False
) -> torch.Tensor:
    """Check a batch [N, *input_shape]; a single unbatched input is refused, not guessed."""
    if input_shape is not None:
        expected = tuple(input_shape)
        if tuple(x.shape[1:]) != expected or x.dim() != len(expected) + 1:
            raise ValueError(
                f"{name}: expected shape [N, {', '.join(map(str, expected))}], "
                f"got {list(x.shape)}"
                + (" (add a batch dimension with x.unsqueeze(0))" if tuple(x.shape) == expected else "")
            )
    if x.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name}: expected at least one input, got an empty batch {list(x.shape)}")
    return check_finite(x, name)
