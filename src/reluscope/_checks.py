"""The shared input and options layer: every public function prepares its arguments here.

- Options: `as_enum` (every option is a `str, Enum`), `check_int`, `check_positive`.
- Inputs: `as_batch` for functions that take a batch [N, ...], `as_single` for functions that take
  one input (returned as a batch of one), so each function returns one type whatever it is given;
  `as_float_tensor`, `check_finite`, `check_batch` underneath.
- Devices: computation happens where the input lives; `same_device` refuses mixed devices
  instead of moving anything silently.
- Memory: `memory_budget` is bytes everywhere (`DEFAULT_MEMORY_BUDGET`); `rows_within_budget`
  sizes chunks and refuses up front when one row does not fit (`MemoryBudgetError`).
- Threads: `single_thread()`, a context manager that restores torch's thread count on exit.

Each check raises a ValueError or TypeError that names the argument, what was expected and what
came, so a user can fix the call without reading our code. Never `assert` on user input.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from enum import Enum
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import torch

if TYPE_CHECKING:
    from ._types import ArrayLike

__all__ = [
    "as_float_tensor", "check_finite", "check_positive", "check_batch",
    "as_enum", "check_int", "as_batch", "as_single", "same_device",
    "DEFAULT_MEMORY_BUDGET", "MemoryBudgetError", "check_memory_budget", "rows_within_budget", "out_of_memory",
    "single_thread",
]


def as_float_tensor(
    value, name: str, *, dtype: torch.dtype | None = None, device: torch.device | str | None = None
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


# ----------------------------------------------------------------------------- options


E = TypeVar("E", bound=Enum)


def as_enum(value, enum_cls: type[E], name: str) -> E:
    """The member of `enum_cls` that `value` names: a member itself or its string value.

    Every option is a `str, Enum`, so typer takes it directly and plain strings work in Python.
    """
    if isinstance(value, enum_cls):
        return value
    if isinstance(value, str):
        for member in enum_cls:
            if value == member.value or value.lower() == str(member.value).lower():
                return member
    values = [repr(m.value) for m in enum_cls]
    allowed = " or ".join(values) if len(values) <= 2 else f"one of {', '.join(values[:-1])} or {values[-1]}"
    raise ValueError(f"{name}: expected {allowed}, got {value!r}")


def check_int(value, name: str, *, minimum: int | None = 1, what: str | None = None) -> int:
    """`value` as a Python int >= `minimum` (None: no bound); refuses bools, floats (even 2.0),
    numpy floats and strings, which would otherwise be truncated or compared silently."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    bound = "" if minimum is None else f" >= {minimum}"
    if ok and (minimum is None or value >= minimum):
        return int(value)
    note = f" ({what})" if what else ""
    raise ValueError(f"{name}: expected an integer{bound}{note}, got {value!r}")


# ----------------------------------------------------------------------------- one input or a batch


def _shape(shape) -> str:
    return ", ".join(map(str, shape))


def as_batch(x: ArrayLike, name: str, input_shape: Sequence[int] | None = None, *, allow_empty: bool = False) -> torch.Tensor:
    """A finite floating batch [N, *input_shape] on x's device.

    With `input_shape` None (a convolutional net built without one) any tensor of 2 or more
    dimensions is taken as a batch along dim 0. One unbatched input is refused with the fix, never
    guessed: a function that takes a batch returns a batch-shaped result whatever it is given.
    """
    x = as_float_tensor(x, name)
    if input_shape is None and x.dim() < 2:
        raise ValueError(f"{name}: expected a batch [N, ...] of inputs, got shape {list(x.shape)}")
    return check_batch(x, name, input_shape, allow_empty=allow_empty)


def as_single(x: ArrayLike, name: str, input_shape: Sequence[int] | None = None, *, batch_function: str | None = None) -> torch.Tensor:
    """One finite floating input, returned as a batch of one [1, *input_shape] on x's device.

    Accepted: an input shaped [*input_shape], or a batch of exactly one [1, *input_shape]. With
    `input_shape` None (a convolutional net built without one) a 4-D tensor is a batch (it must
    hold one image) and anything else is one input. A batch of several is refused, naming
    `batch_function` (the variant that takes batches) when there is one.
    """
    x = as_float_tensor(x, name)
    hint = f"; use {batch_function} for batches" if batch_function else ""
    if input_shape is None:
        if x.dim() == 4:
            if x.shape[0] != 1:
                raise ValueError(f"{name}: expected one input, got a batch of {x.shape[0]} {list(x.shape)}{hint}")
            return check_finite(x, name)
        return check_finite(x.unsqueeze(0), name)
    shape = tuple(input_shape)
    if tuple(x.shape) == shape:
        x = x.unsqueeze(0)
    elif tuple(x.shape) != (1, *shape):
        several = x.dim() == len(shape) + 1 and tuple(x.shape[1:]) == shape
        got = f"a batch of {x.shape[0]} {list(x.shape)}" if several else f"shape {list(x.shape)}"
        raise ValueError(f"{name}: expected one input of shape [{_shape(shape)}] (or [1, {_shape(shape)}]), got {got}{hint}")
    return check_finite(x, name)


def same_device(**tensors: torch.Tensor) -> torch.device:
    """The device all `tensors` live on; computation happens there and nothing is moved silently.

    Mixed devices are refused naming the argument and the fix, rather than copying one side.
    """
    first_name, first = None, None
    for name, t in tensors.items():
        if t is None:
            continue
        if first is None:
            first_name, first = name, t.device
        elif t.device != first:
            raise ValueError(
                f"{name}: expected a tensor on {first} like {first_name}, got {t.device}; "
                f"move it with .to({str(first)!r})"
            )
    if first is None:
        raise ValueError(f"{', '.join(tensors)}: expected at least one tensor")
    return first


# ----------------------------------------------------------------------------- memory and threads

DEFAULT_MEMORY_BUDGET = 2 * 1024**3
"""Bytes of working memory a call may hold at once unless told otherwise (2 GiB)."""


class MemoryBudgetError(MemoryError):
    """The work would need more memory than `memory_budget` allows; the message gives the estimate."""


def check_memory_budget(memory_budget: float, name: str = "memory_budget") -> int:
    """A positive number of bytes, as an int (floats such as 2e9 are accepted: bytes are a size)."""
    if isinstance(memory_budget, (bool, np.bool_)) or not isinstance(memory_budget, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}: expected a positive number of bytes, got {memory_budget!r}")
    if not np.isfinite(memory_budget) or memory_budget <= 0:
        raise ValueError(f"{name}: expected a positive number of bytes, got {memory_budget!r}")
    return int(memory_budget)


def out_of_memory(err: BaseException) -> bool:
    """Whether an exception is an allocation failure (MemoryError, torch's OutOfMemoryError or the
    CPU allocator's RuntimeError), not an error of the computation itself."""
    if isinstance(err, MemoryError) or type(err).__name__ == "OutOfMemoryError":
        return True
    text = str(err)
    return "can't allocate memory" in text or "out of memory" in text.lower()


def _mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def rows_within_budget(bytes_per_row: float, memory_budget: float, *, what: str, total: int | None = None) -> int:
    """How many rows (inputs, segments, pairs...) of `bytes_per_row` fit in `memory_budget` bytes.

    At least one row, at most `total` when given. Refuses up front, with the estimate, when not
    even one row fits, instead of failing later in an allocation.
    """
    budget = check_memory_budget(memory_budget)
    per_row = max(1, int(np.ceil(bytes_per_row)))
    if per_row > budget:
        raise MemoryBudgetError(
            f"memory_budget: one {what} needs about {_mib(per_row)} ({per_row} bytes), over "
            f"memory_budget={budget} bytes; pass memory_budget >= {per_row}"
        )
    rows = budget // per_row
    return int(rows if total is None else max(1, min(rows, total)))


@contextlib.contextmanager
def single_thread(enabled: bool = True, *, device: torch.device | str = "cpu", blas: bool = True) -> Iterator[None]:
    """Run torch (and numpy's BLAS, when threadpoolctl is installed) on one CPU thread inside the
    block; the previous thread counts are restored on exit, also on error.

    For code made of thousands of small operations (the 2-D region sweep, the hull solver, the
    tiny demo nets): fanning each out to threads costs more than it gains, and on a busy machine a
    descheduled worker stalls every operation by milliseconds. A no-op when `enabled` is false or
    `device` is not the CPU. `blas=False` leaves numpy's BLAS alone: threadpoolctl costs about
    half a millisecond per entry, which is most of a small net's `regions_2d`.
    """
    if not enabled or torch.device(device).type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    limit = contextlib.nullcontext()
    if blas:
        try:
            from threadpoolctl import threadpool_limits  # optional: only numpy's BLAS needs it

            limit = threadpool_limits(1)
        except ImportError:
            pass
    if before != 1:
        torch.set_num_threads(1)
    try:
        with limit:
            yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
