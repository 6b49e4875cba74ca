"""Whitelisted torch modules -> reluscope layers, BatchNorm folding on the graph, eval-mode check."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn

from . import layers as L
from .network import INPUT, Node
from .whitelist import DROPOUT, ONE_D, PADS, SMOOTH, SUPPORTED_MODULES, whitelisted

__all__ = ["leaf_layer", "append_leaf", "hardtanh_nodes", "maxpool_layer", "fold_batchnorm", "check_eval", "pair"]


def _unsupported(path: str, obj) -> TypeError:
    what = type(obj).__name__ if not isinstance(obj, str) else obj
    return TypeError(
        f"module {path or '<root>'!r} of type {what} is not supported by reluscope; "
        f"supported: {', '.join(SUPPORTED_MODULES)}"
    )


def pair(v: int | Sequence[int]) -> tuple[int, int]:
    """(v, v) for one int, else the two entries of v (kernel sizes, strides, ...)."""
    return (v, v) if isinstance(v, int) else tuple(v)


def leaf_layer(path: str, m: nn.Module) -> L.AbstractLayer | None:
    """One whitelisted leaf module -> a layer, or None for the identities (Identity, Dropout)."""
    cls = whitelisted(m)
    if cls is nn.Linear:
        bias = m.bias if m.bias is not None else torch.zeros(m.out_features, dtype=m.weight.dtype, device=m.weight.device)
        return L.Linear(path, m.weight.detach().clone(), bias.detach().clone())
    if cls is nn.Conv2d:
        bias = m.bias if m.bias is not None else torch.zeros(m.out_channels, dtype=m.weight.dtype, device=m.weight.device)
        # another padding_mode pads first, as nn.Conv2d does (`append_leaf` adds that Pad node)
        padding = (0, 0) if m.padding_mode != "zeros" else m.padding if isinstance(m.padding, str) else pair(m.padding)
        return L.Conv2d(path, m.weight.detach().clone(), bias.detach().clone(), pair(m.stride), padding, pair(m.dilation), m.groups)
    if cls is nn.ReLU:
        return L.ReLU(path)
    if cls is nn.LeakyReLU:
        return L.LeakyReLU(path, float(m.negative_slope))
    if cls is nn.PReLU:  # its slope, read now, is a constant of the network
        if m.num_parameters != 1:
            raise TypeError(
                f"model: module {path!r}: PReLU(num_parameters={m.num_parameters}) has one slope per channel; only "
                "a shared slope is supported: use nn.PReLU() (num_parameters=1) or nn.LeakyReLU"
            )
        return L.LeakyReLU(path, float(m.weight.detach().reshape(())))
    if cls in SMOOTH:
        fn = SMOOTH[cls]
        return L.Smooth(path, "gelu_tanh" if fn == "gelu" and m.approximate == "tanh" else fn)
    if cls is nn.Identity or cls in DROPOUT:
        return None
    if cls is nn.Flatten:
        if m.start_dim == 0:  # would merge the batch into the features
            raise TypeError(f"module {path!r}: Flatten(start_dim=0) merges the batch; use start_dim=1")
        return L.Flatten(path, m.start_dim, m.end_dim)
    if cls is nn.Unflatten:
        if not isinstance(m.dim, int) or m.dim == 0:
            raise TypeError(f"module {path!r}: Unflatten needs an integer dim other than 0 (the batch), got {m.dim!r}")
        return L.Unflatten(path, m.dim, tuple(int(s) for s in m.unflattened_size))
    if cls in (nn.BatchNorm1d, nn.BatchNorm2d):
        if m.running_mean is None or m.running_var is None:
            raise TypeError(f"module {path!r}: BatchNorm without running statistics cannot be folded (track_running_stats=False)")
        scale = m.weight.detach() if m.affine else torch.ones_like(m.running_var)
        shift = m.bias.detach() if m.affine else torch.zeros_like(m.running_mean)
        inv = scale / torch.sqrt(m.running_var + m.eps)
        return L.ChannelAffine(path, inv.clone(), (shift - m.running_mean * inv).clone())
    if cls is nn.AvgPool2d:
        stride = m.stride if m.stride is not None else m.kernel_size
        return L.AvgPool2d(path, pair(m.kernel_size), pair(stride), pair(m.padding), m.ceil_mode, m.count_include_pad, m.divisor_override)
    if cls is nn.MaxPool2d:
        return maxpool_layer(path, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode, m.return_indices)
    if cls is nn.Upsample:
        return L.Interpolate(path, m.size, m.scale_factor, m.mode, m.align_corners, m.recompute_scale_factor)
    if cls in PADS:
        return L.Pad(path, tuple(int(p) for p in m.padding), PADS[cls], float(getattr(m, "value", 0.0)))
    if cls is nn.AdaptiveAvgPool2d:
        size = m.output_size
        return L.AdaptiveAvgPool2d(path, (size, size) if isinstance(size, int) or size is None else tuple(size))
    raise _unsupported(path, m)


def one_d_layer(path: str, m: nn.Module) -> L.AbstractLayer:
    """The 2-D layer that computes a Conv1d / MaxPool1d / AvgPool1d / AdaptiveAvgPool1d on an
    input of height 1: kernel (1, k), stride (1, s), padding (0, p), dilation (1, d)."""
    one = lambda v: (1, v[0] if isinstance(v, (tuple, list)) else v)  # noqa: E731
    cls = whitelisted(m)
    if cls is nn.Conv1d:
        bias = m.bias if m.bias is not None else torch.zeros(m.out_channels, dtype=m.weight.dtype, device=m.weight.device)
        padding = (0, 0) if m.padding_mode != "zeros" else m.padding if isinstance(m.padding, str) else (0, m.padding[0])
        return L.Conv2d(path, m.weight.detach().unsqueeze(2).clone(), bias.detach().clone(), one(m.stride), padding,
                        one(m.dilation), m.groups)
    if cls is nn.MaxPool1d:
        return maxpool_layer(path, one(m.kernel_size), one(m.stride if m.stride is not None else m.kernel_size),
                             (0, one(m.padding)[1]), one(m.dilation), m.ceil_mode, m.return_indices)
    if cls is nn.AvgPool1d:
        return L.AvgPool2d(path, one(m.kernel_size), one(m.stride if m.stride is not None else m.kernel_size),
                           (0, one(m.padding)[1]), m.ceil_mode, m.count_include_pad)
    return L.AdaptiveAvgPool2d(path, one(m.output_size))


def append_leaf(nodes: list[Node], path: str, m: nn.Module, x: int) -> int:
    """Append the node(s) of one whitelisted leaf module reading value `x`; the index of its output
    (`x` itself for the identities). Hardtanh and ReLU6 take several nodes (`hardtanh_nodes`)."""
    if whitelisted(m) in (nn.Hardtanh, nn.ReLU6):
        return hardtanh_nodes(nodes, path, float(m.min_val), float(m.max_val), x)
    if whitelisted(m) in (nn.Conv1d, nn.Conv2d) and m.padding_mode != "zeros":  # torch pads with F.pad, then convolves
        pads = tuple(int(p) for p in m._reversed_padding_repeated_twice)
        nodes.append(Node(L.Pad(f"{path}#pad", pads, m.padding_mode), (x,)))
        x = len(nodes) - 1
    if whitelisted(m) in ONE_D:  # [B, C, L] as an image [B, C, 1, L] of height 1, the 2-D layer, back
        nodes.append(Node(L.To2d(f"{path}#2d"), (x,)))
        nodes.append(Node(one_d_layer(path, m), (len(nodes) - 1,)))
        nodes.append(Node(L.Squeeze(f"{path}#1d", 2), (len(nodes) - 1,)))
        return len(nodes) - 1
    layer = leaf_layer(path, m)
    if layer is None:
        return x
    nodes.append(Node(layer, (x,)))
    return len(nodes) - 1


def hardtanh_nodes(nodes: list[Node], name: str, min_val: float | None, max_val: float | None, x: int) -> int:
    """Append hardtanh(value x) = min_val + relu(x - min_val) - relu(x - max_val) and return the
    index of its output (named `name`). Every engine then handles it as two ReLUs: the pattern has
    two bits per unit, `name#lo` (x > min_val) and `name#hi` (x > max_val). ReLU6 is min 0, max 6;
    a one-sided clamp has one of them (min only: min_val + relu(x - min_val); max only:
    x - relu(x - max_val)).

    x - min_val rounds to 0 only when x == min_val, so the bits are exactly the comparisons; the
    output equals torch's clamp up to one rounding of the sum inside (min_val, max_val)."""
    given = [v for v in (min_val, max_val) if v is not None]
    if not given or not all(math.isfinite(v) for v in given) or (len(given) == 2 and min_val > max_val):
        raise TypeError(
            f"model: hardtanh/clamp {name or '<root>'!r} needs finite bounds, min_val <= max_val, got {min_val} and {max_val}"
        )

    def add(layer: L.AbstractLayer, inputs: tuple[int, ...]) -> int:
        nodes.append(Node(layer, inputs))
        return len(nodes) - 1

    ins, coeffs = ([], []) if min_val is not None else ([x], [1.0])
    for end, value, sign in (("lo", min_val, 1.0), ("hi", max_val, -1.0)):
        if value is not None:
            z = x if value == 0.0 else add(L.Sum(f"{name}#{end}_in", (1.0,), -value), (x,))
            ins.append(add(L.ReLU(f"{name}#{end}"), (z,)))
            coeffs.append(sign)
    return add(L.Sum(name, tuple(coeffs), min_val or 0.0), tuple(ins))


def maxpool_layer(
    path: str, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None, padding: int | Sequence[int],
    dilation: int | Sequence[int], ceil_mode: bool, return_indices: bool,
) -> L.MaxPool2d:
    """nn.MaxPool2d's / F.max_pool2d's arguments -> a `MaxPool2d` layer (stride None: the kernel)."""
    if ceil_mode:
        raise TypeError(
            f"model: module {path!r}: MaxPool2d(ceil_mode=True) is not supported (its last windows may hang over the "
            "input); use ceil_mode=False, the same windows when H + 2 * padding - dilation * (kernel_size - 1) - 1 "
            "is a multiple of the stride"
        )
    if return_indices:
        raise TypeError(
            f"model: module {path!r}: MaxPool2d(return_indices=True) also returns the argmax indices, which "
            "reluscope cannot follow; use return_indices=False"
        )
    stride = stride if stride not in (None, [], ()) else kernel_size
    return L.MaxPool2d(path, pair(kernel_size), pair(stride), pair(padding), pair(dilation))


# ---------------------------------------------------------------- BatchNorm folding


def fold_batchnorm(nodes: list[Node], out: int) -> tuple[list[Node], int]:
    """Fold each ChannelAffine into the Linear/Conv2d it reads when nothing else reads that layer."""
    readers: dict[int, int] = {}
    for node in nodes:
        for j in node.inputs:
            readers[j] = readers.get(j, 0) + 1
    alias: dict[int, int] = {}
    layers = [node.layer for node in nodes]
    for i, node in enumerate(nodes):
        prev = node.inputs[0]
        if (
            isinstance(node.layer, L.ChannelAffine) and prev != INPUT and prev not in alias
            and isinstance(layers[prev], (L.Linear, L.Conv2d)) and readers.get(prev) == 1 and prev != out
        ):
            conv, bn = layers[prev], node.layer
            shape = (-1,) + (1,) * (conv.weight.dim() - 1)
            layers[prev] = type(conv)(**{
                **vars(conv), "weight": conv.weight * bn.scale.reshape(shape), "bias": conv.bias * bn.scale + bn.shift,
            })
            alias[i] = prev
    new_index: dict[int, int] = {INPUT: INPUT}
    kept: list[Node] = []
    for i, node in enumerate(nodes):
        if i in alias:
            new_index[i] = new_index[alias[i]]
            continue
        new_index[i] = len(kept)
        kept.append(Node(layers[i], tuple(new_index[j] for j in node.inputs)))
    return kept, new_index[out]


def check_eval(model: nn.Module) -> None:
    for name, sub in model.named_modules():
        if isinstance(sub, (nn.BatchNorm1d, nn.BatchNorm2d)) and sub.running_mean is None:
            raise ValueError(
                f"model: module {name or '<root>'!r} ({type(sub).__name__}) has no running statistics "
                "(track_running_stats=False), so it normalises with each batch's statistics even in eval mode; "
                "use track_running_stats=True and train it, or remove it"
            )
        matters = isinstance(sub, (nn.BatchNorm1d, nn.BatchNorm2d)) or (
            isinstance(sub, DROPOUT) and sub.p > 0
        )
        if matters and sub.training:
            raise ValueError(
                f"model: module {name or '<root>'!r} ({type(sub).__name__}) is in training mode, "
                "where its output depends on the batch or on chance; call model.eval() first"
            )
