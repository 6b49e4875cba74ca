"""The functional operations and tensor methods the graph converter accepts, and how each call's
arguments become reluscope layers.

Every operation here is affine or piecewise linear in its tensor arguments: arithmetic by
constants, flatten/view/reshape keeping the batch, slicing with constants, split/chunk, stack,
mean over non-batch dimensions, ReLU6/Hardtanh (as two ReLUs, `modules.hardtanh_nodes`). Anything
else, or a form that could mix the batch, is refused naming the node and the fix. `FUNCTIONS` and
`METHODS` are also the tables save/load look names up in (nothing else can be loaded).
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import torch
import torch.fx
import torch.nn.functional as F

from . import layers as L
from ._shapes import _show_index
from .modules import hardtanh_nodes

__all__ = ["FUNCTIONS", "METHODS"]


class _Batch:
    """The batch size, as read by x.size(0) or x.shape[0]."""


class _Shape:
    """x.shape or x.size(): only its entry 0 (the batch) may be used."""


_BATCH, _SHAPE = _Batch(), _Shape()


@dataclass(frozen=True)
class _Parts:
    """The tuple torch.split / torch.chunk returns: only its parts, by constant index, are values."""

    x: int
    split: int | tuple[int, ...]
    dim: int
    chunks: bool

    @property
    def base(self) -> str:
        return "chunk" if self.chunks else "split"

@dataclass(frozen=True)
class _Const:
    """A value forward computes from parameters, buffers and constants alone, never from the input
    (self.mean, self.weight * self.mask, w.view(w.size(0), -1)): evaluated once, at conversion."""

    value: object
    source: str


_RANDOM = frozenset({  # names (trailing _ dropped) of functions and methods that draw random numbers
    "rand", "rand_like", "randn", "randn_like", "randint", "randint_like", "randperm", "normal", "bernoulli",
    "multinomial", "poisson", "uniform", "exponential", "cauchy", "geometric", "log_normal", "random",
    "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout", "rrelu",
})

_RELU = {F.relu, torch.relu, torch.relu_, F.relu_}
_LEAKY = {F.leaky_relu, F.leaky_relu_}
_SMOOTH_FN = {torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid", torch.tanh: "tanh", F.tanh: "tanh", F.silu: "silu"}
_SMOOTH_METHOD = {"sigmoid": "sigmoid", "tanh": "tanh", "sigmoid_": "sigmoid", "tanh_": "tanh"}
_ADD = {operator.add, operator.iadd, torch.add}
_SUB = {operator.sub, operator.isub, torch.sub}
_MUL = {operator.mul, operator.imul, torch.mul}
_DIV = {operator.truediv, operator.itruediv, torch.div, torch.true_divide}
_CAT = {torch.cat, torch.concat, torch.concatenate}
_HARDTANH = {F.hardtanh, F.hardtanh_}
_CLAMP = {torch.clamp, torch.clip, torch.clamp_, torch.clip_}
_CLAMP_ONE = {torch.clamp_min: "min", torch.clamp_min_: "min", torch.clamp_max: "max", torch.clamp_max_: "max"}
_SHAPE_FN = {torch.squeeze: "squeeze", torch.unsqueeze: "unsqueeze", torch.transpose: "transpose",
             torch.swapaxes: "transpose", torch.swapdims: "transpose", torch.permute: "permute", torch.sum: "sum"}
_SHAPE_METHODS = {"squeeze", "unsqueeze", "transpose", "swapaxes", "swapdims", "permute", "sum"}
_SPLIT = {torch.split: False, torch.chunk: True}
_DROPOUT_FN = {F.dropout, F.dropout1d, F.dropout2d, F.alpha_dropout, F.feature_alpha_dropout}
_MAX2 = {torch.maximum: True, torch.max: True, torch.fmax: True, torch.minimum: False, torch.min: False, torch.fmin: False}
_IDENTITY_METHODS = {"contiguous", "clone"}

_METHOD_TABLE = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv, "neg": operator.neg}
METHODS = frozenset({
    "relu", "relu_", *_SMOOTH_METHOD, "size", "flatten", "view", "reshape", *_IDENTITY_METHODS,
    "split", "chunk", "mean", "clamp", "clip", "clamp_", "clip_", *_SHAPE_METHODS,
    "clamp_min", "clamp_max", "clamp_min_", "clamp_max_",
    *_METHOD_TABLE, *(m + "_" for m in _METHOD_TABLE if m != "neg"),
})


def _function_table() -> dict[str, object]:
    """'namespace.name' -> function, for every function the converter accepts (save/load use it)."""
    fns = [
        *_RELU, *_LEAKY, *_SMOOTH_FN, *_ADD, *_SUB, *_MUL, *_DIV, *_CAT, operator.neg, torch.neg,
        *_HARDTANH, F.relu6, *_SPLIT, torch.stack, torch.mean, *_CLAMP, *_CLAMP_ONE, *_SHAPE_FN, *_MAX2,
        operator.getitem, F.gelu, F.max_pool2d, torch.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d, F.pad, F.interpolate,
        torch.flatten, torch.reshape, *_DROPOUT_FN,
    ]
    table = {"builtins.getattr": getattr}
    for prefix, ns in (("operator", operator), ("torch.nn.functional", F), ("torch", torch)):
        for fn in fns:
            name = getattr(fn, "__name__", "")
            if getattr(ns, name, None) is fn:
                table.setdefault(f"{prefix}.{name}", fn)
    return table


FUNCTIONS = _function_table()

_FIX = (
    "write the block with whitelisted modules or these operations, or compute the features "
    "outside the model"
)


def _bind(args, kwargs, spec: list[tuple[str, object]], where: str) -> dict:
    """Positional + keyword arguments of a call against `spec` [(name, default)], default ... = required."""
    out = {}
    for i, (name, default) in enumerate(spec):
        if i < len(args):
            out[name] = args[i]
        elif name in kwargs:
            out[name] = kwargs[name]
        elif default is ...:
            raise TypeError(f"{where}: missing argument {name!r}")
        else:
            out[name] = default
    extra = set(kwargs) - {name for name, _ in spec}
    if len(args) > len(spec) or extra:
        raise TypeError(f"{where}: unexpected arguments {sorted(extra) or args[len(spec):]}")
    return out


class Operations:
    """The converter's handlers for affine tensor operations; a mixin of `convert._Converter`,
    whose `_refuse`, `_add`, `_name`, `_tensor` and `_is_tensor` they use."""

    def _number(self, n, arg) -> float:
        if isinstance(arg, (int, float)) and not isinstance(arg, bool):
            return float(arg)
        raise self._refuse(n, f"only multiplication/division by a constant number is linear, got {arg!r}")

    def _hardtanh(self, n, x, min_val, max_val, base: str, names: tuple[str, str] = ("min_val", "max_val")) -> int:
        """hardtanh, relu6 and clamp/clip (a None bound: one-sided) as ReLUs, `hardtanh_nodes`."""
        lo = None if min_val is None else self._constant(n, min_val, names[0])
        hi = None if max_val is None else self._constant(n, max_val, names[1])
        if lo is None and hi is None:
            raise self._refuse(n, "a clamp needs a min or a max", "give min= and/or max= as constant numbers")
        if lo is not None and hi is not None and lo > hi:
            raise self._refuse(n, f"{names[0]} {lo} is above {names[1]} {hi}", f"give {names[0]} <= {names[1]}")
        return hardtanh_nodes(self.nodes, self._name(n, base), lo, hi, self._tensor(n, x))

    def _constant(self, n, value, what: str) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        raise self._refuse(n, f"{what} must be a finite constant number, got {value!r}")

    def _index(self, n, x, index) -> int:
        """x[index] with constant slices (positive steps), integers, None and one Ellipsis."""
        items = index if isinstance(index, tuple) else (index,)
        self._check_index(n, items)
        return self._add(L.Index(self._name(n, "index"), items), (self._tensor(n, x),))

    def _check_index(self, n, items: tuple) -> None:
        fix = "index with constant slices and integers that keep the batch whole, e.g. x[:, :4] or x[..., 1:]"
        for item in items:
            if isinstance(item, slice):
                bounds = (item.start, item.stop, item.step)
                if not all(b is None or _is_int(b) for b in bounds):
                    raise self._refuse(n, f"slice bounds must be constant integers, got {_show(item)}", fix)
                if item.step is not None and item.step <= 0:
                    raise self._refuse(n, f"a slice step must be a positive integer, got {item.step}", fix)
            elif not (item is None or item is Ellipsis or _is_int(item)):
                what = f"the value {item.name!r}" if isinstance(item, torch.fx.Node) else repr(item)
                raise self._refuse(n, f"advanced indexing (tensors, lists, boolean masks) is not supported, got {what:.60}", fix)
        if sum(item is Ellipsis for item in items) > 1:
            raise self._refuse(n, "an index may hold one Ellipsis (...)", fix)
        first = items[0] if items else None
        if not (first is Ellipsis or (isinstance(first, slice) and first == slice(None))):
            raise self._refuse(n, "the index reaches the batch dimension (dim 0)", fix)

    def _split(self, n, x, size, dim, chunks: bool) -> _Parts:
        what = "chunk" if chunks else "split"
        if isinstance(size, (list, tuple)) and not chunks and size and all(_is_int(s) and s >= 0 for s in size):
            size = tuple(size)
        elif not (_is_int(size) and size > 0):
            raise self._refuse(n, f"{what} sizes must be constant positive integers{'' if chunks else ' (or a list)'}, got {size!r:.60}")
        if not _is_int(dim):
            raise self._refuse(n, f"{what} needs a constant integer dim, got {dim!r:.60}")
        if dim == 0:
            raise self._refuse(n, f"{what} along dim 0 (the default) splits the batch", f"give dim=1 or later, e.g. x.{what}(2, dim=1)")
        return _Parts(self._tensor(n, x), size, dim, chunks)

    def _part(self, n, parts: _Parts, i) -> int:
        if not _is_int(i):
            raise self._refuse(n, f"the parts of a {parts.base} must be read by a constant integer index, got {i!r:.60}",
                               "unpack them (a, b = x.chunk(2, dim=1)) or index them (x.split(3, dim=1)[0])")
        layer = L.Split(self._name(n, f"{parts.base}[{i}]"), parts.split, parts.dim, i, parts.chunks)
        return self._add(layer, (parts.x,))

    def _mean(self, n, a, total: bool = False) -> int:
        dim = a["dim"]
        dims = (dim,) if _is_int(dim) else tuple(dim) if isinstance(dim, (list, tuple)) else None
        what = "sum" if total else "mean"
        fix = f"{'sum' if total else 'average'} over the other dimensions, e.g. x.{what}((2, 3)) for global pooling"
        if not dims or not all(_is_int(d) for d in dims):
            raise self._refuse(n, f"a {what} needs constant integer dims (without them it {'sums' if total else 'averages'} over the batch), got {dim!r:.60}", fix)
        if 0 in dims:
            raise self._refuse(n, f"a {what} over dim 0 {'sums' if total else 'averages'} over the batch", fix)
        if a["dtype"] is not None or not isinstance(a["keepdim"], bool):
            raise self._refuse(n, f"{what} takes only dim and keepdim=True/False here", "convert the model's dtype instead of passing dtype=")
        layer = (L.Total if total else L.Mean)(self._name(n, what), dims, a["keepdim"])
        return self._add(layer, (self._tensor(n, a["input"]),))

    def _pad(self, n, a) -> int:
        pad, mode, value = a["pad"], a["mode"], a["value"]
        fix = "give F.pad a constant tuple of ints, mode 'constant', 'reflect', 'replicate' or 'circular' and a constant value"
        if not isinstance(pad, (list, tuple)) or not pad or len(pad) % 2 or not all(_is_int(p) for p in pad):
            raise self._refuse(n, f"the padding must be an even number of constant integers, got {pad!r:.60}", fix)
        if mode not in ("constant", "reflect", "replicate", "circular"):
            raise self._refuse(n, f"padding mode {mode!r:.40}", fix)
        if mode != "constant" and value not in (None, 0, 0.0):
            raise self._refuse(n, f"a value is only used by mode 'constant', got mode {mode!r} and value {value!r:.40}", fix)
        value = 0.0 if value is None else self._constant(n, value, "the padding value")
        return self._add(L.Pad(self._name(n, "pad"), tuple(pad), mode, value), (self._tensor(n, a["input"]),))

    def _max2(self, n, t, args, kw) -> int:
        """torch.maximum(a, b) = b + relu(a - b) and torch.minimum(a, b) = a - relu(a - b) of two
        tensors (torch.max/min with two tensors too): a ReLU `name#cmp` whose bit is a > b."""
        big = _MAX2[t]
        name = t.__name__
        if len(args) != 2 or kw or not (self._is_tensor(args[0]) and self._is_tensor(args[1])):
            fix = ("compare two tensors (torch.maximum(a, b)); for max(x, 0) use F.relu(x) or x.clamp(min=0), for "
                   "global max pooling nn.MaxPool2d(kernel_size=(H, W))")
            raise self._refuse(n, f"torch.{name} of one tensor or over a dimension is not supported", fix)
        a, b = self._tensor(n, args[0]), self._tensor(n, args[1])
        base = self._name(n, name)
        diff = self._add(L.Sum(f"{base}#cmp_in", (1.0, -1.0)), (a, b))
        relu = self._add(L.ReLU(f"{base}#cmp"), (diff,))
        return self._add(L.Sum(base, (1.0, 1.0) if big else (1.0, -1.0)), (b, relu) if big else (a, relu))

    def _shape_op(self, n, op: str, args, kw) -> int:
        """squeeze / unsqueeze / transpose / permute / sum, as a function or a tensor method."""
        where = self._where(n)
        if op == "sum":
            a = _bind(args, kw, [("input", ...), ("dim", None), ("keepdim", False), ("dtype", None)], where)
            return self._mean(n, a, total=True)
        if op == "permute":
            dims = args[1:] if len(args) > 2 or (len(args) == 2 and _is_int(args[1])) else args[1] if len(args) == 2 else kw.get("dims")
            if kw.keys() - {"dims"} or not isinstance(dims, (list, tuple)) or not all(_is_int(d) for d in dims):
                raise self._refuse(n, f"permute needs constant integer dims, got {dims!r:.60}")
            if not dims or dims[0] != 0:
                raise self._refuse(n, f"permute{tuple(dims)} moves the batch dimension", "keep it first: x.permute(0, ...)")
            return self._add(L.Permute(self._name(n, "permute"), tuple(dims)), (self._tensor(n, args[0]),))
        if op == "transpose":
            a = _bind(args, kw, [("input", ...), ("dim0", ...), ("dim1", ...)], where)
            if not (_is_int(a["dim0"]) and _is_int(a["dim1"])):
                raise self._refuse(n, "transpose needs two constant integer dims")
            if 0 in (a["dim0"], a["dim1"]):
                raise self._refuse(n, "transposing dim 0 moves the batch", "swap dims 1 or later")
            return self._add(L.Transpose(self._name(n, "transpose"), a["dim0"], a["dim1"]), (self._tensor(n, a["input"]),))
        a = _bind(args, kw, [("input", ...), ("dim", None if op == "squeeze" else ...)], where)
        dim = tuple(a["dim"]) if isinstance(a["dim"], (list, tuple)) else a["dim"]
        dims = (dim,) if _is_int(dim) else dim if isinstance(dim, tuple) else ()
        if dim is not None and (not dims or not all(_is_int(d) for d in dims) or (op == "unsqueeze" and len(dims) != 1)):
            raise self._refuse(n, f"{op} needs a constant integer dim, got {dim!r:.60}")
        if 0 in dims:
            raise self._refuse(n, f"{op}(0) reaches the batch dimension", "give dim=1 or later")
        return self._add(L.Squeeze(self._name(n, op), dim, op == "unsqueeze"), (self._tensor(n, a["input"]),))

    def _flatten(self, n, a) -> int:
        if a["start_dim"] == 0:
            raise self._refuse(n, "flatten from dim 0 merges the batch", "use torch.flatten(x, 1) or x.flatten(1)")
        return self._add(L.Flatten(self._name(n, "flatten"), a["start_dim"], a["end_dim"]), (self._tensor(n, a["input"]),))

    def _reshape(self, n, x, shape) -> int:
        shape = tuple(self.env.get(s, s) if isinstance(s, torch.fx.Node) else s for s in shape)
        rest = shape[1:]
        ok = bool(shape) and all(isinstance(s, int) and not isinstance(s, bool) for s in rest)
        if ok and shape[0] is _BATCH:
            ok = sum(s == -1 for s in rest) <= 1
        elif ok and shape[0] == -1:
            ok = bool(rest) and -1 not in rest
        else:
            ok = False
        if not ok:
            raise self._refuse(
                n, f"view/reshape to {[('batch' if s is _BATCH else s) for s in shape]} may not keep the batch",
                "write x.view(x.size(0), -1), x.flatten(1) or x.reshape(-1, d1, d2, ...) with fixed sizes",
            )
        if rest == (-1,):
            return self._add(L.Flatten(self._name(n, "flatten"), 1, -1), (self._tensor(n, x),))
        return self._add(L.Reshape(self._name(n, "reshape"), rest), (self._tensor(n, x),))

    def _const(self, arg) -> _Const | None:
        v = self.env.get(arg) if isinstance(arg, torch.fx.Node) else None
        return v if isinstance(v, _Const) else None

    def _const_tensor(self, n, arg, what: str) -> torch.Tensor:
        """The constant tensor `arg` (a parameter, a buffer or a value computed from them alone)."""
        c = self._const(arg)
        if c is None or not isinstance(c.value, torch.Tensor):
            got = "a value computed from the input" if self._is_tensor(arg) else f"{arg!r:.60}"
            raise self._refuse(n, f"its {what} must be a parameter or buffer of the model (a constant tensor), got {got}",
                               "pass the layer's own weight and bias, or use nn.Linear / nn.Conv2d")
        return c.value.detach().clone()

    def _linear_fn(self, n, t, args, kw) -> int:
        """F.linear / F.conv2d / x @ W with constant weights (a layer's own forward, a subclass calling
        super().forward, a custom layer with a mask): a Linear or Conv2d layer."""
        where = self._where(n)
        if t is F.conv2d:
            a = _bind(args, kw, [("input", ...), ("weight", ...), ("bias", None), ("stride", 1), ("padding", 0),
                                 ("dilation", 1), ("groups", 1)], where)
        else:
            a = _bind(args, kw, [("input", ...), ("weight", ...), ("bias", None)], where)
        if t in (operator.matmul, torch.matmul):
            w = self._const_tensor(n, a["weight"], "right operand")
            if w.dim() != 2:
                raise self._refuse(n, f"x @ W needs a 2-D constant W, got shape {list(w.shape)}", "use nn.Linear")
            w = w.T.contiguous()
        else:
            w = self._const_tensor(n, a["weight"], "weight")
        b = torch.zeros(w.shape[0], dtype=w.dtype, device=w.device) if a["bias"] is None else self._const_tensor(n, a["bias"], "bias")
        x = self._tensor(n, a["input"])
        if t is F.conv2d:
            if w.dim() != 4 or not all(_is_int(v) or (isinstance(v, (list, tuple)) and all(_is_int(u) for u in v))
                                       for v in (a["stride"], a["dilation"])) or not _is_int(a["groups"]):
                raise self._refuse(n, "F.conv2d needs a 4-D constant weight and constant stride, dilation and groups")
            padding = a["padding"] if isinstance(a["padding"], str) else tuple(a["padding"]) if isinstance(a["padding"], (list, tuple)) else (a["padding"],) * 2
            stride, dilation = (tuple(v) if isinstance(v, (list, tuple)) else (v, v) for v in (a["stride"], a["dilation"]))
            return self._add(L.Conv2d(self._name(n, "conv2d"), w, b, stride, padding, dilation, a["groups"]), (x,))
        if w.dim() != 2:
            raise self._refuse(n, f"F.linear needs a 2-D constant weight, got shape {list(w.shape)}", "use nn.Linear")
        return self._add(L.Linear(self._name(n, "linear"), w, b), (x,))

    def _fold(self, n) -> _Const:
        """Evaluate a call whose every input is a constant (`_Const`): it is one too."""
        name = str(getattr(n.target, "__name__", n.target))
        if name.rstrip("_") in _RANDOM:
            raise self._refuse(n, f"{name} draws random numbers, which reluscope would freeze at conversion",
                               "draw them outside the model")
        if self._inplace_input(n) is not None:
            raise self._refuse(n, "it changes a parameter or buffer in place", "use the out-of-place form")
        args = torch.fx.node.map_arg(n.args, lambda a: self.env[a].value)
        kwargs = torch.fx.node.map_arg(n.kwargs, lambda a: self.env[a].value)
        with torch.no_grad():
            if n.op == "call_function":
                value = n.target(*args, **kwargs)
            elif n.op == "call_method":
                value = getattr(args[0], n.target)(*args[1:], **kwargs)
            else:
                value = self.model.get_submodule(n.target)(*args, **kwargs)
        return _Const(value, n.name)

    def _arith(self, n, t, args, kw) -> int:
        where = self._where(n)
        if t in (operator.neg, torch.neg):
            return self._add(L.Sum(self._name(n, "neg"), (-1.0,)), (self._tensor(n, args[0]),))
        a = _bind(args, kw, [("input", ...), ("other", ...), ("alpha", 1)], where)
        x, y, alpha = a["input"], a["other"], a["alpha"]
        cx, cy = self._const(x), self._const(y)
        if cx is not None and not isinstance(cx.value, torch.Tensor):  # a number computed from constants
            x, cx = cx.value, None
        if cy is not None and not isinstance(cy.value, torch.Tensor):
            y, cy = cy.value, None
        if cx is not None or cy is not None:
            return self._const_arith(n, t, x, y, cx, cy, alpha)
        if alpha != 1 and t not in (_ADD | _SUB):
            raise self._refuse(n, "unexpected alpha")
        alpha = self._number(n, alpha)
        if t in _ADD or t in _SUB:
            sign = 1.0 if t in _ADD else -1.0
            base = "add" if t in _ADD else "sub"
            if self._is_tensor(x) and self._is_tensor(y):
                return self._add(L.Sum(self._name(n, base), (1.0, sign * alpha)), (self._tensor(n, x), self._tensor(n, y)))
            if self._is_tensor(x):
                return self._add(L.Sum(self._name(n, base), (1.0,), sign * alpha * self._number(n, y)), (self._tensor(n, x),))
            if self._is_tensor(y):
                return self._add(L.Sum(self._name(n, base), (sign * alpha,), self._number(n, x)), (self._tensor(n, y),))
        if t in _MUL:
            if self._is_tensor(x) and self._is_tensor(y):
                raise self._refuse(n, "the product of two tensors is not piecewise linear", "multiply by constant numbers only")
            if self._is_tensor(x):
                return self._add(L.Sum(self._name(n, "mul"), (self._number(n, y),)), (self._tensor(n, x),))
            return self._add(L.Sum(self._name(n, "mul"), (self._number(n, x),)), (self._tensor(n, y),))
        if t in _DIV and self._is_tensor(x) and not self._is_tensor(y):
            return self._add(L.Sum(self._name(n, "div"), (1.0,), 0.0, self._number(n, y)), (self._tensor(n, x),))
        raise self._refuse(n, "arithmetic on tensors must be +, - between tensors, or * and / by constant numbers")


    def _const_arith(self, n, t, x, y, cx, cy, alpha) -> int:
        """x + c, x - c, c - x, x * c, c * x, x / c with a constant tensor c: a ConstOp layer."""
        fix = "add, subtract, multiply or divide the values by parameters or buffers (e.g. (x - self.mean) / self.std)"
        if alpha != 1:
            raise self._refuse(n, "alpha= with a constant tensor", fix)
        op = "add" if t in _ADD else "sub" if t in _SUB else "mul" if t in _MUL else "div"
        if self._is_tensor(x) and cy is not None:
            return self._add(L.ConstOp(self._name(n, op), op, cy.value.detach().clone()), (self._tensor(n, x),))
        if cx is not None and self._is_tensor(y) and op != "div":
            op = "rsub" if op == "sub" else op  # c + y = y + c and c * y = y * c exactly
            return self._add(L.ConstOp(self._name(n, op), op, cx.value.detach().clone()), (self._tensor(n, y),))
        raise self._refuse(n, "dividing by values computed from the input is not piecewise linear", fix)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _show(item: slice) -> str:
    return _show_index((item,))[1:-1]
