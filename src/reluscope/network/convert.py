"""Convert a user's `torch.nn.Module` into a `Network` through an explicit whitelist.

Sequential containers (nested too) are walked directly; any other container is traced with
torch.fx and must turn out to be a straight chain of whitelisted modules (plus relu/flatten calls).
Anything else raises a TypeError naming the module path, its type and the supported list, rather
than silently computing patterns of a network we do not understand.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import layers as L
from .network import Network

__all__ = ["to_network", "SUPPORTED_MODULES"]

SUPPORTED_MODULES = (
    "Linear", "Conv2d", "ReLU", "LeakyReLU", "Identity", "Flatten", "Dropout (eval)",
    "BatchNorm1d/2d (eval, folded)", "AvgPool2d", "MaxPool2d", "Sequential",
    "GELU/SiLU/Tanh/Sigmoid (patterns only)",
)
_SMOOTH = {nn.GELU: "gelu", nn.SiLU: "silu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid"}
_DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout)


def _unsupported(path: str, obj) -> TypeError:
    what = type(obj).__name__ if not isinstance(obj, str) else obj
    return TypeError(
        f"module {path or '<root>'!r} of type {what} is not supported by reluscope; "
        f"supported: {', '.join(SUPPORTED_MODULES)}"
    )


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def _leaf(path: str, m: nn.Module) -> list[L.AbstractLayer]:
    """One whitelisted leaf module -> zero or more layers (BatchNorm is folded later)."""
    if isinstance(m, nn.Linear):
        bias = m.bias if m.bias is not None else torch.zeros(m.out_features, dtype=m.weight.dtype, device=m.weight.device)
        return [L.Linear(path, m.weight.detach().clone(), bias.detach().clone())]
    if isinstance(m, nn.Conv2d):
        if m.padding_mode != "zeros":
            raise TypeError(f"module {path!r}: Conv2d padding_mode must be 'zeros', got {m.padding_mode!r}")
        bias = m.bias if m.bias is not None else torch.zeros(m.out_channels, dtype=m.weight.dtype, device=m.weight.device)
        padding = m.padding if isinstance(m.padding, str) else _pair(m.padding)
        return [L.Conv2d(path, m.weight.detach().clone(), bias.detach().clone(), _pair(m.stride), padding, _pair(m.dilation), m.groups)]
    if isinstance(m, nn.ReLU):
        return [L.ReLU(path)]
    if isinstance(m, nn.LeakyReLU):
        return [L.LeakyReLU(path, float(m.negative_slope))]
    if type(m) in _SMOOTH:
        return [L.Smooth(path, _SMOOTH[type(m)])]
    if isinstance(m, (nn.Identity, *_DROPOUT)):
        return []
    if isinstance(m, nn.Flatten):
        return [L.Flatten(path, m.start_dim, m.end_dim)]
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        if m.running_mean is None or m.running_var is None:
            raise TypeError(f"module {path!r}: BatchNorm without running statistics cannot be folded (track_running_stats=False)")
        scale = m.weight.detach() if m.affine else torch.ones_like(m.running_var)
        shift = m.bias.detach() if m.affine else torch.zeros_like(m.running_mean)
        inv = scale / torch.sqrt(m.running_var + m.eps)
        return [L.ChannelAffine(path, inv.clone(), (shift - m.running_mean * inv).clone())]
    if isinstance(m, nn.AvgPool2d):
        stride = m.stride if m.stride is not None else m.kernel_size
        return [L.AvgPool2d(path, _pair(m.kernel_size), _pair(stride), _pair(m.padding), m.ceil_mode, m.count_include_pad, m.divisor_override)]
    if isinstance(m, nn.MaxPool2d):
        if m.ceil_mode or m.return_indices:
            raise TypeError(f"module {path!r}: MaxPool2d with ceil_mode=True or return_indices=True is not supported")
        stride = m.stride if m.stride is not None else m.kernel_size
        return [L.MaxPool2d(path, _pair(m.kernel_size), _pair(stride), _pair(m.padding), _pair(m.dilation))]
    raise _unsupported(path, m)


def _walk(path: str, m: nn.Module) -> list[L.AbstractLayer]:
    if isinstance(m, nn.Sequential):
        out = []
        for name, child in m.named_children():
            out += _walk(f"{path}.{name}" if path else name, child)
        return out
    try:
        return _leaf(path, m)
    except TypeError as err:
        if type(m).forward is nn.Module.forward or not list(m.children()):
            raise
        first_error = err
    return _trace(path, m, first_error)


_RELU_CALLS = {F.relu, torch.relu}
_FLATTEN_CALLS = {torch.flatten}


def _trace(path: str, m: nn.Module, first_error: TypeError) -> list[L.AbstractLayer]:
    """A custom module: trace it with torch.fx; accept only a straight chain."""
    try:
        graph = torch.fx.symbolic_trace(m).graph
    except Exception as err:  # fx raises many kinds on dynamic control flow
        raise TypeError(
            f"module {path or '<root>'!r} of type {type(m).__name__} is not a Sequential and could "
            f"not be traced with torch.fx ({type(err).__name__}: {err}); wrap its layers in "
            f"nn.Sequential. Supported: {', '.join(SUPPORTED_MODULES)}"
        ) from err
    out: list[L.AbstractLayer] = []
    previous = None
    for node in graph.nodes:
        where = f"{path}.{node.target}" if path and node.op == "call_module" else str(node.target)
        if node.op == "placeholder":
            if previous is not None:
                raise TypeError(f"module {path or '<root>'!r}: forward must take one input tensor")
            previous = node
            continue
        if node.op == "output":
            break
        if node.args[:1] != (previous,) or any(isinstance(a, torch.fx.Node) for a in node.args[1:]) or any(
            isinstance(v, torch.fx.Node) for v in node.kwargs.values()
        ):
            raise TypeError(
                f"module {path or '<root>'!r}: its forward is not a straight chain of layers "
                f"(node {node.name!r} does not simply follow the previous one); reluscope supports "
                "chains only, e.g. nn.Sequential"
            )
        if node.op == "call_module":
            out += _walk(where, m.get_submodule(node.target))
        elif node.op == "call_function" and node.target in _RELU_CALLS:
            out.append(L.ReLU(f"{path}.{node.name}" if path else node.name))
        elif node.op == "call_function" and node.target in _FLATTEN_CALLS or (
            node.op == "call_method" and node.target in ("flatten", "view", "reshape")
        ):
            out.append(L.Flatten(f"{path}.{node.name}" if path else node.name, 1, -1))
        elif node.op == "call_method" and node.target == "relu":
            out.append(L.ReLU(f"{path}.{node.name}" if path else node.name))
        else:
            raise _unsupported(f"{path}.{node.name}" if path else node.name, f"{node.op} {getattr(node.target, '__name__', node.target)}")
        previous = node
    return out


def _fold_batchnorm(layers: list[L.AbstractLayer]) -> list[L.AbstractLayer]:
    """Fold each ChannelAffine into the Linear/Conv2d just before it (eval-mode BatchNorm)."""
    out: list[L.AbstractLayer] = []
    for layer in layers:
        prev = out[-1] if out else None
        if isinstance(layer, L.ChannelAffine) and isinstance(prev, (L.Linear, L.Conv2d)):
            shape = (-1,) + (1,) * (prev.weight.dim() - 1)
            out[-1] = type(prev)(**{
                **vars(prev),
                "weight": prev.weight * layer.scale.reshape(shape),
                "bias": prev.bias * layer.scale + layer.shift,
            })
        else:
            out.append(layer)
    return out


def _check_eval(model: nn.Module) -> None:
    for name, sub in model.named_modules():
        matters = isinstance(sub, (nn.BatchNorm1d, nn.BatchNorm2d)) or (
            isinstance(sub, _DROPOUT) and sub.p > 0
        )
        if matters and sub.training:
            raise ValueError(
                f"model: module {name or '<root>'!r} ({type(sub).__name__}) is in training mode, "
                "where its output depends on the batch or on chance; call model.eval() first"
            )


def to_network(model, *, input_shape=None) -> Network:
    """Convert `model` (a torch.nn.Module or a Network) into reluscope's `Network`.

    `input_shape` excludes the batch dimension; for MLPs it is inferred from the first Linear.
    """
    if isinstance(model, Network):
        return model if input_shape is None else model.with_input_shape(input_shape)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module or reluscope.Network, got {type(model).__name__}")
    _check_eval(model)
    with torch.no_grad():
        layers = _fold_batchnorm(_walk("", model))
    if input_shape is None:
        first = layers[0] if layers else None
        if isinstance(first, L.Linear):
            input_shape = (first.weight.shape[1],)
    shape = None if input_shape is None else tuple(int(s) for s in input_shape)
    return Network(tuple(layers), shape)

