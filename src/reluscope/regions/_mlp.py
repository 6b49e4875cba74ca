"""The plain MLP, regions_2d's common case, without the general machinery's fixed costs.

For a small net the conversion (`to_network`, then a float64 copy) and the probe pass of
`partition._sizes` took more time than the sweep itself (bench/regions.py: 2-16-16-1 maps in well
under a millisecond). Here an `nn.Sequential` of distinct `nn.Linear`, `nn.ReLU`, `nn.LeakyReLU`
modules becomes the float64 `Network` that `to_network(model).to(dtype=torch.float64)` gives
(tests/test_regions_compiled.py checks it is equal), straight from the weights, and a chain's sizes
come from the weights' shapes. Anything else returns None and takes the general path, which also
words the errors (non-finite weights, hooks).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch.nn.modules import module as _module

from ..network import LeakyReLU, Linear, Network
from ..network.network import INPUT, Node
from ..network.whitelist import check_hooks

__all__ = ["float64_mlp", "chain_sizes"]

_KINDS = (nn.Linear, nn.ReLU, nn.LeakyReLU)


def float64_mlp(model) -> Network | None:
    """`to_network(model).to(dtype=torch.float64)` for a plain MLP Sequential, else None."""
    if type(model) is not nn.Sequential:
        return None
    children = list(model._modules.items())
    if not children or any(type(m) not in _KINDS for _, m in children) or len({id(m) for _, m in children}) != len(children):
        return None
    hooked = _module._global_forward_hooks or _module._global_forward_pre_hooks or any(
        m._forward_hooks or m._forward_pre_hooks for m in (model, *model._modules.values()))
    if hooked:  # what check_hooks looks at, without its walk over named_modules
        check_hooks(model)  # raises: hooks change what the modules compute
    nodes = []
    for i, (path, m) in enumerate(children):
        if type(m) is nn.Linear:
            w = m.weight.detach()
            if w.dtype not in (torch.float32, torch.float64):
                return None  # float16/bfloat16: the general path warns about the precision
            # copy=True: a snapshot, as to_network's clone (the caller may train on)
            w = w.to(dtype=torch.float64, copy=True)
            b = m.bias.detach().to(dtype=torch.float64, copy=True) if m.bias is not None else torch.zeros(m.out_features, dtype=torch.float64, device=w.device)
            if not (math.isfinite(float(w.sum())) and math.isfinite(float(b.sum()))):
                return None  # the general path says which layer and how many entries
            layer = Linear(path, w, b)
        else:
            layer = LeakyReLU(path, float(m.negative_slope) if type(m) is nn.LeakyReLU else 0.0)
        nodes.append(Node(layer, (i - 1 if i else INPUT,)))
    first = nodes[0].layer
    return Network(tuple(nodes), (first.weight.shape[1],) if isinstance(first, Linear) else None)


def chain_sizes(net: Network):
    """`partition._sizes` of a chain of Linear layers and activations (no max pooling) from the
    weights' shapes, without its probe pass; None for other layers (their shapes need the probe)."""
    shape = tuple(net.input_shape)
    widths = []
    for node in net.nodes:
        layer = node.layer
        if type(layer) is Linear:
            shape = shape[:-1] + (layer.weight.shape[0],)
        elif type(layer) is LeakyReLU:
            widths.append(math.prod(shape))
        else:
            return None
    return widths, list(widths), sum(widths), sum(widths)
