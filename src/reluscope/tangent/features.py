"""Tangent features: per-input gradients of a network's outputs with respect to its parameters.

g(x) = d(sum_k f_k(x)) / d(theta) (the authors' summed form) or g_k(x) = d f_k(x) / d(theta)
(per output), flattened in `model.parameters()` order over the parameters that require grad.
Computed with torch.func (functional_call + vmap(grad / jacrev)) in chunks sized to a memory
budget, so thousands of inputs on a 250k-parameter network never hold more than one chunk of
per-sample gradients at a time.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

import torch
import torch.nn as nn
from torch.func import functional_call, grad, jacrev, vmap

from .._checks import (
    DEFAULT_MEMORY_BUDGET,
    MemoryBudgetError, as_enum, as_float_tensor, check_batch, check_int, check_memory_budget, check_positive,
)

if TYPE_CHECKING:
    from .._types import ArrayLike

__all__ = ["Normalization", "tangent_features", "DEFAULT_MEMORY_BUDGET"]

_TRAIN_MODE_LAYERS = (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd)
_VMAP_OVERHEAD = 3  # vmap(jacrev) keeps a few gradient-sized temporaries per sample
_PROJECTION_ROWS = 2**16  # rows of the random projection generated (and seeded) together


class Normalization(str, Enum):
    """How tangent vectors are scaled before inner products (per output in the per-output form).

    - ``NONE`` (default): raw gradients. The only form in which the Euler identity
      <g_k(x), theta> = L f_k(x) of bias-free ReLU nets holds, which is the paper's reason for "at
      least as good as the network"; at a fair scale it reproduces that claim (docs/methods.md).
      It also keeps the rank-one metrics pure forward mode (no gradient is ever built).
    - ``PER_INPUT_MINMAX``: g -> (g - min g) / (max g - min g), the extremes taken over the P
      coordinates of one input. **Degenerate**: most of the P coordinates are near 0, so every
      normalised vector is close to the constant -min g / (max g - min g) plus a small signal, and
      inner products are dominated by that per-input offset (about 5x the signal on MNIST, 98 % of
      the variation between inputs). A class-mean classifier on it lands at chance (0.10 on MNIST).
      Kept because it is one reading of the authors' text.
    - ``PER_PARAMETER_MINMAX``: each coordinate j -> (g_j - m_j) / (M_j - m_j), with m_j, M_j the
      extremes of coordinate j over a reference set of inputs (the columns `y` of a similarity, so
      a classifier's landmarks fix the scaling); a coordinate constant on the set maps to 0.
    - ``L2``: g -> g / ||g||, what the authors' published code does before inner products.
    - ``VALUE_SCALING``: g -> g * theta, each coordinate multiplied by its parameter's value; the
      Euclidean inner product then uses the diagonal of the full metric theta theta^T.

    A constant (or zero) vector maps to 0 under the min-max and L2 forms.
    """

    NONE = "none"
    PER_INPUT_MINMAX = "per_input_minmax"
    PER_PARAMETER_MINMAX = "per_parameter_minmax"
    L2 = "l2"
    VALUE_SCALING = "value_scaling"

    @classmethod
    def parse(cls, value: object) -> "Normalization":
        """`as_enum` with this option's two special cases: False and None mean NONE (the old boolean
        `normalize`), True and "minmax" are refused as ambiguous between the two min-max forms."""
        if isinstance(value, cls):
            return value
        if value is False or value is None:
            return cls.NONE
        if value is True or value == "minmax":
            raise ValueError(
                f"normalize: {value!r} is ambiguous; name the normalisation: 'per_input_minmax' (over "
                "one input's coordinates, degenerate, see Normalization) or 'per_parameter_minmax' "
                "(per coordinate over the reference inputs)"
            )
        return as_enum(value, cls, "normalize")

    @property
    def needs_reference(self) -> bool:
        """Whether the scaling depends on a reference set of inputs (not on the input alone)."""
        return self is Normalization.PER_PARAMETER_MINMAX


# ----------------------------------------------------------------------------- model and inputs


@dataclass(frozen=True)
class _Params:
    """The trainable parameters of a model, in `model.parameters()` order."""

    names: tuple[str, ...]
    tensors: tuple[torch.Tensor, ...]

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(t.numel() for t in self.tensors)

    @property
    def total(self) -> int:
        return sum(self.sizes)

    @property
    def dtype(self) -> torch.dtype:
        return self.tensors[0].dtype

    @property
    def device(self) -> torch.device:
        return self.tensors[0].device

    def as_dict(self) -> dict[str, torch.Tensor]:
        return {n: t.detach() for n, t in zip(self.names, self.tensors)}

    def flat(self) -> torch.Tensor:
        return torch.cat([t.detach().reshape(-1) for t in self.tensors])


def trainable_parameters(model: nn.Module) -> _Params:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if isinstance(model, torch.jit.ScriptModule):  # torch.func cannot swap a scripted module's parameters
        raise TypeError(
            f"model: a TorchScript module ({type(model).__name__}, from torch.jit.script or torch.jit.trace) cannot "
            "give per-sample gradients; pass the original nn.Module (load the same state dict into it)"
        )
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        total = sum(1 for _ in model.parameters())
        raise ValueError(
            f"model: expected at least one parameter with requires_grad=True, got none "
            f"({total} parameters, all frozen); tangent features are gradients with respect to "
            "parameters, so unfreeze them with p.requires_grad_(True)"
        )
    dtypes = {p.dtype for _, p in named}
    devices = {p.device for _, p in named}
    if len(dtypes) > 1 or len(devices) > 1:
        raise ValueError(
            f"model: expected all trainable parameters on one device with one dtype, got dtypes "
            f"{sorted(map(str, dtypes))} and devices {sorted(map(str, devices))}"
        )
    if not named[0][1].is_floating_point():
        raise TypeError(f"model: expected floating-point parameters, got {named[0][1].dtype}")
    for n, p in named:  # the sum first: NaN/inf when any entry is, and it allocates nothing
        if not math.isfinite(float(p.detach().sum())) and bool((~torch.isfinite(p)).any()):
            raise ValueError(f"model: parameter {n!r} has {int((~torch.isfinite(p)).sum())} NaN/inf entries")
    # per-sample gradients run each input alone: a batch-statistics layer in training mode has no
    # meaning there (torch.func fails deep inside), and dropout would make features random
    training = [(n, m) for n, m in model.named_modules() if m.training and isinstance(m, _TRAIN_MODE_LAYERS)]
    if training:
        name, module = training[0]
        raise ValueError(
            f"model: {type(module).__name__} {name or '(the model)'!r} is in training mode; call "
            "model.eval() first (tangent features are those of the deterministic network)"
        )
    return _Params(tuple(n for n, _ in named), tuple(p for _, p in named))


def check_inputs(params: _Params, x: ArrayLike, name: str, *, allow_empty: bool = False, model: nn.Module | None = None) -> torch.Tensor:
    """x as a tensor of the parameters' dtype; another device is refused rather than moved.

    With `model`, one input is run through it, so a shape the model cannot take is refused here,
    naming what its first layer expects, not deep inside torch.func."""
    if isinstance(x, torch.Tensor) and x.device != params.device:
        raise ValueError(
            f"{name}: expected a tensor on the model's device {params.device}, got one on "
            f"{x.device}; move it with {name}.to({str(params.device)!r})"
        )
    x = as_float_tensor(x, name, dtype=params.dtype, device=params.device)
    if x.dim() < 2:
        raise ValueError(
            f"{name}: expected a batch of shape [N, ...] with N inputs, got shape {list(x.shape)}"
        )
    x = check_batch(x, name, None, allow_empty=allow_empty)
    if model is not None and x.shape[0]:
        try:
            with torch.no_grad():
                functional_call(model, params.as_dict(), (x[:1],))
        except RuntimeError as err:
            first = next((m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))), None)
            wants = "" if first is None else (
                f"; its first layer {type(first).__name__} takes "
                + (f"{first.in_features} features" if isinstance(first, nn.Linear) else f"{first.in_channels} channels")
            )
            detail = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise ValueError(
                f"{name}: the model cannot take inputs of shape {list(x.shape[1:])} ({detail}){wants}"
            ) from None
    return x


def output_size(model: nn.Module, params: _Params, x: torch.Tensor) -> int:
    with torch.no_grad():
        out = functional_call(model, params.as_dict(), (x[:1],))
    return int(out[0].numel())


def chunk_size(per_sample_bytes: int, n: int, memory_budget: int) -> int:
    check_positive(memory_budget, "memory_budget")
    return int(max(1, min(n, memory_budget // max(1, per_sample_bytes))))


def chunks(n: int, size: int, *, progress: bool = False, desc: str = "") -> Iterator[slice]:
    starts = range(0, n, size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=desc, total=len(starts), leave=False)
    for start in starts:
        yield slice(start, min(n, start + size))


# ----------------------------------------------------------------------------- per-sample gradients


def per_sample_gradients(
    model: nn.Module, params: _Params, x: torch.Tensor, *, per_output: bool, output: int | None = None
) -> torch.Tensor:
    """[n, P] (or [n, K, P]) gradients for one chunk x, via vmap over samples.

    With `output` = k, only the gradient of f_k: [n, P] (one backward pass per input, not K)."""
    names = params.names

    def out_fn(p: dict, xi: torch.Tensor) -> torch.Tensor:
        return functional_call(model, p, (xi.unsqueeze(0),)).reshape(-1)

    if output is not None:
        per_param = vmap(grad(lambda p, xi: out_fn(p, xi)[output]), in_dims=(None, 0))(params.as_dict(), x)
        parts = [per_param[name].reshape(x.shape[0], t.numel()) for name, t in zip(names, params.tensors)]
    elif per_output:
        per_param = vmap(jacrev(out_fn), in_dims=(None, 0))(params.as_dict(), x)
        parts = [per_param[name].reshape(x.shape[0], -1, t.numel()) for name, t in zip(names, params.tensors)]
    else:
        per_param = vmap(grad(lambda p, xi: out_fn(p, xi).sum()), in_dims=(None, 0))(params.as_dict(), x)
        parts = [per_param[name].reshape(x.shape[0], t.numel()) for name, t in zip(names, params.tensors)]
    return torch.cat(parts, dim=-1)


@dataclass(frozen=True)
class ColumnScaling:
    """Per-coordinate scaling for the normalisations that are not per input alone.

    PER_PARAMETER_MINMAX: `low` and `span` [K, P] over a reference set (K = 1 in the summed
    form); VALUE_SCALING: `low` None and `span` the parameter values theta [P] (a multiplier).
    """

    low: torch.Tensor | None
    span: torch.Tensor


def parameter_ranges(model: nn.Module, params: _Params, x: torch.Tensor, *, per_output: bool, memory_budget: int,
                     progress: bool = False) -> ColumnScaling:
    """Per-coordinate minimum and range of the tangent features over the inputs x: [K, P]."""
    lo = hi = None
    for _, g in iter_features(model, params, x, per_output=per_output, normalize=Normalization.NONE,
                              memory_budget=memory_budget, progress=progress):
        g = g.reshape(g.shape[0], -1, params.total)
        a, b = g.amin(0), g.amax(0)
        lo = a if lo is None else torch.minimum(lo, a)
        hi = b if hi is None else torch.maximum(hi, b)
    return ColumnScaling(lo, hi - lo)


def column_scaling(model: nn.Module, params: _Params, reference: torch.Tensor | None, mode: "Normalization", *,
                   per_output: bool, memory_budget: int, progress: bool = False) -> ColumnScaling | None:
    """The ColumnScaling a mode needs (None for the per-input modes)."""
    if mode is Normalization.VALUE_SCALING:
        return ColumnScaling(None, params.flat())
    if mode is Normalization.PER_PARAMETER_MINMAX:
        return parameter_ranges(model, params, reference, per_output=per_output,
                                memory_budget=memory_budget, progress=progress)
    return None


def normalize_rows(g: torch.Tensor, mode: Normalization, columns: ColumnScaling | None = None) -> torch.Tensor:
    """Normalise along the last (parameter) axis; g is [n, P] or [n, K, P]."""
    if mode is Normalization.PER_INPUT_MINMAX:
        lo = g.amin(dim=-1, keepdim=True)
        span = g.amax(dim=-1, keepdim=True) - lo
        return torch.where(span > 0, (g - lo) / torch.where(span > 0, span, 1), torch.zeros_like(g))
    if mode is Normalization.L2:
        norm = g.norm(dim=-1, keepdim=True)
        return torch.where(norm > 0, g / torch.where(norm > 0, norm, 1), torch.zeros_like(g))
    if mode is Normalization.VALUE_SCALING:
        return g * columns.span
    if mode is Normalization.PER_PARAMETER_MINMAX:
        lo, span = columns.low, columns.span
        if g.dim() == 2:
            lo, span = lo.reshape(-1), span.reshape(-1)
        return torch.where(span > 0, (g - lo) / torch.where(span > 0, span, 1), torch.zeros_like(g))
    return g


def iter_features(
    model: nn.Module,
    params: _Params,
    x: torch.Tensor,
    *,
    per_output: bool,
    normalize: Normalization,
    memory_budget: int,
    progress: bool = False,
    index: torch.Tensor | None = None,
    columns: ColumnScaling | None = None,
    output: int | None = None,
) -> Iterator[tuple[slice, torch.Tensor]]:
    """Yield (rows, features) chunk by chunk; `index` keeps only those parameter coordinates
    (applied after normalisation, which always sees the whole gradient). With `output` = k (per-output
    form), only output k's features [n, P], normalised as that output's are."""
    k = 1 if output is not None or not per_output else output_size(model, params, x)
    if output is not None and columns is not None and columns.low is not None:
        columns = ColumnScaling(columns.low[output:output + 1], columns.span[output:output + 1])
    per_sample = params.total * k * params.dtype.itemsize * _VMAP_OVERHEAD
    size = chunk_size(per_sample, x.shape[0], memory_budget)
    for rows in chunks(x.shape[0], size, progress=progress, desc="tangent features"):
        with torch.no_grad():
            g = per_sample_gradients(model, params, x[rows], per_output=per_output, output=output)
            g = normalize_rows(g, normalize, columns)
        yield rows, (g if index is None else g.index_select(-1, index))


def _projection_block(block: int, rows: int, dim: int, seed: int, like: torch.Tensor) -> torch.Tensor:
    """Rows [block * R, block * R + rows) of the Gaussian projection, N(0, 1/dim) entries.

    Each block has its own seed, so the matrix does not depend on how inputs are chunked and is
    never materialised in one piece."""
    gen = torch.Generator(device="cpu").manual_seed(int(seed) * 1_000_003 + block)
    r = torch.randn(rows, dim, generator=gen, dtype=torch.float64) / dim**0.5
    return r.to(dtype=like.dtype, device=like.device)


def project(g: torch.Tensor, dim: int, seed: int) -> torch.Tensor:
    """g [..., P] @ R [P, dim] with R generated block by block."""
    p = g.shape[-1]
    out = torch.zeros(*g.shape[:-1], dim, dtype=g.dtype, device=g.device)
    for block, start in enumerate(range(0, p, _PROJECTION_ROWS)):
        stop = min(p, start + _PROJECTION_ROWS)
        out += g[..., start:stop] @ _projection_block(block, stop - start, dim, seed, g)
    return out


def tangent_features(
    model: nn.Module,
    x: ArrayLike,
    *,
    per_output: bool = False,
    normalize: Normalization | str = "none",
    reference: ArrayLike | None = None,
    projection_dim: int | None = None,
    seed: int = 0,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: bool = False,
) -> torch.Tensor:
    """Tangent features of every input: [N, P], or [N, K, P] with `per_output=True`.

    P counts the parameters with requires_grad=True, concatenated in `model.parameters()` order.
    `normalize` (a `Normalization` or its name; "none" by default) scales each gradient (per output
    in the per-output form; "per_parameter_minmax" per coordinate over `reference` inputs, x
    itself when None) before the optional Gaussian random projection to `projection_dim`
    coordinates (entries N(0, 1/d), seeded by `seed`, so inner products are preserved in
    expectation). Per-sample gradients are computed in chunks whose size keeps them under
    `memory_budget` bytes; the result itself is [N, P] unless projected.

    The model is evaluated as is: call `model.eval()` first if it has dropout or batch norm.
    """
    params = trainable_parameters(model)
    x = check_inputs(params, x, "x", model=model)
    mode = Normalization.parse(normalize)
    if projection_dim is not None:
        projection_dim = check_int(projection_dim, "projection_dim", what="or None")
    budget = check_memory_budget(memory_budget)
    # The result is held whole: refuse it up front, with its size, rather than fail in an
    # allocation after minutes of work (3,000 inputs of a 670k-parameter net: 8 GB).
    k = output_size(model, params, x) if per_output else 1
    width = params.total if projection_dim is None else int(projection_dim)
    shape = (x.shape[0], k, width) if per_output else (x.shape[0], width)
    need = math.prod(shape) * params.dtype.itemsize
    if need > budget:
        raise MemoryBudgetError(
            f"tangent_features: the result {list(shape)} ({params.dtype}) needs {need / 2**20:.0f} MiB, over "
            f"memory_budget={budget} bytes; pass projection_dim=..., fewer inputs, a larger "
            "memory_budget, or use tangent_similarity (which never holds all features)"
        )
    ref = x if reference is None else check_inputs(params, reference, "reference")
    columns = column_scaling(model, params, ref, mode, per_output=per_output, memory_budget=max(1, budget - need))
    out = torch.empty(shape, dtype=params.dtype, device=params.device)
    for rows, g in iter_features(
        model, params, x, per_output=per_output, normalize=mode,
        memory_budget=max(1, budget - need), progress=progress, columns=columns,
    ):
        out[rows] = g if projection_dim is None else project(g, int(projection_dim), seed)
    return out
