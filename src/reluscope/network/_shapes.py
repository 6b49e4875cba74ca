"""Affine layers that select, move or average entries without weights: flatten/reshape/unflatten,
padding, indexing, split, joins (cat, stack), mean/sum over dimensions, squeeze/unsqueeze,
transpose/permute, and the height-1 view of 1-D layers. Each keeps the batch dimension whole and
refuses, in one line naming the layer, a form that would reach it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from ._base import AbstractAffine, _batch_error, _check_not_batch, _NoOffset

__all__ = [
    "Flatten", "Reshape", "Unflatten", "Pad", "Interpolate", "Cat", "Stack", "Index", "Split", "Mean", "Total", "Squeeze", "To2d",
    "Transpose", "Permute",
]


@dataclass(frozen=True, eq=False)
class Flatten(_NoOffset):
    """torch.flatten(x, start_dim, end_dim), start_dim >= 1 (the batch stays)."""

    name: str
    start_dim: int = 1
    end_dim: int = -1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(x, self.start_dim, self.end_dim)


@dataclass(frozen=True, eq=False)
class Reshape(_NoOffset):
    """x [B, ...] -> x.reshape(B, *shape): a view that keeps the batch (one -1 allowed in shape)."""

    name: str
    shape: tuple[int, ...]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        try:
            return x.reshape(x.shape[0], *self.shape)
        except RuntimeError as err:
            raise ValueError(
                f"layer {self.name!r}: cannot reshape an input of shape {list(x.shape)} to "
                f"[batch, {', '.join(map(str, self.shape))}]"
            ) from err


@dataclass(frozen=True, eq=False)
class Unflatten(_NoOffset):
    """torch.unflatten(x, dim, sizes): dim `dim` (not the batch) becomes `sizes`."""

    name: str
    dim: int
    sizes: tuple[int, ...]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.unflatten(x, self.dim, self.sizes)


@dataclass(frozen=True, eq=False)
class Pad(AbstractAffine):
    """F.pad(x, pad, mode, value) over the last len(pad) // 2 dimensions: ZeroPad2d, ConstantPad2d,
    ReflectionPad2d, ReplicationPad2d, CircularPad2d, F.pad and a convolution's non-zero
    `padding_mode`. Each output entry copies an input entry or is the constant `value` (mode
    "constant" only): affine, and its differential pads with zeros (other modes copy dx alike)."""

    name: str
    pad: tuple[int, ...]
    mode: str = "constant"
    value: float = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(self.pad) // 2 >= x.dim():
            raise _batch_error(self, f"padding {len(self.pad) // 2} dimensions", x, "pad the dimensions after the batch only")
        return F.pad(x, self.pad, self.mode, self.value) if self.mode == "constant" else F.pad(x, self.pad, self.mode)

    def linear(self, dx: torch.Tensor) -> torch.Tensor:
        return F.pad(dx, self.pad, self.mode, 0.0) if self.mode == "constant" else F.pad(dx, self.pad, self.mode)


@dataclass(frozen=True, eq=False)
class _Join(_NoOffset):
    """Joins any number of inputs along the non-batch dimension `dim` with `_join` (torch.cat or
    torch.stack); `_new_dims` is 1 where the join adds `dim` (stack), which shifts the batch check."""

    name: str
    dim: int
    n_inputs: int = -1
    _join: ClassVar[Callable[..., torch.Tensor]]
    _new_dims: ClassVar[int]
    _verb: ClassVar[str]

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        _check_not_batch(self, (self.dim,), xs[0], f"{self._verb} along dim {self.dim}", "give dim=1 or later",
                         ndim=xs[0].dim() + self._new_dims)
        return type(self)._join(xs, dim=self.dim)


@dataclass(frozen=True, eq=False)
class Cat(_Join):
    """Concatenation along a non-batch dimension."""

    _join = torch.cat
    _new_dims = 0
    _verb = "concatenation"


@dataclass(frozen=True, eq=False)
class Stack(_Join):
    """torch.stack along a new non-batch dimension."""

    _join = torch.stack
    _new_dims = 1
    _verb = "stacking"


@dataclass(frozen=True, eq=False)
class Index(_NoOffset):
    """x[index]: basic indexing (slices with a positive step, integers, None, one Ellipsis) that
    keeps the batch dimension whole, e.g. x[:, :k] or x[..., 1:]. A selection: linear."""

    name: str
    index: tuple  # of slice | int | None | Ellipsis

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = next((item for item in self.index if item is not None), Ellipsis)
        if first is Ellipsis:  # the Ellipsis must cover the batch: count the dims indexed after it
            rest = sum(item is not None and item is not Ellipsis for item in self.index)
            ok = x.dim() - rest >= 1 and self.index[0] is not None
        else:
            ok = self.index[0] == slice(None)
        if not ok:
            raise _batch_error(self, f"the index {_show_index(self.index)}", x, "index the other dimensions only (x[:, ...])")
        return x[self.index]


def _show_index(index: tuple) -> str:
    def one(item):
        if item is Ellipsis:
            return "..."
        if isinstance(item, slice):
            text = f"{'' if item.start is None else item.start}:{'' if item.stop is None else item.stop}"
            return text + ("" if item.step is None else f":{item.step}")
        return repr(item)

    return "[" + ", ".join(one(i) for i in index) + "]"


@dataclass(frozen=True, eq=False)
class Split(_NoOffset):
    """Part `index` of torch.split(x, split, dim), or of torch.chunk(x, split, dim) with
    `chunks=True`: a slice along a non-batch dimension, computed by torch itself so the parts
    (and a last, shorter one) are exactly the user's."""

    name: str
    split: int | tuple[int, ...]
    dim: int
    index: int
    chunks: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_not_batch(self, (self.dim,), x, f"{'chunking' if self.chunks else 'splitting'} along dim {self.dim}",
                         "give dim=1 or later")
        parts = torch.chunk(x, self.split, self.dim) if self.chunks else torch.split(x, self.split, self.dim)
        if not -len(parts) <= self.index < len(parts):
            raise ValueError(
                f"layer {self.name!r}: part {self.index} of {len(parts)} ({'chunk' if self.chunks else 'split'} "
                f"of dim {self.dim} of an input of shape {list(x.shape)})"
            )
        return parts[self.index]


@dataclass(frozen=True, eq=False)
class Mean(_NoOffset):
    """torch.mean over non-batch dimensions `dim` (e.g. global average pooling, x.mean((2, 3)))."""

    name: str
    dim: tuple[int, ...]
    keepdim: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_not_batch(self, self.dim, x, f"a mean over dims {list(self.dim)}", "average the other dimensions only")
        return torch.mean(x, self.dim, self.keepdim)


@dataclass(frozen=True, eq=False)
class Total(Mean):
    """torch.sum over non-batch dimensions `dim` (x.sum((2, 3)))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_not_batch(self, self.dim, x, f"a sum over dims {list(self.dim)}", "sum over the other dimensions only")
        return torch.sum(x, self.dim, self.keepdim)


@dataclass(frozen=True, eq=False)
class Squeeze(_NoOffset):
    """x.squeeze(dim) or, with `unsqueeze`, x.unsqueeze(dim), off the batch dimension. `dim` None
    squeezes every non-batch dimension of size 1 (x.squeeze(): torch would drop a batch of one too,
    which changes the shape but not what each input maps to)."""

    name: str
    dim: int | tuple[int, ...] | None
    unsqueeze: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.unsqueeze:
            _check_not_batch(self, (self.dim,), x, f"unsqueeze({self.dim})", "give dim=1 or later", ndim=x.dim() + 1)
            return x.unsqueeze(self.dim)
        if self.dim is None:
            return x.reshape(x.shape[0], *[s for s in x.shape[1:] if s != 1])
        dims = (self.dim,) if isinstance(self.dim, int) else self.dim
        _check_not_batch(self, dims, x, f"squeeze({self.dim})", "give dim=1 or later")
        return x.squeeze(dims)


@dataclass(frozen=True, eq=False)
class To2d(_NoOffset):
    """[B, C, L] -> [B, C, 1, L]: a 1-D layer (Conv1d, MaxPool1d, ...) runs as its 2-D form on an
    image of height 1. Any other rank is refused: without an input shape, a 3-D input is one image."""

    name: str

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3:
            raise ValueError(
                f"layer {self.name!r}: a 1-D layer needs inputs [B, C, L], got shape {list(x.shape)}; pass one input "
                "[C, L] (a batch [1, C, L] is read as one image when the input shape is unknown), or give "
                "to_network(model, input_shape=(C, L))"
            )
        return x.unsqueeze(2)


@dataclass(frozen=True, eq=False)
class Transpose(_NoOffset):
    """x.transpose(dim0, dim1) of two non-batch dimensions."""

    name: str
    dim0: int
    dim1: int

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_not_batch(self, (self.dim0, self.dim1), x, f"transpose({self.dim0}, {self.dim1})", "swap dims 1 or later")
        return x.transpose(self.dim0, self.dim1)


@dataclass(frozen=True, eq=False)
class Permute(_NoOffset):
    """x.permute(dims) that keeps the batch first (dims[0] is 0)."""

    name: str
    dims: tuple[int, ...]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(self.dims) != x.dim() or self.dims[0] % x.dim() != 0:
            raise _batch_error(self, f"permute{self.dims}", x, "keep the batch first: permute(0, ...)")
        return x.permute(self.dims)


@dataclass(frozen=True, eq=False)
class Interpolate(_NoOffset):
    """F.interpolate / nn.Upsample: every mode (nearest, bilinear, bicubic, area, ...) weights the
    input entries by amounts fixed by the sizes alone, so it is linear in x."""

    name: str
    size: int | tuple[int, ...] | None
    scale_factor: float | tuple[float, ...] | None
    mode: str = "nearest"
    align_corners: bool | None = None
    recompute_scale_factor: bool | None = None
    antialias: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners,
                             self.recompute_scale_factor, self.antialias)
