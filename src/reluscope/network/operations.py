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
_SPLIT = {torch.split: False, torch.chunk: True}
_IDENTITY_METHODS = {"contiguous", "clone"}

_METHOD_TABLE = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv, "neg": operator.neg}
METHODS = frozenset({
    "relu", "relu_", *_SMOOTH_METHOD, "size", "flatten", "view", "reshape", *_IDENTITY_METHODS,
    "split", "chunk", "mean", "clamp", "clip", "clamp_", "clip_",
    *_METHOD_TABLE, *(m + "_" for m in _METHOD_TABLE if m != "neg"),
})


def _function_table() -> dict[str, object]:
    """'namespace.name' -> function, for every function the converter accepts (save/load use it)."""
    fns = [
        *_RELU, *_LEAKY, *_SMOOTH_FN, *_ADD, *_SUB, *_MUL, *_DIV, *_CAT, operator.neg, torch.neg,
        *_HARDTANH, F.relu6, *_SPLIT, torch.stack, torch.mean, *_CLAMP,
        operator.getitem, F.gelu, F.max_pool2d, torch.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d, F.pad,
        torch.flatten, torch.reshape, F.dropout,
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

    def _mean(self, n, a) -> int:
        dim = a["dim"]
        dims = (dim,) if _is_int(dim) else tuple(dim) if isinstance(dim, (list, tuple)) else None
        fix = "average the other dimensions, e.g. x.mean((2, 3)) for global average pooling"
        if not dims or not all(_is_int(d) for d in dims):
            raise self._refuse(n, f"a mean needs constant integer dims (without them it averages over the batch), got {dim!r:.60}", fix)
        if 0 in dims:
            raise self._refuse(n, "a mean over dim 0 averages over the batch", fix)
        if a["dtype"] is not None or not isinstance(a["keepdim"], bool):
            raise self._refuse(n, "mean takes only dim and keepdim=True/False here", "convert the model's dtype instead of passing dtype=")
        return self._add(L.Mean(self._name(n, "mean"), dims, a["keepdim"]), (self._tensor(n, a["input"]),))

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

    def _arith(self, n, t, args, kw) -> int:
        where = self._where(n)
        if t in (operator.neg, torch.neg):
            return self._add(L.Sum(self._name(n, "neg"), (-1.0,)), (self._tensor(n, args[0]),))
        a = _bind(args, kw, [("input", ...), ("other", ...), ("alpha", 1)], where)
        x, y, alpha = a["input"], a["other"], a["alpha"]
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


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _show(item: slice) -> str:
    return L._show_index((item,))[1:-1]
