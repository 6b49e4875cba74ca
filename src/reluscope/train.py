"""A small, deterministic classifier trainer with hooks for recording geometry during training.

`train_classifier` runs mini-batch Adam or SGD for a number of epochs, or until a target
validation accuracy is reached, and calls `callbacks` every `callback_every` steps so the other
capabilities (folding, regions, hulls) can measure the network as it learns. Under a fixed `seed`
two runs give identical weights on the CPU: the shuffling uses its own generator and the global
RNG state is restored afterwards, so training never disturbs the caller's random numbers.
"""

from __future__ import annotations

import enum
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn as nn

from ._checks import as_enum, as_float_tensor, check_finite, check_int, check_positive
from .io_utils import to_jsonable
from .network.io import describe_model, load_model, read_model_description, save_model
from .results import FORMAT_VERSION, Result, decode_manifest, encode_manifest

if TYPE_CHECKING:
    from ._types import ArrayLike

__all__ = ["mlp", "train_classifier", "accuracy", "TrainResult", "EpochStats", "TrainState", "Optimizer"]

_ACTIVATIONS = {
    "relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "gelu": nn.GELU, "silu": nn.SiLU,
    "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
}


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int, activation: str = "relu", *, seed: int | None = None) -> nn.Sequential:
    """Linear-activation-...-Linear as a flat nn.Sequential (PyTorch's default initialisation).

    With `seed`, the initial weights are drawn from that seed without touching the global RNG.
    """
    in_dim, out_dim = check_int(in_dim, "in_dim"), check_int(out_dim, "out_dim")
    hidden = [check_int(h, "hidden", what="each entry") for h in hidden]
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation: expected one of {', '.join(_ACTIVATIONS)}, got {activation!r}")
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        layers: list[nn.Module] = []
        width = in_dim
        for h in hidden:
            layers += [nn.Linear(width, h), _ACTIVATIONS[activation]()]
            width = h
        layers.append(nn.Linear(width, out_dim))
        return nn.Sequential(*layers)


class Optimizer(str, enum.Enum):
    """ADAM (default): robust to the learning rate, reaches MNIST targets in one or two epochs.
    SGD: plain (optionally momentum) SGD, for experiments that need the simpler dynamics."""

    ADAM = "adam"
    SGD = "sgd"


@dataclass(frozen=True)
class EpochStats(Result):
    """One epoch: mean training loss, accuracies (None when not measured) and steps so far."""

    epoch: int
    loss: float
    train_accuracy: float
    val_accuracy: float | None
    steps: int


@dataclass(frozen=True)
class TrainState:
    """What a callback sees besides the model: where training is and the last batch loss."""

    step: int
    epoch: int
    loss: float | None


@dataclass(frozen=True, eq=False)
class TrainResult(Result):
    """The trained model (eval mode, on the training device), the per-epoch history and the steps.

    `reached_target` is True iff a `target_accuracy` was given and reached. `save(path)` writes
    the model with `save_model` (`path.safetensors` + `path.json`) and the rest as a result manifest
    inside that JSON file's metadata, so the pair stays loadable by `load_model` and the CLI;
    `TrainResult.load(path)` reads both back. Nothing is pickled.
    """

    model: nn.Module
    history: tuple[EpochStats, ...]
    steps: int
    reached_target: bool

    @property
    def final_accuracy(self) -> float | None:
        """Validation accuracy of the last epoch (training accuracy when there was no validation set)."""
        if not self.history:
            return None
        last = self.history[-1]
        return last.val_accuracy if last.val_accuracy is not None else last.train_accuracy

    def _rest(self) -> dict:
        return {"history": self.history, "steps": self.steps, "reached_target": self.reached_target}

    def to_dict(self) -> dict:
        """History, steps and reached_target as JSON values; the model as its architecture description."""
        return {"model": describe_model(self.model), **to_jsonable(self._rest())}

    def save(self, path: str | os.PathLike) -> tuple[Path, Path]:
        """Write `path.safetensors` and `path.json` (the model, and the rest as metadata); returns both."""
        manifest = encode_manifest(self._rest(), what="TrainResult")
        return save_model(self.model, path, metadata={"train_result": manifest})

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str | torch.device = "cpu") -> "TrainResult":
        """Read a TrainResult written by `save` (the model on `device`, in eval mode)."""
        meta = (read_model_description(path).get("metadata") or {}).get("train_result")
        if not isinstance(meta, dict):
            raise ValueError(
                f"path: {path} is a saved model without a training result; load it with reluscope.load_model"
            )
        rest = decode_manifest(meta, what=str(path))
        if not isinstance(rest, dict) or set(rest) != {"history", "steps", "reached_target"}:
            raise ValueError(f"path: {path} has a malformed training result (format {FORMAT_VERSION} expected)")
        return cls(model=load_model(path, device=device), **rest)


def _as_data(x, y, xname: str, yname: str) -> tuple[torch.Tensor, torch.Tensor]:
    x = check_finite(as_float_tensor(x, xname), xname)
    y = torch.as_tensor(y)
    if y.dtype.is_floating_point or y.dtype == torch.bool or y.is_complex():
        raise TypeError(f"{yname}: expected integer class labels, got dtype {y.dtype}")
    if y.dim() != 1 or x.dim() < 2 or len(y) != len(x):
        raise ValueError(f"{yname}: expected shape [N] matching {xname} [N, ...], got {list(y.shape)} for {xname} {list(x.shape)}")
    if len(x) == 0:
        raise ValueError(f"{xname}: expected at least one example, got an empty set")
    if int(y.min()) < 0:
        raise ValueError(f"{yname}: expected labels >= 0, got {int(y.min())}")
    return x, y.long()


@torch.no_grad()
def accuracy(model: nn.Module, x: ArrayLike, y: ArrayLike, *, batch_size: int = 4096) -> float:
    """Fraction of inputs whose argmax output equals the label (model evaluated as it is)."""
    x, y = _as_data(x, y, "x", "y")
    device = next((p.device for p in model.parameters()), x.device)
    dtype = next((p.dtype for p in model.parameters()), x.dtype)
    correct = 0
    for i in range(0, len(x), batch_size):
        out = model(x[i : i + batch_size].to(device=device, dtype=dtype))
        correct += int((out.argmax(dim=1).cpu() == y[i : i + batch_size]).sum())
    return correct / len(x)


def _make_optimizer(kind: Optimizer, params, lr: float, weight_decay: float, momentum: float):
    if kind is Optimizer.ADAM:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=momentum)


def train_classifier(
    model: nn.Module,
    x: ArrayLike,
    y: ArrayLike,
    *,
    x_val: ArrayLike | None = None,
    y_val: ArrayLike | None = None,
    epochs: int = 10,
    target_accuracy: float | None = None,
    optimizer: Optimizer | str = Optimizer.ADAM,
    lr: float = 1e-3,
    momentum: float = 0.0,
    batch_size: int = 128,
    weight_decay: float = 0.0,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
    callbacks: Sequence[Callable[[int, nn.Module, TrainState], None]] = (),
    callback_every: int = 100,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    extra_loss: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> TrainResult:
    """Train `model` (in place) to classify x -> y; returns a `TrainResult`.

    Training stops after `epochs` epochs, or earlier at the end of the first epoch whose validation
    accuracy (training accuracy without a validation set) is >= `target_accuracy`. The loss is
    `loss_fn(logits, y)` (default cross-entropy) plus `extra_loss(model, xb, yb)` when given.
    Every callback is called as `cb(step, model, state)` at step 0 (before any update) and after
    every `callback_every` optimiser steps, with the model in eval mode (it goes back to train mode
    afterwards). The model is returned in eval mode.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    x, y = _as_data(x, y, "x", "y")
    if (x_val is None) != (y_val is None):
        raise ValueError("x_val, y_val: give both or neither")
    if x_val is not None:
        x_val, y_val = _as_data(x_val, y_val, "x_val", "y_val")
    epochs, batch_size = check_int(epochs, "epochs"), check_int(batch_size, "batch_size")
    callback_every = check_int(callback_every, "callback_every")
    if target_accuracy is not None and not 0 < target_accuracy <= 1:
        raise ValueError(f"target_accuracy: expected a number in (0, 1], got {target_accuracy!r}")
    check_positive(lr, "lr")
    check_positive(weight_decay, "weight_decay", allow_zero=True)
    check_positive(momentum, "momentum", allow_zero=True)
    kind = as_enum(optimizer, Optimizer, "optimizer")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: 'cuda' was requested but torch.cuda.is_available() is False; use device='cpu'")
    callbacks = tuple(callbacks)
    if not all(callable(cb) for cb in callbacks):
        raise TypeError("callbacks: expected a sequence of callables cb(step, model, state)")
    loss_fn = loss_fn or nn.functional.cross_entropy

    from tqdm.auto import tqdm

    model.to(device)
    dtype = next((p.dtype for p in model.parameters()), torch.float32)
    xd, yd = x.to(device=device, dtype=dtype), y.to(device)
    opt = _make_optimizer(kind, model.parameters(), lr, weight_decay, momentum)
    shuffle = torch.Generator().manual_seed(seed)
    history: list[EpochStats] = []
    step, reached = 0, False
    batches = math.ceil(len(x) / batch_size)

    def notify(epoch: int, loss: float | None) -> None:
        model.eval()
        state = TrainState(step, epoch, loss)
        for cb in callbacks:
            cb(step, model, state)
        model.train()

    fork_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(seed)  # dropout and any randomness inside the model
        model.train()
        if callbacks:
            notify(0, None)
        bar = tqdm(total=epochs * batches, desc="training", disable=not progress, leave=False)
        try:
            for epoch in range(1, epochs + 1):
                order = torch.randperm(len(x), generator=shuffle).to(device)
                total, seen = 0.0, 0
                for i in range(0, len(x), batch_size):
                    idx = order[i : i + batch_size]
                    xb, yb = xd[idx], yd[idx]
                    loss = loss_fn(model(xb), yb)
                    if extra_loss is not None:
                        loss = loss + extra_loss(model, xb, yb)
                    if not torch.isfinite(loss):
                        raise FloatingPointError(
                            f"training diverged at step {step + 1} (loss {float(loss.detach())}); lower lr (now {lr})"
                        )
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    step += 1
                    total += float(loss.detach()) * len(idx)
                    seen += len(idx)
                    bar.update(1)
                    if callbacks and step % callback_every == 0:
                        notify(epoch, float(loss.detach()))
                model.eval()
                train_acc = accuracy(model, x, y)
                val_acc = accuracy(model, x_val, y_val) if x_val is not None else None
                model.train()
                history.append(EpochStats(epoch, total / seen, train_acc, val_acc, step))
                bar.set_postfix(loss=f"{total / seen:.4f}", acc=f"{val_acc if val_acc is not None else train_acc:.4f}")
                score = val_acc if val_acc is not None else train_acc
                if target_accuracy is not None and score >= target_accuracy:
                    reached = True
                    break
        finally:
            bar.close()
            model.eval()
    return TrainResult(model, tuple(history), step, reached)
