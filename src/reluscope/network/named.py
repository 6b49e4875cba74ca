"""Layers by name: the activations of a named layer, read from the user's own forward.

A point of the network is named after the module it belongs to:

* ``"layer3.1.relu"`` or ``"layer3.1.relu output"``: what the module returns;
* ``"fc input"``: what the module receives (e.g. the penultimate features before the last Linear);
* ``"layer1.0.relu#2"``: the second call of a module that forward runs twice;
* ``"act#lo"`` / ``"act#hi"``: the two ReLUs a ReLU6 or Hardtanh ``act`` becomes (``"act"`` is its
  output), read from the converted graph;
* a node of the traced graph for what is not a module (``"relu"``, ``"layer1.0.add"``, ...), as
  listed by `to_network(model).nodes` (functional ReLUs have no module to name).

Module points are captured with hooks as a clone, at the moment the module runs, so a later
in-place operation (``nn.ReLU(inplace=True)``) cannot change them; hooks are removed even when the
forward pass fails. A name that forward never reaches is an error naming it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn as nn

from .._checks import DEFAULT_MEMORY_BUDGET, as_float_tensor, check_int, rows_within_budget
from ..results import Result
from .convert import to_network
from .modules import check_eval
from .network import Network

if TYPE_CHECKING:
    from .._types import ArrayLike
    from collections.abc import Sequence

__all__ = ["Activations", "activations", "layer_points", "layer_features"]


@dataclass(frozen=True)
class Activations(Result):
    """The activations of named layers for a batch of inputs.

    `values[i]` [N, ...] are those of `layers[i]` (the names as asked); `points[i]` is what was
    read: "<module> input", "<module> output" (with "#k" for the k-th call) or a graph node's name.
    Iterating gives the tensors in order (``a, b = activations(model, x, layer=["a", "b"])``);
    `value` is the tensor of a single layer; `result["fc1 input"]` looks one up by name. Tensors
    stay on the input's device (the array convention for activations, README "Conventions").
    """

    values: tuple[torch.Tensor, ...]
    layers: tuple[str, ...]
    points: tuple[str, ...]

    @property
    def value(self) -> torch.Tensor:
        """The activations [N, ...] when one layer was asked for."""
        if len(self.values) != 1:
            raise ValueError(f"value: {len(self.values)} layers were asked for ({list(self.layers)}); "
                             "index by name or unpack them")
        return self.values[0]

    def __iter__(self):
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, key: int | str) -> torch.Tensor:
        if isinstance(key, str):
            for name, point, v in zip(self.layers, self.points, self.values):
                if key in (name, point):
                    return v
            raise KeyError(f"layer: {key!r} is not among {list(self.layers)}")
        return self.values[key]

    def flat(self) -> torch.Tensor:
        """[N, D]: every layer's activations flattened per input and concatenated, in order."""
        return torch.cat([v.reshape(v.shape[0], -1) for v in self.values], dim=1)


def _parse(name: object) -> tuple[str, str, int | None, str]:
    """'m#2 input' -> ('m', 'input', 2, ''); 'act#lo' -> ('act', 'output', None, '#lo') (the lower
    ReLU of a ReLU6/Hardtanh, a graph node only)."""
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"layer: expected a layer name (str) such as 'fc1 output', got {name!r}")
    base, _, where = name.strip().partition(" ")
    where = where.strip() or "output"
    if where not in ("input", "output"):
        raise ValueError(f"layer: {name!r} should be '<module>', '<module> input' or '<module> output'")
    call, part = None, ""
    if base.endswith(("#lo", "#hi")):
        base, part = base[:-3], base[-3:]
    if "#" in base:
        base, _, k = base.partition("#")
        if not k.isdigit() or int(k) < 1:
            raise ValueError(f"layer: {name!r}: the call number after '#' must be 1, 2, ...")
        call = int(k)
    return base, where, call, part


def layer_points(model: nn.Module) -> list[str]:
    """The module points of `model` that can be named: '<module> input' / '<module> output'."""
    return [f"{n} {w}" for n, _ in model.named_modules() if n for w in ("input", "output")]


def _module_capture(model, parsed, x, rows):
    """Run `model` with hooks on the named modules; {(base, where, call): [chunks]} and call counts."""
    modules = dict(model.named_modules())
    captured = {p: [] for p in parsed}
    calls: dict[str, int] = {}
    handles = []

    def make(base):
        module = modules[base]

        def pre(mod, inputs):
            calls[base] = calls.get(base, 0) + 1
            for key in parsed:
                if key[0] == base and key[1] == "input" and (key[2] or 1) == calls[base]:
                    captured[key].append(inputs[0].detach().clone())

        def post(mod, inputs, output):
            for key in parsed:
                if key[0] == base and key[1] == "output" and (key[2] or 1) == calls[base]:
                    if not isinstance(output, torch.Tensor):
                        raise TypeError(f"layer: module {base!r} returns {type(output).__name__}, not a tensor")
                    captured[key].append(output.detach().clone())

        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(post))

    for base in {p[0] for p in parsed}:
        make(base)
    counts = []
    try:
        with torch.no_grad():
            for chunk in x.split(rows):
                calls.clear()
                model(chunk)
                counts.append(dict(calls))
    finally:
        for h in handles:
            h.remove()
    return captured, counts[0] if counts else {}


def _rows(model, x, parsed, memory_budget: int) -> int:
    """Inputs per forward pass within `memory_budget` bytes. A module: the asked-for points of one
    input plus twice the widest module output (what forward holds at once besides them); a
    `Network`: every node's value of one input (`Network.values` keeps them all)."""
    with torch.no_grad():
        if isinstance(model, Network):
            net = model if model.input_shape is not None else model.with_input_shape(x.shape[1:])
            numel = sum(v.numel() for v in net.to(dtype=x.dtype, device=x.device).values(x[:1])) + x[0].numel()
        else:
            widest = [x[0].numel()]
            hooks = [m.register_forward_hook(lambda mod, i, o: widest.append(o.numel() if isinstance(o, torch.Tensor) else 0))
                     for m in model.modules()]
            try:
                model(x[:1])
            finally:
                for h in hooks:
                    h.remove()
            numel = (len(parsed) + 2) * max(widest)
    return rows_within_budget(numel * x.element_size(), memory_budget, what="input", total=x.shape[0])


def activations(
    model: nn.Module,
    x: torch.Tensor,
    *,
    layer: str | list[str] | tuple[str, ...],
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    batch_size: int | None = None,
) -> Activations:
    """The activations of one named layer, or of a list of names, for the inputs `x` [N, ...]:
    an `Activations` (values in the order given, the names, and the points read).

    `model` is a torch.nn.Module (any, even one reluscope cannot otherwise analyse, for module
    names) or a `Network` (node names). Names are described in the module docstring; a name that
    forward never reaches raises a ValueError naming it. Inputs go through forward in batches
    sized to `memory_budget` bytes (`batch_size`, a number of inputs, is deprecated).
    """
    single = isinstance(layer, str)
    names = [layer] if single else list(layer)
    if not names:
        raise ValueError("layer: expected a layer name or a non-empty list of names")
    x = as_float_tensor(x, "x")
    if x.dim() < 2:
        raise ValueError(f"x: expected a batch [N, ...] of inputs, got shape {list(x.shape)}")
    parsed = [_parse(n) for n in names]
    if isinstance(model, nn.Module):  # train-mode BatchNorm would use batch statistics (and update its own)
        check_eval(model)
    if batch_size is not None:
        warnings.warn("activations(batch_size=) is deprecated; pass memory_budget= (bytes)", DeprecationWarning, stacklevel=2)
        rows = check_int(batch_size, "batch_size")
    elif x.shape[0] and isinstance(model, (nn.Module, Network)):
        rows = _rows(model, x, parsed, memory_budget)
    else:
        rows = max(1, x.shape[0])
    if isinstance(model, Network):
        values, points = _from_network(model, names, parsed, x, rows)
        return Activations(values, tuple(names), points)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module or reluscope.Network, got {type(model).__name__}")
    modules = dict(model.named_modules())
    by_module = [p for p in parsed if p[0] in modules and p[0] and not p[3]]
    results: dict[int, torch.Tensor] = {}
    points: dict[int, str] = {}
    if by_module:
        captured, calls = _module_capture(model, by_module, x, rows)
        for i, (name, p) in enumerate(zip(names, parsed)):
            if p not in captured:
                continue
            n_calls = calls.get(p[0], 0)
            if n_calls == 0:
                raise ValueError(
                    f"layer: forward never reaches module {p[0]!r} (it is a submodule, but forward "
                    f"does not call it); choose one of the modules forward runs"
                )
            if p[2] is None and n_calls > 1:
                options = ", ".join(repr(f"{p[0]}#{k}") for k in range(1, n_calls + 1))
                raise ValueError(f"layer: module {p[0]!r} runs {n_calls} times in forward; name one call: {options}")
            if p[2] is not None and p[2] > n_calls:
                raise ValueError(f"layer: {name!r}: module {p[0]!r} runs {n_calls} time(s) in forward")
            results[i] = torch.cat(captured[p])
            points[i] = f"{p[0]}{'' if p[2] is None else f'#{p[2]}'} {p[1]}"
    rest = [i for i in range(len(names)) if i not in results]
    if rest:
        try:
            net = to_network(model)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"layer: {names[rest[0]]!r} is not a submodule of the model, and its graph cannot be "
                f"traced to look for it ({err}); name one of: {layer_points(model)[:20]}"
            ) from err
        values, found = _from_network(net, [names[i] for i in rest], [parsed[i] for i in rest], x, rows, modules)
        results.update(zip(rest, values))
        points.update(zip(rest, found))
    n = len(names)
    return Activations(tuple(results[i] for i in range(n)), tuple(names), tuple(points[i] for i in range(n)))


def _from_network(net, names, parsed, x, rows, modules=None):
    index = {node.name: i for i, node in enumerate(net.nodes)}
    wanted, found = [], []
    for name, (base, where, call, part) in zip(names, parsed):
        key = (base if call in (None, 1) else f"{base}#{call}") + part
        if key not in index:
            known = [n.name for n in net.nodes]
            points = [] if modules is None else [p for p in layer_points_from(modules)][:20]
            raise ValueError(
                f"layer: {name!r} is not a layer that forward reaches; graph nodes: {known[:40]}"
                + (f"; module points: {points}" if points else "")
            )
        node = index[key]
        if where == "input" and len(net.nodes[node].inputs) != 1:
            raise ValueError(f"layer: {name!r}: node {key!r} has {len(net.nodes[node].inputs)} inputs; name one of them")
        wanted.append((node, where))
        found.append(f"{key} input" if where == "input" else key)
    if net.input_shape is None:
        net = net.with_input_shape(x.shape[1:])
    net = net.to(dtype=x.dtype, device=x.device)
    chunks: list[list[torch.Tensor]] = [[] for _ in wanted]
    with torch.no_grad():
        for part in x.split(rows):
            values = net.values(part)
            for k, (node, where) in enumerate(wanted):
                j = net.nodes[node].inputs[0] if where == "input" else node
                chunks[k].append(part if j == -1 else values[j])
    return tuple(torch.cat(c) for c in chunks), tuple(found)


def layer_points_from(modules: dict) -> list[str]:
    return [f"{n} {w}" for n in modules if n for w in ("input", "output")]


def layer_features(model: nn.Module, x: ArrayLike, layer: str | Sequence[str]) -> torch.Tensor:
    """float64 [N, D]: the activations of `layer` (a name, or a list whose activations are
    concatenated), flattened per input: the points the hull functions work on."""
    if model is None or layer is None:
        raise ValueError("layer: give both model= and layer= (or neither, passing activations directly)")
    x = torch.as_tensor(x)
    param = next(model.parameters(), None) if isinstance(model, nn.Module) else None
    if param is not None and x.is_floating_point():
        x = x.to(param.dtype)  # hull points are often float64 numpy arrays; the model decides
    return activations(model, x, layer=layer).flat().to(torch.float64)
