"""Which floating-point precision an exact method analyses, and how honest that is.

Exact traversal and `regions_2d` compute in float64 by default: the pieces they return are those
of the float64 copy of the model. A model that runs in float16 or bfloat16 has different regions
in practice (its rounding moves and merges boundaries: 994 pieces for a bf16 LeNet segment against
2,699 for its float64 copy), so the results say which precision was analysed, and a model stored
in a lower precision than the one analysed triggers a `PrecisionWarning`.
"""

from __future__ import annotations

import warnings
from enum import Enum

import torch

from .._checks import as_enum

__all__ = ["Precision", "PrecisionWarning", "analysed_dtype", "dtype_name", "decision_tolerance", "t_tolerance"]

_LOW = (torch.float16, torch.bfloat16)


class Precision(str, Enum):
    """The arithmetic an exact method analyses the model in.

    FLOAT64 (default) won because float64 resolves pieces down to 1e-12 of the segment and
    agrees with dense sampling of the float64 model, so the answer is the exact one for the
    model's weights. MODEL analyses the model in its own dtype (as it runs), with a tolerance of
    a few units of that dtype's rounding: pieces shorter than that are not resolved.
    CHECKED_FLOAT32 (exact traversal only) traverses in float32, checks every piece and
    breakpoint in float64 and traverses again in float64 where a check fails, so it returns the
    float64 answer (docs/methods.md says what is checked). It is not the default because on a
    CPU it is slower than float64 alone (2.4-2.7x on the MNIST MLP of bench/traverse.py): the
    traversal is bound by elementwise passes, where float32 saves little, and the check is a
    float64 forward pass with jvp at every piece. It can pay only where float64 arithmetic is
    much slower than float32 (most GPUs). Networks with max-pooling run in float64.
    """

    FLOAT64 = "float64"
    MODEL = "model"
    CHECKED_FLOAT32 = "float32-checked"


class PrecisionWarning(UserWarning):
    """The analysed precision differs from the model's, or a decision was within rounding."""


def as_precision(value: Precision | str) -> Precision:
    return as_enum(value, Precision, "dtype")


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def analysed_dtype(model_dtype: torch.dtype, precision: Precision, what: str) -> torch.dtype:
    """The dtype to compute in; warns when a low-precision model is analysed in float64."""
    if precision is Precision.MODEL:
        return model_dtype
    if model_dtype in _LOW:
        warnings.warn(
            f"{what}: the model runs in {dtype_name(model_dtype)} but is analysed in float64; the "
            f"regions of the model as it runs differ (rounding moves and merges boundaries). Pass "
            "dtype='model' to analyse it in its own precision",
            PrecisionWarning,
            stacklevel=4,  # the user's call of traverse / regions_2d
        )
    return torch.float64


def t_tolerance(dtype: torch.dtype, tolerance: float) -> float:
    """Resolution in t (segments of length 1): `tolerance` in float64, and at least one ulp of 1
    in a lower precision (which cannot place a breakpoint more finely)."""
    if dtype == torch.float64:
        return tolerance
    return max(tolerance, torch.finfo(dtype).eps)


def decision_tolerance(dtype: torch.dtype) -> float:
    """A unit whose |pre-activation| stays below this fraction of its layer's largest on a whole
    piece has its bit decided by rounding (e.g. units exactly zero by cancellation). 64 ulps
    in float64/float32 (sums of many terms); 2 ulps in float16/bfloat16, whose ulp is already
    coarse (0.8% for bfloat16)."""
    return (2 if dtype in _LOW else 64) * torch.finfo(dtype).eps
