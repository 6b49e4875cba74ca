"""The layers of reluscope's internal piecewise-linear description of a network.

A network is a graph (see `network.py`) of two kinds of layer:

* affine layers (`Linear`, `Conv2d`, `ChannelAffine`, `AvgPool2d`, `AdaptiveAvgPool2d`, `Pad`, `Flatten`,
  `Reshape`, `Unflatten`, `Index`, `Split`, `Mean`, `Total`, `Squeeze`, `Transpose`, `Permute`, and the multi-input `Sum`, `Cat` and `Stack`)
  with `forward(*x)` and `linear(*dx)`,
  the same map without its offset (its differential), so a direction can be pushed through next to
  a point; `n_inputs` says how many tensors they take (-1: any number);
* activation layers, which own the activation pattern: `bits(z)` gives one bool per unit, and for
  the piecewise-linear ones (`ReLU`, `LeakyReLU`, `MaxPool2d`) `jvp(z, dz)` gives the value and the
  differential on the linear region containing z.

Every layer keeps the dotted module path it came from (`name`) so errors and plots can point at the
user's own module. Tensors are stored as given; `Network.to` changes dtype and device. The base
classes live in `_base.py`, the weightless selection/reshaping layers in `_shapes.py`; all are
imported from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ._base import AbstractActivation, AbstractAffine, AbstractLayer, _batch_error, _NoOffset
from ._shapes import (
    Cat, Flatten, Index, Interpolate, Mean, Pad, Permute, Reshape, Split, Squeeze, Stack, To2d, Total, Transpose, Unflatten,
)

__all__ = [
    "AbstractLayer",
    "AbstractAffine",
    "AbstractActivation",
    "Linear",
    "Conv2d",
    "ChannelAffine",
    "AvgPool2d",
    "Flatten",
    "Reshape",
    "Unflatten",
    "AdaptiveAvgPool2d",
    "Pad",
    "Interpolate",
    "ConstOp",
    "Sum",
    "Cat",
    "Stack",
    "Index",
    "Split",
    "Mean",
    "Total",
    "Squeeze",
    "To2d",
    "Transpose",
    "Permute",
    "ReLU",
    "LeakyReLU",
    "MaxPool2d",
    "Smooth",
    "SMOOTH_FUNCTIONS",
]

# ---------------------------------------------------------------- affine layers


@dataclass(frozen=True, eq=False)
class Linear(AbstractAffine):
    """x [B, in] -> x W^T + b [B, out]."""

    name: str
    weight: torch.Tensor  # [out, in]
    bias: torch.Tensor  # [out]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)

    def linear(self, dx: torch.Tensor) -> torch.Tensor:
        return F.linear(dx, self.weight)


@dataclass(frozen=True, eq=False)
class Conv2d(AbstractAffine):
    """x [B, C, H, W] -> conv2d(x) [B, out_channels, H', W']."""

    name: str
    weight: torch.Tensor  # [out_channels, in_channels / groups, kh, kw]
    bias: torch.Tensor  # [out_channels]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] | str = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def linear(self, dx: torch.Tensor) -> torch.Tensor:
        return F.conv2d(dx, self.weight, None, self.stride, self.padding, self.dilation, self.groups)


@dataclass(frozen=True, eq=False)
class ChannelAffine(AbstractAffine):
    """Per-channel scale and shift along dim 1 (x [B, C, ...]): an eval-mode BatchNorm that could
    not be folded."""

    name: str
    scale: torch.Tensor  # [C]
    shift: torch.Tensor  # [C]

    def _view(self, t, ndim):
        return t.reshape((1, -1) + (1,) * (ndim - 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self._view(self.scale, x.dim()) + self._view(self.shift, x.dim())

    def linear(self, dx: torch.Tensor) -> torch.Tensor:
        return dx * self._view(self.scale, dx.dim())


@dataclass(frozen=True, eq=False)
class AvgPool2d(_NoOffset):
    """x [B, C, H, W] -> the mean of each window [B, C, H', W'] (no offset: linear)."""

    name: str
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int] = (0, 0)
    ceil_mode: bool = False
    count_include_pad: bool = True
    divisor_override: int | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(
            x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
            self.count_include_pad, self.divisor_override,
        )


@dataclass(frozen=True, eq=False)
class AdaptiveAvgPool2d(_NoOffset):
    """Linear for every input size: each output cell averages a window fixed by the input size."""

    name: str
    output_size: tuple[int | None, int | None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3:
            raise ValueError(
                f"layer {self.name!r}: AdaptiveAvgPool2d needs an image input [B, C, H, W], got "
                f"shape {list(x.shape)}; give the input shape (to_network(model, input_shape=...))"
            )
        return F.adaptive_avg_pool2d(x, self.output_size)


@dataclass(frozen=True, eq=False)
class ConstOp(AbstractAffine):
    """x + c, x - c, c - x, x * c or x / c (`op` "add", "sub", "rsub", "mul", "div") with a constant
    tensor c read in forward, e.g. input normalisation (x - self.mean) / self.std with buffers.
    c broadcasts over the batch; it may not reach into it (dim 0 of x)."""

    name: str
    op: str
    const: torch.Tensor

    def _check(self, x: torch.Tensor) -> None:
        c = self.const
        if c.dim() > x.dim() or (c.dim() == x.dim() and c.shape[0] != 1):
            raise _batch_error(self, f"the constant of shape {list(c.shape)}", x,
                               "give the constant no batch dimension (or size 1 there)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        c = self.const
        return {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div}[self.op](x, c) if self.op != "rsub" else c - x

    def linear(self, dx: torch.Tensor) -> torch.Tensor:
        self._check(dx)
        if self.op in ("mul", "div"):
            return dx * self.const if self.op == "mul" else dx / self.const
        zero = torch.zeros_like(self.const)  # the broadcast shape of x and c
        return dx + zero if self.op != "rsub" else zero - dx


@dataclass(frozen=True, eq=False)
class Sum(AbstractAffine):
    """(sum_i coeffs[i] * x_i) / divisor + offset: residual additions, subtractions, scaling by a
    constant. Division is kept apart from the coefficients so x / 3 rounds exactly like torch."""

    name: str
    coeffs: tuple[float, ...]
    offset: float = 0.0
    divisor: float = 1.0

    @property
    def n_inputs(self) -> int:  # type: ignore[override]
        return len(self.coeffs)

    def linear(self, *dxs: torch.Tensor) -> torch.Tensor:
        if any(dx.dim() != dxs[0].dim() for dx in dxs):  # torch would align one's batch with another's features
            raise ValueError(
                f"layer {self.name!r}: the terms have shapes {[list(dx.shape) for dx in dxs]}; with different numbers "
                "of dimensions they broadcast across the batch (dim 0), mixing inputs; keep every term's dimensions, "
                "e.g. h.mean(1, keepdim=True)"
            )
        out = None
        for c, dx in zip(self.coeffs, dxs):
            term = dx if c == 1.0 else dx * c
            out = term if out is None else out + term
        return out if self.divisor == 1.0 else out / self.divisor

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = self.linear(*xs)
        return out + self.offset if self.offset else out


# ---------------------------------------------------------------- activations


def _flat(b: torch.Tensor) -> torch.Tensor:
    return b.reshape(b.shape[0], -1)


@dataclass(frozen=True, eq=False)
class LeakyReLU(AbstractActivation):
    """max(z, 0) + slope * min(z, 0); the bit is z > 0 (= f(z) > 0 for slope >= 0)."""

    name: str
    negative_slope: float = 0.0

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(z, self.negative_slope) if self.negative_slope else F.relu(z)

    def bits(self, z: torch.Tensor) -> torch.Tensor:
        return _flat(z > 0)

    def jvp(self, z: torch.Tensor, dz: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        on = z > 0
        if self.negative_slope:
            slope = torch.full_like(dz, self.negative_slope).masked_fill_(on, 1.0)  # not torch.where(on, 1.0, s): float32
            return self.forward(z), dz * slope
        return z * on, dz * on


def ReLU(name: str) -> LeakyReLU:  # noqa: N802 - mirrors torch.nn.ReLU
    """ReLU is LeakyReLU with slope 0: one implementation, one thin special case."""
    return LeakyReLU(name, 0.0)


@dataclass(frozen=True, eq=False)
class MaxPool2d(AbstractActivation):
    """Max pooling is piecewise linear: on a region it copies the argmax of each window.

    Its bits are the one-hot argmax of every window (kernel_h * kernel_w bits per output element),
    so an argmax change flips two bits. Ties go to the first position in the window, row-major.
    """

    name: str
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)

    def windows(self, z: torch.Tensor, fill: float = float("-inf")) -> torch.Tensor:
        """[B, C, K, L]: the K = kh * kw values of each of the L windows.

        Padding takes `fill`: -inf for values (never the max), 0 for their derivatives.
        """
        b, c = z.shape[:2]
        ph, pw = self.padding
        if ph or pw:
            z = F.pad(z, (pw, pw, ph, ph), value=fill)
        cols = F.unfold(z, self.kernel_size, dilation=self.dilation, stride=self.stride)
        return cols.reshape(b, c, self.kernel_size[0] * self.kernel_size[1], -1)

    def output_hw(self, h: int, w: int) -> tuple[int, int]:
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel_size, self.stride, self.padding, self.dilation
        return (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1

    def pool(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(output, index): torch's own max pooling with the flat input index (per channel) of each
        window's max. Its scan is row-major and keeps the first maximum, the tie rule above;
        unfolding the windows instead (`windows`) costs 10-100x more on real feature maps."""
        return F.max_pool2d(z, self.kernel_size, self.stride, self.padding, self.dilation, return_indices=True)

    @staticmethod
    def take(dz: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """The entries of `dz` [B, C, H, W] at the argmax `index` [B, C, h, w] of `pool`: the
        derivative of max pooling, which copies the argmax entry of each window."""
        return dz.flatten(2).gather(2, index.flatten(2)).view(*index.shape)

    def _window_position(self, flat_index, width: int):
        """Position (0 .. kh*kw - 1, row-major) inside its window of each max, [B, C, L]."""
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel_size, self.stride, self.padding, self.dilation
        oh, ow = flat_index.shape[-2:]
        rows = torch.arange(oh, device=flat_index.device).view(-1, 1) * sh - ph
        cols = torch.arange(ow, device=flat_index.device).view(1, -1) * sw - pw
        dr = (flat_index // width - rows) // dh
        dc = (flat_index % width - cols) // dw
        return (dr * kw + dc).flatten(2)

    def argmax(self, z: torch.Tensor) -> torch.Tensor:
        return self._window_position(self.pool(z)[1], z.shape[-1])  # [B, C, L]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(z, self.kernel_size, self.stride, self.padding, self.dilation)

    def bits(self, z: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size[0] * self.kernel_size[1]
        return _flat(F.one_hot(self.argmax(z), k).bool())

    def jvp(self, z: torch.Tensor, dz: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        out, index = self.pool(z)
        return out, (None if dz is None else self.take(dz, index))


SMOOTH_FUNCTIONS = {
    "gelu": F.gelu,
    "gelu_tanh": lambda z: F.gelu(z, approximate="tanh"),
    "silu": F.silu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
}


@dataclass(frozen=True, eq=False)
class Smooth(AbstractActivation):
    """GELU, SiLU, Tanh or Sigmoid: patterns only (bit = z > 0), no exact traversal.

    For GELU, SiLU and Tanh, z > 0 is exactly f(z) > 0. A sigmoid is positive everywhere, so
    f(z) > 0 would give a constant pattern; we use z > 0 (f(z) > f(0) = 1/2) there too.
    """

    name: str
    function: str
    piecewise_linear: bool = field(default=False, init=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return SMOOTH_FUNCTIONS[self.function](z)

    def bits(self, z: torch.Tensor) -> torch.Tensor:
        return _flat(z > 0)
