"""In-place operations in a traced forward: which tensor a call overwrites, and who sees it.

Python runs `nn.ReLU(inplace=True)(h)`, `F.relu_(h)`, `h.add_(y)` and `h += y` on the tensor object
itself, so every later read of it, under any name, sees the new value; torch.fx records dataflow
only (and traces `h += y` as `h = h + y`). The converter follows Python: `InPlaceProxy` records
operator.iadd & co., and after an in-place node every name of the overwritten tensor reads the new
value. Memory shared with a view that forward reads again cannot be expressed in the graph: refused.
"""

from __future__ import annotations

import operator
from functools import cached_property

import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F

from .operations import _Parts
from .whitelist import DROPOUT, whitelisted

__all__ = ["InPlace", "InPlaceProxy"]


class InPlaceProxy(torch.fx.Proxy):
    """fx's Proxy has no in-place operators, so `out += y` is traced as `out = out + y`, hiding
    that the tensor other names still refer to changed; these record operator.iadd & co."""

    def _inplace(self, op: object, other: object) -> torch.fx.Proxy:
        return self.tracer.create_proxy("call_function", op, (self, other), {})

    def __iadd__(self, other: object) -> torch.fx.Proxy:
        return self._inplace(operator.iadd, other)

    def __isub__(self, other: object) -> torch.fx.Proxy:
        return self._inplace(operator.isub, other)

    def __imul__(self, other: object) -> torch.fx.Proxy:
        return self._inplace(operator.imul, other)

    def __itruediv__(self, other: object) -> torch.fx.Proxy:
        return self._inplace(operator.itruediv, other)


_INPLACE_FUNCTIONS = {
    F.relu_, torch.relu_, F.leaky_relu_, F.hardtanh_, torch.clamp_, torch.clip_, torch.clamp_min_, torch.clamp_max_, operator.iadd, operator.isub, operator.imul, operator.itruediv,
}
_INPLACE_ARG = {F.relu: 1, F.leaky_relu: 2, F.relu6: 1, F.hardtanh: 3, F.dropout: 3, F.dropout1d: 3, F.dropout2d: 3,
                F.alpha_dropout: 3, F.feature_alpha_dropout: 3}  # position of `inplace`
_VIEW_FUNCTIONS = {operator.getitem, torch.flatten, torch.reshape, torch.split, torch.chunk, torch.squeeze, torch.unsqueeze,
                   torch.transpose, torch.swapaxes, torch.swapdims, torch.permute}
_VIEW_METHODS = {"view", "reshape", "flatten", "split", "chunk", "contiguous", "squeeze", "unsqueeze", "transpose",
                 "swapaxes", "swapdims", "permute"}


def _is_view(n: torch.fx.Node, submodule) -> bool:
    """Whether n may return memory shared with its first argument (conservatively: reshape too)."""
    if n.op == "call_function":
        return n.target in _VIEW_FUNCTIONS
    if n.op == "call_method":
        return n.target in _VIEW_METHODS
    if n.op == "call_module":  # Flatten, Unflatten, Identity and Dropout (eval) return views or x itself
        m = submodule(n.target)
        return m is None or whitelisted(m) in (nn.Flatten, nn.Unflatten, nn.Identity, *DROPOUT)
    return False


def _storage_group(node: torch.fx.Node, submodule) -> set:
    """node, the tensors it is a view of (up to the first non-view) and every view of those that may
    overlap it. The other parts of a split/chunk it belongs to are disjoint from it: left out."""
    chain = [node]
    while _is_view(chain[-1], submodule) and chain[-1].args and isinstance(chain[-1].args[0], torch.fx.Node):
        chain.append(chain[-1].args[0])
    group, stack = set(), [chain[-1]]
    while stack:
        v = stack.pop()
        if v in group:
            continue
        group.add(v)
        parts = v.op != "call_module" and v.target in (torch.split, torch.chunk, "split", "chunk")
        mine = next((u.args[1] for u in chain if parts and u in v.users), None)  # the part on node's chain
        stack.extend(
            u for u in v.users
            if _is_view(u, submodule) and u.args and u.args[0] is v and not (
                mine is not None and isinstance(u.args[1], int) and (u.args[1] < 0) == (mine < 0) and u.args[1] != mine)
        )
    return group


class InPlace:
    """The converter's handling of in-place calls; a mixin of `convert._Converter`, whose `env`,
    `graph`, `_submodule` and `_refuse` it uses."""

    def _inplace_input(self, n: torch.fx.Node) -> torch.fx.Node | None:
        """The fx node whose tensor `n` overwrites in place (nn.ReLU(inplace=True), F.relu_,
        x.add_(y), out += identity, ...), or None."""
        if n.op == "call_module":
            m = self._submodule(n.target)
            hit = m is not None and whitelisted(m) is not None and getattr(m, "inplace", False) is True
        elif n.op == "call_function":
            at = _INPLACE_ARG.get(n.target)
            hit = n.target in _INPLACE_FUNCTIONS or n.kwargs.get("inplace") is True or (
                at is not None and len(n.args) > at and n.args[at] is True)
        elif n.op == "call_method":
            hit = isinstance(n.target, str) and n.target.endswith("_") and not n.target.startswith("_")
        else:
            return None
        src = n.args[0] if hit and n.args else None
        return src if isinstance(src, torch.fx.Node) else None

    def _alias(self, n: torch.fx.Node, src: torch.fx.Node) -> None:
        """After n overwrites src's tensor, forward's later reads of src see n's value: alias them.
        A tensor sharing src's memory (a view, a split part, the base of a view) would change too,
        which the graph cannot express: refused when forward reads one after n."""
        if self.env[n] == self.env[src]:
            return  # an identity (Dropout(inplace=True) in eval mode)
        order, same = self._order, self._names(src)
        for name in same:
            for other in _storage_group(name, self._submodule) - same:
                if isinstance(self.env.get(other), _Parts) or order[other] > order[n]:
                    continue  # the tuple of parts (its getitems are the reads); views made after n read n
                reader = next((u for u in other.users if order[u] > order[n]), None)
                if reader is not None:
                    raise self._refuse(
                        n, f"it overwrites {src.name!r} in place, which shares memory with {other.name!r}, read again by "
                        f"{reader.name!r}", "use the out-of-place form (inplace=False, F.relu instead of F.relu_, x = x + y)",
                    )
        for m in same & self.env.keys():  # later names (the same split part read again) follow at their turn
            self.env[m] = self.env[n]

    def _object(self, n: torch.fx.Node) -> torch.fx.Node:
        """The node that created the tensor object n refers to: in-place operations and identities
        (Identity, Dropout in eval mode, contiguous) return their input itself, and the same part
        of a split read twice is one tensor."""
        return self._objects[n]

    def _names(self, n: torch.fx.Node) -> set:
        """Every node naming the tensor object n refers to (ident = h; h += 1; h.mul_(2).add_(1))."""
        return self._groups[self._object(n)]

    @cached_property
    def _objects(self) -> dict:
        """node -> `_object(node)` for every node, built once in graph order (each node's source
        comes before it), so the bookkeeping of in-place calls stays linear in the graph's size."""
        objects: dict = {}
        for n in self.graph.nodes:
            src = self._inplace_input(n)
            if src is None and n.args and isinstance(n.args[0], torch.fx.Node) and (
                (n.op == "call_module" and whitelisted(self._submodule(n.target)) in (nn.Identity, *DROPOUT))
                or (n.op == "call_method" and n.target == "contiguous") or (n.op == "call_function" and n.target in _INPLACE_ARG and "dropout" in n.target.__name__)
            ):
                src = n.args[0]
            if src is None and n.op == "call_function" and n.target is operator.getitem and _is_split(n.args[0]):
                src = min((u for u in n.args[0].users if u.target is operator.getitem and u.args[1] == n.args[1]),
                          key=self._order.__getitem__)
                if src is n:
                    src = None
            objects[n] = n if src is None else objects[src]
        return objects

    @cached_property
    def _groups(self) -> dict:
        """tensor object (its creating node) -> every node naming it."""
        groups: dict = {}
        for n, obj in self._objects.items():
            groups.setdefault(obj, set()).add(n)
        return groups

    @cached_property
    def _order(self) -> dict:
        return {n: i for i, n in enumerate(self.graph.nodes)}


def _is_split(v: object) -> bool:
    """Whether v is a torch.split / torch.chunk call (its value is a tuple of parts)."""
    return isinstance(v, torch.fx.Node) and (
        (v.op == "call_function" and v.target in (torch.split, torch.chunk))
        or (v.op == "call_method" and v.target in ("split", "chunk")))
