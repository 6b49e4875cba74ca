"""`Network`: a user's model as a chain of affine layers and activations.

Converted once from a `torch.nn.Module` through an explicit whitelist (see `convert.py`); every
capability of reluscope (patterns, traversal, regions, folding) reads this description instead of
hooking into the user's module, so all of them agree on what a unit and a pattern are.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import torch

from .layers import AbstractActivation, AbstractAffine, AbstractLayer

__all__ = ["Network", "LayerUnits"]


@dataclass(frozen=True)
class LayerUnits:
    """Where one activation layer's bits sit in the flat pattern: bits[start:stop]."""

    name: str
    kind: str
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True, eq=False)
class Network:
    """A chain of layers plus the input shape (without batch dimension) it was built for.

    `input_shape` may be None for pure MLP chains until an input fixes it; unit counts of
    convolutional networks depend on it.
    """

    layers: tuple[AbstractLayer, ...]
    input_shape: tuple[int, ...] | None = None

    # -- structure ---------------------------------------------------------------------------
    @property
    def activations(self) -> tuple[AbstractActivation, ...]:
        return tuple(layer for layer in self.layers if isinstance(layer, AbstractActivation))

    @property
    def piecewise_linear(self) -> bool:
        return all(a.piecewise_linear for a in self.activations)

    @property
    def dtype(self) -> torch.dtype:
        for layer in self.layers:
            for t in layer._tensors().values():
                if t.is_floating_point():
                    return t.dtype
        return torch.get_default_dtype()

    @property
    def device(self) -> torch.device:
        for layer in self.layers:
            for t in layer._tensors().values():
                return t.device
        return torch.device("cpu")

    def to(self, *, dtype=None, device=None) -> "Network":
        return replace(self, layers=tuple(layer.to(dtype=dtype, device=device) for layer in self.layers))

    def with_input_shape(self, input_shape) -> "Network":
        return replace(self, input_shape=tuple(int(s) for s in input_shape))

    def require_piecewise_linear(self, what: str) -> None:
        for a in self.activations:
            if not a.piecewise_linear:
                raise TypeError(
                    f"{what} needs a piecewise-linear network, but layer {a.name!r} is "
                    f"{type(a).__name__}({getattr(a, 'function', '')}); supported activations for "
                    "exact methods: ReLU, LeakyReLU, MaxPool2d"
                )

    # -- evaluation --------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    __call__ = forward

    def trace(self, x: torch.Tensor) -> Iterator[tuple[AbstractLayer, torch.Tensor]]:
        """Yield (layer, its input) for every layer, then (None, output)."""
        for layer in self.layers:
            yield layer, x
            x = layer.forward(x)
        yield None, x

    def bits(self, x: torch.Tensor, *, include_output: bool = False) -> torch.Tensor:
        """bool [B, units]: the activation pattern of each input, hidden layers in order."""
        parts = []
        for layer, z in self.trace(x):
            if layer is None:
                if include_output:
                    parts.append(z.reshape(z.shape[0], -1) > 0)
            elif isinstance(layer, AbstractActivation):
                parts.append(layer.bits(z))
        if not parts:
            return torch.zeros(x.shape[0], 0, dtype=torch.bool, device=x.device)
        return torch.cat(parts, dim=1)

    def unit_layout(self, *, include_output: bool = False) -> tuple[LayerUnits, ...]:
        """Which slice of the pattern belongs to which layer (needs `input_shape`)."""
        if self.input_shape is None:
            raise ValueError(
                "network.input_shape is unknown; build it with to_network(model, input_shape=...)"
            )
        x = torch.zeros((1, *self.input_shape), dtype=self.dtype, device=self.device)
        spans, start = [], 0
        with torch.no_grad():
            for layer, z in self.trace(x):
                if layer is None:
                    if include_output:
                        n = z[0].numel()
                        spans.append(LayerUnits("output", "output", start, start + n))
                elif isinstance(layer, AbstractActivation):
                    n = layer.bits(z).shape[1]
                    spans.append(LayerUnits(layer.name, type(layer).__name__, start, start + n))
                    start += n
        return tuple(spans)

    def n_units(self, *, include_output: bool = False) -> int:
        layout = self.unit_layout(include_output=include_output)
        return layout[-1].stop if layout else 0

    def __repr__(self) -> str:
        inner = ", ".join(f"{type(layer).__name__}({layer.name!r})" for layer in self.layers)
        return f"Network(input_shape={self.input_shape}, layers=[{inner}])"


def is_affine(layer: AbstractLayer) -> bool:
    return isinstance(layer, AbstractAffine)
