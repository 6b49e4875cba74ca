"""The base classes of reluscope's layers and the one batch-dimension check they share."""

from __future__ import annotations

import abc
from dataclasses import replace

import torch

__all__ = ["AbstractLayer", "AbstractAffine", "AbstractActivation"]

class AbstractLayer(abc.ABC):
    name: str

    @abc.abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor: ...

    def _tensors(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in vars(self).items() if isinstance(v, torch.Tensor)}

    def to(self, *, dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> AbstractLayer:
        """A copy with every tensor moved; floating tensors take `dtype`."""
        tensors = self._tensors()
        moved = {
            k: v.to(device=device or v.device, dtype=dtype if v.is_floating_point() and dtype else v.dtype)
            for k, v in tensors.items()
        }
        return replace(self, **moved) if any(moved[k] is not tensors[k] for k in moved) else self


class AbstractAffine(AbstractLayer):
    """x -> A x + c, with `linear(dx)` = A dx. Multi-input layers (`n_inputs` != 1) are affine in
    all their inputs together: forward(x1, x2, ...) and linear(dx1, dx2, ...)."""

    n_inputs: int = 1

    @abc.abstractmethod
    def linear(self, dx: torch.Tensor) -> torch.Tensor: ...


class _NoOffset(AbstractAffine):
    """An affine layer without offset (a selection, reshape, join or average: a linear map), so
    its differential `linear` is `forward` itself."""

    def linear(self, *dxs: torch.Tensor) -> torch.Tensor:
        return self.forward(*dxs)


def _batch_error(layer: AbstractLayer, what: str, x: torch.Tensor, fix: str) -> ValueError:
    """The one error of a layer whose operation reaches the batch dimension (dim 0) at run time.
    The converter refuses the forms it can see; this guards networks built by hand and inputs with
    fewer dimensions than traced."""
    return ValueError(f"layer {layer.name!r}: {what} reaches the batch dimension of an input of shape {list(x.shape)}; {fix}")


def _check_not_batch(layer: AbstractLayer, dims: tuple[int, ...], x: torch.Tensor, what: str, fix: str, *, ndim: int | None = None) -> None:
    """Refuse `dims` (of a result with `ndim` dimensions, default x's) that name dim 0, also as a negative index."""
    ndim = x.dim() if ndim is None else ndim
    if any(d % ndim == 0 for d in dims):
        raise _batch_error(layer, what, x, fix)


class AbstractActivation(AbstractLayer):
    """An elementwise or pooling nonlinearity; its `bits` are part of the activation pattern."""

    piecewise_linear: bool = True

    @abc.abstractmethod
    def bits(self, z: torch.Tensor) -> torch.Tensor:
        """bool [B, units] for a batch z [B, ...]."""

    def jvp(self, z: torch.Tensor, dz: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise TypeError(
            f"layer {self.name!r} ({type(self).__name__}) is not piecewise linear; exact "
            "traversal and region computation need ReLU, LeakyReLU, PReLU, ReLU6, Hardtanh, clamp, torch.maximum "
            "or MaxPool2d activations (use reluscope.traverse_bisection for smooth activations)"
        )
