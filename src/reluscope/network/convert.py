"""Convert a user's `torch.nn.Module` into a `Network` through an explicit whitelist.

The model is traced with torch.fx, with every whitelisted module (see `whitelist.py`) kept as a
leaf and everything else (Sequential, custom blocks, subclasses that override forward) traced
through. Each node of the traced graph must be a whitelisted module or one of the functional
operations of `operations.py` (all affine or piecewise linear: slicing, split/chunk, stack, cat
and mean become affine layers; ReLU6/Hardtanh become two ReLUs and an affine join); anything else
raises a TypeError naming the node, what is supported and what to change, rather than silently
computing patterns of a network we do not understand. In-place calls are followed as Python runs
them (`inplace.py`). Eval-mode BatchNorm is folded into the Linear/Conv2d before it when nothing
else reads that layer's output, and kept as a `ChannelAffine` node otherwise (e.g. after a
residual addition).
"""

from __future__ import annotations

import inspect
import math
import operator
import traceback
from collections.abc import Sequence

import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F

from . import layers as L
from .inplace import InPlace, InPlaceProxy, _storage_group
from .modules import append_leaf, check_eval, fold_batchnorm, maxpool_layer, pair
from .network import INPUT, Network, Node
from .operations import (
    _ADD, _BATCH, _CAT, _CLAMP, _CLAMP_ONE, _DIV, _DROPOUT_FN, _FIX, _HARDTANH, _IDENTITY_METHODS, _LEAKY, _METHOD_TABLE, _MUL, _RELU,
    _SHAPE, _SHAPE_FN, _SHAPE_METHODS, _SMOOTH_FN, _SMOOTH_METHOD, _SPLIT, _SUB, FUNCTIONS, METHODS, Operations, _bind,
    _MAX2, _Const, _is_int, _Parts,
)
from .whitelist import SUPPORTED_MODULES, WHITELIST, check_hooks, hint, whitelisted

__all__ = ["to_network", "SUPPORTED_MODULES"]


# ---------------------------------------------------------------- tracing


class _Tracer(torch.fx.Tracer):
    """Whitelisted modules (exact forward) and torch.nn's own other modules stay leaves, so the
    latter are refused by name rather than traced into their functional internals."""

    def proxy(self, node: torch.fx.Node) -> torch.fx.Proxy:
        return InPlaceProxy(node, self)

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if whitelisted(m) is not None:
            return True
        if isinstance(m, nn.Sequential) and type(m).forward is nn.Sequential.forward:
            return False
        return type(m).__module__.startswith("torch.nn") and type(m).forward is not nn.Module.forward


class _Converter(Operations, InPlace):
    def __init__(self, model: nn.Module, graph: torch.fx.Graph):
        self.model = model
        self.graph = graph
        self.nodes: list[Node] = []
        self.env: dict[torch.fx.Node, object] = {}
        self.names: set[str] = set()
        self.calls: dict[str, int] = {}
        self.total_calls: dict[str, int] = {}
        for n in graph.nodes:
            if n.op == "call_module":
                self.total_calls[n.target] = self.total_calls.get(n.target, 0) + 1

    # -- naming ----------------------------------------------------------------------------
    def _owner(self, n: torch.fx.Node) -> str:
        stack = n.meta.get("nn_module_stack") or {}
        return next(reversed(stack.values()))[0] if stack else ""

    def _name(self, n: torch.fx.Node, base: str) -> str:
        owner = self._owner(n)
        name = f"{owner}.{base}" if owner else base
        candidate, k = name, 1
        while candidate in self.names or candidate in self.total_calls:
            candidate = f"{name}_{k}"
            k += 1
        self.names.add(candidate)
        return candidate

    def _submodule(self, path: str):
        try:
            return self.model.get_submodule(path)
        except AttributeError:  # a loaded graph keeps the names of blocks it no longer has
            return None

    def _where(self, n: torch.fx.Node) -> str:
        if n.op == "call_module":
            return f"module {n.target!r}"
        target = getattr(n.target, "__name__", n.target)
        owner = self._owner(n)
        inside = f" in module {owner!r} ({type(self._submodule(owner)).__name__})" if owner else ""
        return f"node {n.name!r} ({n.op} {target}{inside})"

    def _refuse(self, n: torch.fx.Node, why: str, fix: str = _FIX) -> TypeError:
        hint = ""
        owner = self._owner(n)
        if owner:
            sub = self._submodule(owner)
            base = next((c for c in type(sub).__mro__[1:] if c in WHITELIST), None)
            if base is not None:
                hint = (
                    f"; module {owner!r} is a subclass of nn.{base.__name__} that overrides forward, "
                    f"so reluscope traced its forward instead of trusting it"
                )
        return TypeError(
            f"model: {self._where(n)} is not supported: {why}{hint}; {fix}. "
            f"Supported: {', '.join(SUPPORTED_MODULES)}"
        )

    # -- values ----------------------------------------------------------------------------
    def _add(self, layer: L.AbstractLayer, inputs: tuple[int, ...]) -> int:
        self.nodes.append(Node(layer, inputs))
        return len(self.nodes) - 1

    def _tensor(self, n, arg) -> int:
        if isinstance(arg, torch.fx.Node):
            v = self.env[arg]
            if isinstance(v, int):
                return v
            if isinstance(v, _Const):
                raise self._refuse(
                    n, f"it uses {v.source!r}, a tensor of the model's parameters or buffers, where reluscope needs a "
                    "value computed from the input",
                    "use parameters only as weights (F.linear, F.conv2d, x @ W) or in +, -, *, / with the values "
                    "(e.g. (x - self.mean) / self.std)",
                )
        if isinstance(arg, torch.fx.Node) and isinstance(self.env.get(arg), _Parts):
            raise self._refuse(
                n, f"it reads the tuple of parts of {arg.name!r}, not a tensor",
                "use the parts by index, e.g. a, b = x.chunk(2, dim=1)",
            )
        raise self._refuse(n, f"expected a tensor argument, got {arg!r}")

    def _is_tensor(self, arg) -> bool:
        return isinstance(arg, torch.fx.Node) and isinstance(self.env.get(arg), int)

    # -- the graph -------------------------------------------------------------------------
    def run(self) -> int:
        live = self._live()
        for n in self.graph.nodes:  # name the indexing, not the tensor or mask it reads first
            if n in live and n.op == "call_function" and n.target is operator.getitem and len(n.args) == 2:
                index = n.args[1] if isinstance(n.args[1], tuple) else (n.args[1],)
                if any(isinstance(i, (torch.fx.Node, list)) for i in index):
                    self._check_index(n, index)
        out = None
        handler = {"call_module": self._module, "call_function": self._function, "call_method": self._method}
        for n in self.graph.nodes:
            if n.op == "placeholder":
                if n in self.env or any(v == INPUT for v in self.env.values()):
                    if n.args:
                        raise TypeError(
                            f"model: forward argument {n.target!r} has a default reluscope cannot trace "
                            f"({n.args[0]!r:.40}); give it a plain default (None, a bool, a number or a string) "
                            "or make it an attribute set in __init__"
                        )
                    raise TypeError("model: forward must take exactly one input tensor")
                if n.args:
                    raise TypeError(f"model: forward argument {n.target!r} has a default; forward must take exactly one input tensor")
                self.env[n] = INPUT
            elif n.op == "output":
                result = n.args[0]
                if not self._is_tensor(result):
                    raise TypeError(f"model: forward must return one tensor, got {type(result).__name__} {result!r:.60}")
                out = self.env[result]
            elif n not in live:
                continue
            elif n.op == "call_function" and n.target is operator.getitem and (obj := self._object(n)) is not n:
                self.env[n] = self.env[obj]  # the same part of a split again: the same (maybe overwritten) tensor
            elif n.op == "get_attr" and n.target.startswith("_tensor_constant"):  # fx froze a tensor made in forward
                raise self._refuse(
                    n, "forward creates a tensor at each call (torch.tensor, torch.zeros, torch.randn, ...), which "
                    "torch.fx freezes at tracing", "register it once as a buffer (self.register_buffer) and use that",
                )
            elif n.op == "get_attr":  # a parameter or buffer: a constant of the network
                obj = self.model
                for part in n.target.split("."):
                    obj = getattr(obj, part)
                self.env[n] = _Const(obj.detach() if isinstance(obj, torch.Tensor) else obj, n.target)
            elif n.op in handler and (deps := n.all_input_nodes) and all(isinstance(self.env[d], _Const) for d in deps):
                self.env[n] = self._fold(n)
            elif n.op in handler:
                self.env[n] = handler[n.op](n)
                if (src := self._inplace_input(n)) is not None:
                    self._alias(n, src)
            else:
                raise self._refuse(n, f"fx op {n.op}")
        return out

    def _live(self) -> set:
        """fx nodes the output depends on (what forward computes and never uses is dropped), and
        in-place operations whose tensor, or memory shared with it, a live node reads after them
        (F.relu_(h) changes h even when its result is unused; F.relu_(h[:, :2]) changes h too, which
        `_alias` refuses). One that nothing reads after changes nothing forward returns: dropped.

        One walk back from the output: an in-place node is reached from each later reader of its
        tensor (under any name, or a view of it), as if that reader took it as an input."""
        order, watchers = self._order, {}
        for n in self.graph.nodes:
            if (src := self._inplace_input(n)) is not None:
                for name in self._names(src):
                    for v in _storage_group(name, self._submodule):
                        for u in v.users:
                            if order[u] > order[n]:
                                watchers.setdefault(u, []).append(n)
        live, stack = set(), [n for n in self.graph.nodes if n.op == "output"]
        while stack:
            n = stack.pop()
            if n not in live:
                live.add(n)
                stack.extend(n.all_input_nodes)
                stack.extend(watchers.get(n, ()))
        return live

    def _module(self, n) -> int:
        path = n.target
        m = self.model.get_submodule(path)
        if whitelisted(m) is None:
            raise TypeError(
                f"model: module {path!r} of type {type(m).__name__} is not supported by reluscope; "
                f"{hint(m)}. Supported: {', '.join(SUPPORTED_MODULES)}"
            )
        if len(n.args) != 1 or n.kwargs:
            raise self._refuse(n, "a layer must be called on one tensor")
        x = self._tensor(n, n.args[0])
        k = self.calls[path] = self.calls.get(path, 0) + 1
        return append_leaf(self.nodes, path if k == 1 else f"{path}#{k}", m, x)

    def _function(self, n) -> object:
        t, args, kw = n.target, n.args, n.kwargs
        where = self._where(n)
        if t is getattr and len(args) == 2 and args[1] == "shape" and self._is_tensor(args[0]):
            return _SHAPE
        if t is operator.getitem and isinstance(args[0], torch.fx.Node) and self.env.get(args[0]) is _SHAPE:
            if args[1] == 0:
                return _BATCH
            raise self._refuse(n, "only x.shape[0] (the batch size) may be read from a shape", "use -1 in view/reshape")
        if t is operator.getitem and isinstance(args[0], torch.fx.Node) and isinstance(self.env.get(args[0]), _Parts):
            return self._part(n, self.env[args[0]], args[1])
        if t is operator.getitem and self._is_tensor(args[0]):
            return self._index(n, args[0], args[1])
        if t in _RELU:
            return self._add(L.ReLU(self._name(n, "relu")), (self._tensor(n, args[0]),))
        if t in _LEAKY:
            a = _bind(args, kw, [("input", ...), ("negative_slope", 0.01), ("inplace", False)], where)
            return self._add(L.LeakyReLU(self._name(n, "leaky_relu"), float(a["negative_slope"])), (self._tensor(n, a["input"]),))
        if t is F.relu6:
            a = _bind(args, kw, [("input", ...), ("inplace", False)], where)
            return self._hardtanh(n, a["input"], 0.0, 6.0, "relu6")
        if t in _HARDTANH:
            a = _bind(args, kw, [("input", ...), ("min_val", -1.0), ("max_val", 1.0), ("inplace", False)], where)
            return self._hardtanh(n, a["input"], a["min_val"], a["max_val"], "hardtanh")
        if t in _CLAMP:
            a = _bind(args, kw, [("input", ...), ("min", None), ("max", None)], where)
            return self._hardtanh(n, a["input"], a["min"], a["max"], t.__name__.rstrip("_"), ("min", "max"))
        if t in _CLAMP_ONE:
            side = _CLAMP_ONE[t]
            a = _bind(args, kw, [("input", ...), (side, ...)], where)
            bounds = (a[side], None) if side == "min" else (None, a[side])
            return self._hardtanh(n, a["input"], *bounds, t.__name__.rstrip("_"), ("min", "max"))
        if t in _SHAPE_FN:
            return self._shape_op(n, _SHAPE_FN[t], args, kw)
        if t in _SMOOTH_FN:
            return self._add(L.Smooth(self._name(n, _SMOOTH_FN[t]), _SMOOTH_FN[t]), (self._tensor(n, args[0]),))
        if t is F.gelu:
            a = _bind(args, kw, [("input", ...), ("approximate", "none")], where)
            fn = "gelu_tanh" if a["approximate"] == "tanh" else "gelu"
            return self._add(L.Smooth(self._name(n, "gelu"), fn), (self._tensor(n, a["input"]),))
        if t in (F.max_pool2d, torch.max_pool2d):
            a = _bind(args, kw, [("input", ...), ("kernel_size", ...), ("stride", None), ("padding", 0), ("dilation", 1), ("ceil_mode", False), ("return_indices", False)], where)
            layer = maxpool_layer(self._name(n, "max_pool2d"), a["kernel_size"], a["stride"], a["padding"], a["dilation"], a["ceil_mode"], a["return_indices"])
            return self._add(layer, (self._tensor(n, a["input"]),))
        if t is F.avg_pool2d:
            a = _bind(args, kw, [("input", ...), ("kernel_size", ...), ("stride", None), ("padding", 0), ("ceil_mode", False), ("count_include_pad", True), ("divisor_override", None)], where)
            stride = a["stride"] if a["stride"] not in (None, [], ()) else a["kernel_size"]
            layer = L.AvgPool2d(self._name(n, "avg_pool2d"), pair(a["kernel_size"]), pair(stride), pair(a["padding"]), a["ceil_mode"], a["count_include_pad"], a["divisor_override"])
            return self._add(layer, (self._tensor(n, a["input"]),))
        if t is F.adaptive_avg_pool2d:
            a = _bind(args, kw, [("input", ...), ("output_size", ...)], where)
            size = a["output_size"]
            size = (size, size) if isinstance(size, int) or size is None else tuple(size)
            return self._add(L.AdaptiveAvgPool2d(self._name(n, "adaptive_avg_pool2d"), size), (self._tensor(n, a["input"]),))
        if t is F.interpolate:
            a = _bind(args, kw, [("input", ...), ("size", None), ("scale_factor", None), ("mode", "nearest"),
                                 ("align_corners", None), ("recompute_scale_factor", None), ("antialias", False)], where)
            if not isinstance(a["mode"], str) or any(isinstance(v, torch.fx.Node) for v in (a["size"], a["scale_factor"])):
                raise self._refuse(n, "F.interpolate needs a constant size or scale_factor and mode", "give them as numbers")
            layer = L.Interpolate(self._name(n, "interpolate"), a["size"], a["scale_factor"], a["mode"], a["align_corners"],
                                  a["recompute_scale_factor"], a["antialias"])
            return self._add(layer, (self._tensor(n, a["input"]),))
        if t is F.pad:
            a = _bind(args, kw, [("input", ...), ("pad", ...), ("mode", "constant"), ("value", None)], where)
            return self._pad(n, a)
        if t is torch.flatten:
            a = _bind(args, kw, [("input", ...), ("start_dim", 0), ("end_dim", -1)], where)
            return self._flatten(n, a)
        if t is torch.reshape:
            a = _bind(args, kw, [("input", ...), ("shape", ...)], where)
            return self._reshape(n, a["input"], a["shape"])
        if t in _DROPOUT_FN:
            a = _bind(args, kw, [("input", ...), ("p", 0.5), ("training", t is F.dropout or t is F.dropout1d or t is F.dropout2d),
                                 ("inplace", False)], where)
            if a["training"] and a["p"]:
                raise self._refuse(n, f"F.{t.__name__} is active (training=True)", "pass training=self.training and call model.eval()")
            return self._tensor(n, a["input"])
        if t in _CAT:
            a = _bind(args, kw, [("tensors", ...), ("dim", 0)], where)
            if not isinstance(a["tensors"], (list, tuple)) or not isinstance(a["dim"], int):
                raise self._refuse(n, "expected a list of tensors and an integer dim")
            if a["dim"] == 0:
                raise self._refuse(n, "concatenation along dim 0 mixes the batch", "concatenate along dim=1 (features or channels)")
            xs = tuple(self._tensor(n, x) for x in a["tensors"])
            return self._add(L.Cat(self._name(n, "cat"), a["dim"]), xs)
        if t is torch.stack:
            a = _bind(args, kw, [("tensors", ...), ("dim", 0)], where)
            if not isinstance(a["tensors"], (list, tuple)) or not _is_int(a["dim"]):
                raise self._refuse(n, "expected a list of tensors and an integer dim")
            if a["dim"] == 0:
                raise self._refuse(n, "stacking along dim 0 mixes the batch", "stack along dim=1 or later")
            xs = tuple(self._tensor(n, x) for x in a["tensors"])
            return self._add(L.Stack(self._name(n, "stack"), a["dim"]), xs)
        if t in _SPLIT:
            size = "chunks" if _SPLIT[t] else "split_size_or_sections"
            first = "input" if _SPLIT[t] else "tensor"
            a = _bind(args, kw, [(first, ...), (size, ...), ("dim", 0)], where)
            return self._split(n, a[first], a[size], a["dim"], _SPLIT[t])
        if t is torch.mean:
            a = _bind(args, kw, [("input", ...), ("dim", None), ("keepdim", False), ("dtype", None)], where)
            return self._mean(n, a)
        if t in _MAX2:
            return self._max2(n, t, args, kw)
        if t in (F.linear, F.conv2d, operator.matmul, torch.matmul):
            return self._linear_fn(n, t, args, kw)
        if t in _ADD | _SUB | _MUL | _DIV or t in (operator.neg, torch.neg):
            return self._arith(n, t, args, kw)
        raise self._refuse(n, "this function is not on the whitelist")

    def _method(self, n) -> object:
        name, args, kw = n.target, n.args, n.kwargs
        if not self._is_tensor(args[0]):
            raise self._refuse(n, "method of something that is not a tensor")
        where = self._where(n)
        x = args[0]
        if name in ("relu", "relu_"):
            return self._add(L.ReLU(self._name(n, "relu")), (self._tensor(n, x),))
        if name in _SMOOTH_METHOD:
            fn = _SMOOTH_METHOD[name]
            return self._add(L.Smooth(self._name(n, fn), fn), (self._tensor(n, x),))
        if name == "size":
            a = _bind(args, kw, [("self", ...), ("dim", None)], where)
            if a["dim"] is None:
                return _SHAPE
            if a["dim"] == 0:
                return _BATCH
            raise self._refuse(n, "only x.size(0) (the batch size) may be read", "use -1 in view/reshape, or x.flatten(1)")
        if name == "dim" or name == "shape":
            raise self._refuse(n, "reading the shape")
        if name == "flatten":
            a = _bind(args, kw, [("input", ...), ("start_dim", 0), ("end_dim", -1)], where)
            return self._flatten(n, a)
        if name in ("view", "reshape"):
            shape = args[1:]
            if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
                shape = tuple(shape[0])
            if kw:
                raise self._refuse(n, f"unexpected keyword arguments {sorted(kw)}")
            return self._reshape(n, x, shape)
        if name in _IDENTITY_METHODS:
            return self._tensor(n, x)
        if name in ("clamp", "clip", "clamp_", "clip_"):
            a = _bind(args, kw, [("self", ...), ("min", None), ("max", None)], where)
            return self._hardtanh(n, x, a["min"], a["max"], name.rstrip("_"), ("min", "max"))
        if name in ("clamp_min", "clamp_max", "clamp_min_", "clamp_max_"):
            side = name[6:9]
            a = _bind(args, kw, [("self", ...), (side, ...)], where)
            bounds = (a[side], None) if side == "min" else (None, a[side])
            return self._hardtanh(n, x, *bounds, name.rstrip("_"), ("min", "max"))
        if name in _SHAPE_METHODS:
            return self._shape_op(n, {"swapaxes": "transpose", "swapdims": "transpose"}.get(name, name), args, kw)
        if name in ("split", "chunk"):
            size = "chunks" if name == "chunk" else "split_size"
            a = _bind(args, kw, [("self", ...), (size, ...), ("dim", 0)], where)
            return self._split(n, x, a[size], a["dim"], name == "chunk")
        if name == "mean":
            a = _bind(args, kw, [("input", ...), ("dim", None), ("keepdim", False), ("dtype", None)], where)
            return self._mean(n, a)
        if name.rstrip("_") in _METHOD_TABLE and name in METHODS:
            return self._arith(n, _METHOD_TABLE[name.rstrip("_")], args, kw)
        raise self._refuse(n, "this tensor method is not on the whitelist")


def _user_frame(err: BaseException) -> str:
    """'file:line' of the innermost frame outside torch, to point at the user's forward."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if "/torch/" not in f.filename and "/reluscope/" not in f.filename]
    return f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""


def trace_graph(model: nn.Module) -> torch.fx.Graph:
    """The model's forward traced with torch.fx, whitelisted modules kept as leaves (also used by
    save_model). A GraphModule (e.g. from load_model) is already a graph: its own is used."""
    if isinstance(model, torch.fx.GraphModule):
        return model.graph
    tracer = _Tracer()
    # reluscope calls model(x): forward's other arguments take their defaults (forward(x, features=False))
    try:
        params = list(inspect.signature(model.forward).parameters.values())[1:]
    except (TypeError, ValueError):
        params = []
    concrete = {p.name: p.default for p in params  # plain values only: fx flattens containers and tensors
                if (p.default is None or type(p.default) in (bool, int, float, str))
                and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
    try:
        graph = tracer.trace(model, concrete_args=concrete or None)
    except Exception as err:  # fx raises many kinds on dynamic control flow
        raise TypeError(
            f"model: {type(model).__name__}.forward could not be traced with torch.fx{_user_frame(err)} "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); reluscope needs a "
            "forward without data-dependent control flow: write it with whitelisted modules and "
            f"operations, e.g. nn.Sequential. Supported: {', '.join(SUPPORTED_MODULES)}"
        ) from err
    if concrete:
        _drop_specialised(graph)
    return graph


def _drop_specialised(graph: torch.fx.Graph) -> None:
    """Remove the placeholders fx keeps for arguments traced at their defaults (`concrete_args`),
    with the checks it adds on them (x == default, x is None): the traced body uses the values."""
    checks = (torch._assert, torch.fx._symbolic_trace._assert_is_none, operator.eq)
    for p in [n for n in graph.nodes if n.op == "placeholder"][1:]:
        if not p.args:
            continue  # no default: refused as a second input
        for u in list(p.users):
            for v in list(u.users):
                if v.target in checks and not v.users:
                    graph.erase_node(v)
            if u.target in checks and not u.users:
                graph.erase_node(u)
        if not p.users:
            graph.erase_node(p)


def to_network(model: nn.Module | Network, *, input_shape: Sequence[int] | None = None) -> Network:
    """Convert `model` (a torch.nn.Module or a Network) into reluscope's `Network`.

    `input_shape` excludes the batch dimension (e.g. (1, 28, 28) for MNIST images, so x is
    [B, 1, 28, 28]); for MLPs it is inferred from the first Linear.
    """
    if isinstance(model, Network):
        return model if input_shape is None else model.with_input_shape(input_shape)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module or reluscope.Network, got {type(model).__name__}")
    if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        raise TypeError(
            f"model: {type(model).__name__} only spreads batches over devices; pass the network it wraps, "
            "model.module (layer names then lose the 'module.' prefix)"
        )
    if isinstance(model, torch.jit.ScriptModule):
        raise TypeError(
            f"model: a TorchScript module ({type(model).__name__}, from torch.jit.script or torch.jit.trace) has no "
            "Python forward to trace; pass the original nn.Module (load the same state dict into it)"
        )
    check_eval(model)
    check_hooks(model)
    if whitelisted(model) is not None:  # a single leaf module
        nodes = []
        out = append_leaf(nodes, "", model, INPUT)
    elif (chain := _plain_sequential(model)) is not None:  # what fx would give, without tracing
        nodes, out = fold_batchnorm(chain, len(chain) - 1)
    else:
        conv = _Converter(model, trace_graph(model))
        with torch.no_grad():
            out = conv.run()
            nodes, out = fold_batchnorm(conv.nodes, out)
    _check_finite_weights(node.layer for node in nodes)
    if out != len(nodes) - 1:  # the output is an earlier node (or the input): keep only what it needs
        raise TypeError("model: forward returns its input or an intermediate value; reluscope needs layers after it")
    if input_shape is None:
        first = nodes[0].layer if nodes else None
        if isinstance(first, L.Linear) and nodes[0].inputs == (INPUT,):
            input_shape = (first.weight.shape[1],)
    shape = None if input_shape is None else tuple(int(s) for s in input_shape)
    return Network(tuple(nodes), shape)


def _plain_sequential(model: nn.Module) -> list[Node] | None:
    """The chain of an nn.Sequential of distinct whitelisted leaf modules, built directly: tracing
    it with fx takes about a millisecond, most of a small net's `regions_2d`. None for anything
    else (nested blocks, a module used twice, subclasses), which goes through fx."""
    if type(model) is not nn.Sequential:
        return None
    children = list(model._modules.items())
    if len({id(m) for _, m in children}) != len(children) or any(whitelisted(m) is None for _, m in children):
        return None
    nodes: list[Node] = []
    for path, m in children:
        append_leaf(nodes, path, m, len(nodes) - 1)
    return nodes


def _check_finite_weights(layers) -> None:
    """NaN or inf weights make every exact method answer nonsense silently: refuse them, like NaN inputs."""
    for layer in layers:
        for name, value in vars(layer).items():
            # a sum is NaN/inf when any entry is, and allocates nothing (big layers under tight memory)
            if isinstance(value, torch.Tensor) and value.is_floating_point() and not math.isfinite(float(value.sum())):
                bad = int((~torch.isfinite(value)).sum())
                if bad == 0:  # the sum overflowed: the weights themselves are finite
                    continue
                raise ValueError(
                    f"model: layer {layer.name!r} has {bad} NaN/inf entries in its {name} (after folding "
                    "BatchNorm); check the training run or the weights file"
                )
