"""The JSON architecture of a saved model: what `save_model` writes next to the weights.

A plain nn.Sequential is described as its layers; any other supported model as the graph torch.fx
traces (whitelisted modules with their hyperparameters, plus the whitelisted functions and tensor
methods between them), which `build_model` rebuilds as a torch.fx.GraphModule with the original
parameter names. Nothing here runs code from the file: layer types and functions are looked up in
fixed tables and every hyperparameter is type-checked before a module is built.
"""

from __future__ import annotations

import re

import torch
import torch.fx
import torch.nn as nn

from .convert import to_network, trace_graph
from .operations import FUNCTIONS, METHODS
from .whitelist import whitelisted

__all__ = ["describe_model", "build_model", "MAX_DEPTH"]

MAX_DEPTH = 64  # nested Sequentials in a saved architecture; deeper files are refused, not recursed

# type name -> (class, {hyperparameter: accepted Python types}); read from and written to the JSON
_INT, _FLOAT, _BOOL = (int,), (int, float), (bool,)
_PAIR = (int, list)
_OPTIONAL_PAIR = (int, list, type(None))
_LAYERS: dict[str, tuple[type[nn.Module], dict[str, tuple]]] = {
    "Linear": (nn.Linear, {"in_features": _INT, "out_features": _INT, "bias": _BOOL}),
    "Conv2d": (nn.Conv2d, {
        "in_channels": _INT, "out_channels": _INT, "kernel_size": _PAIR, "stride": _PAIR,
        "padding": (int, list, str), "dilation": _PAIR, "groups": _INT, "bias": _BOOL,
        "padding_mode": (str,),
    }),
    "ReLU": (nn.ReLU, {}),
    "LeakyReLU": (nn.LeakyReLU, {"negative_slope": _FLOAT}),
    "PReLU": (nn.PReLU, {"num_parameters": _INT}),
    "ReLU6": (nn.ReLU6, {}),
    "Hardtanh": (nn.Hardtanh, {"min_val": _FLOAT, "max_val": _FLOAT}),
    "GELU": (nn.GELU, {"approximate": (str,)}),
    "SiLU": (nn.SiLU, {}),
    "Tanh": (nn.Tanh, {}),
    "Sigmoid": (nn.Sigmoid, {}),
    "Identity": (nn.Identity, {}),
    "Flatten": (nn.Flatten, {"start_dim": _INT, "end_dim": _INT}),
    "Dropout": (nn.Dropout, {"p": _FLOAT}),
    "Dropout1d": (nn.Dropout1d, {"p": _FLOAT}),
    "Dropout2d": (nn.Dropout2d, {"p": _FLOAT}),
    "AlphaDropout": (nn.AlphaDropout, {"p": _FLOAT}),
    "Unflatten": (nn.Unflatten, {"dim": _INT, "unflattened_size": (list,)}),
    "AdaptiveAvgPool2d": (nn.AdaptiveAvgPool2d, {"output_size": (int, list, type(None))}),
    "BatchNorm1d": (nn.BatchNorm1d, {"num_features": _INT, "eps": _FLOAT, "momentum": (int, float, type(None)), "affine": _BOOL, "track_running_stats": _BOOL}),
    "BatchNorm2d": (nn.BatchNorm2d, {"num_features": _INT, "eps": _FLOAT, "momentum": (int, float, type(None)), "affine": _BOOL, "track_running_stats": _BOOL}),
    "AvgPool2d": (nn.AvgPool2d, {"kernel_size": _PAIR, "stride": _OPTIONAL_PAIR, "padding": _PAIR, "ceil_mode": _BOOL, "count_include_pad": _BOOL, "divisor_override": (int, type(None))}),
    "MaxPool2d": (nn.MaxPool2d, {"kernel_size": _PAIR, "stride": _OPTIONAL_PAIR, "padding": _PAIR, "dilation": _PAIR, "ceil_mode": _BOOL}),
    "Conv1d": (nn.Conv1d, {
        "in_channels": _INT, "out_channels": _INT, "kernel_size": _PAIR, "stride": _PAIR,
        "padding": (int, list, str), "dilation": _PAIR, "groups": _INT, "bias": _BOOL, "padding_mode": (str,),
    }),
    "MaxPool1d": (nn.MaxPool1d, {"kernel_size": _PAIR, "stride": _OPTIONAL_PAIR, "padding": _PAIR, "dilation": _PAIR, "ceil_mode": _BOOL}),
    "AvgPool1d": (nn.AvgPool1d, {"kernel_size": _PAIR, "stride": _OPTIONAL_PAIR, "padding": _PAIR, "ceil_mode": _BOOL, "count_include_pad": _BOOL}),
    "AdaptiveAvgPool1d": (nn.AdaptiveAvgPool1d, {"output_size": (int, list)}),
    "Upsample": (nn.Upsample, {"size": (int, list, type(None)), "scale_factor": (int, float, list, type(None)), "mode": (str,),
                               "align_corners": (bool, type(None)), "recompute_scale_factor": (bool, type(None))}),
    "ZeroPad2d": (nn.ZeroPad2d, {"padding": _PAIR}),
    "ConstantPad2d": (nn.ConstantPad2d, {"padding": _PAIR, "value": _FLOAT}),
    "ReflectionPad2d": (nn.ReflectionPad2d, {"padding": _PAIR}),
    "ReplicationPad2d": (nn.ReplicationPad2d, {"padding": _PAIR}),
    "CircularPad2d": (nn.CircularPad2d, {"padding": _PAIR}),
}


def _jsonable(value):
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def _params(module: nn.Module, path: str) -> dict:
    cls = whitelisted(module)
    if cls is None or cls.__name__ not in _LAYERS:
        raise TypeError(
            f"model: module {path or '<root>'!r} of type {type(module).__name__} cannot be saved with its "
            f"architecture; supported: Sequential, {', '.join(_LAYERS)} and graphs of them that torch.fx "
            "can trace. For other models save the state dict with safetensors.torch.save_file and load "
            "it with load_model(path, model_class='pkg.module:Class')"
        )
    name = cls.__name__
    params = {}
    for key in _LAYERS[name][1]:
        value = getattr(module, key)
        if key == "bias" and name in ("Linear", "Conv1d", "Conv2d"):
            value = module.bias is not None
        params[key] = _jsonable(value)
    return {"type": name, **params}


def _describe(module: nn.Module, path: str) -> dict:
    if type(module) is nn.Sequential:
        return {"type": "Sequential", "layers": [_describe(m, f"{path}.{n}" if path else n) for n, m in module.named_children()]}
    return _params(module, path)


def _is_plain_sequential(module: nn.Module) -> bool:
    if type(module) is nn.Sequential:
        return all(_is_plain_sequential(m) for m in module.children())
    return whitelisted(module) is not None


def describe_model(model: nn.Module) -> dict:
    """The JSON-able architecture: nested Sequentials as such, any other model as its traced graph."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if _is_plain_sequential(model) and type(model) is nn.Sequential:
        return _describe(model, "")
    return _describe_graph(model)


def _describe_graph(model: nn.Module) -> dict:
    names = {fn: name for name, fn in FUNCTIONS.items()}
    to_network(model)  # refuses, naming the node, whatever reluscope cannot analyse
    graph = trace_graph(model)
    index: dict = {}
    modules: dict[str, dict] = {}

    def arg(a):
        if isinstance(a, torch.fx.Node):
            return {"node": index[a]}
        if isinstance(a, slice):
            return {"slice": [arg(a.start), arg(a.stop), arg(a.step)]}
        if a is Ellipsis:
            return {"ellipsis": True}
        if isinstance(a, tuple) and any(isinstance(v, slice) or v is Ellipsis for v in a):
            return {"tuple": [arg(v) for v in a]}  # an index: a list would be advanced indexing
        if isinstance(a, (list, tuple)):
            return [arg(v) for v in a]
        if a is None or isinstance(a, (bool, int, float, str)):
            return a
        raise TypeError(f"model: cannot save the argument {a!r} of the traced graph")

    nodes = []
    for n in graph.nodes:
        if n.op == "placeholder":
            entry = {"op": "input"}
        elif n.op == "output":
            entry = {"op": "output", "args": [arg(n.args[0])]}
        elif n.op == "call_module":
            modules.setdefault(n.target, _params(model.get_submodule(n.target), n.target))
            entry = {"op": "module", "target": n.target, "args": arg(n.args)}
        elif n.op == "call_function":
            name = names.get(n.target)
            if name is None:
                raise TypeError(f"model: node {n.name!r} calls {n.target!r}, which cannot be saved")
            entry = {"op": "function", "target": name, "args": arg(n.args), "kwargs": {k: arg(v) for k, v in n.kwargs.items()}}
        elif n.op == "call_method":
            entry = {"op": "method", "target": n.target, "args": arg(n.args), "kwargs": {k: arg(v) for k, v in n.kwargs.items()}}
        elif n.op == "get_attr":
            raise TypeError(
                f"model: forward reads the tensor {n.target!r} directly, which the architecture file cannot describe; "
                "save the state dict with safetensors.torch.save_file and load it with "
                "load_model(path, model_class='pkg.module:Class')"
            )
        else:
            raise TypeError(f"model: node {n.name!r} ({n.op}) cannot be saved")
        stack = n.meta.get("nn_module_stack") or {}
        if stack and n.op in ("call_function", "call_method"):
            entry["owner"] = next(reversed(stack.values()))[0]  # keeps graph node names across save/load
        index[n] = len(nodes)
        nodes.append(entry)
    return {"type": "Graph", "modules": modules, "nodes": nodes}


def _check_entry(entry, where: str) -> tuple[type[nn.Module], dict]:
    if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
        raise ValueError(f"{where}: expected an object with a string 'type', got {entry!r:.80}")
    kind = entry["type"]
    if kind not in _LAYERS:
        raise ValueError(f"{where}.type: expected one of Sequential, {', '.join(_LAYERS)}, got {kind!r}")
    cls, spec = _LAYERS[kind]
    params = {k: v for k, v in entry.items() if k != "type"}
    unknown = sorted(set(params) - set(spec))
    if unknown:
        raise ValueError(f"{where}: unknown {kind} parameters {unknown}; expected some of {sorted(spec)}")
    for key, value in params.items():
        allowed = spec[key]
        ok = isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed)
        if isinstance(value, list):
            none_ok = key == "output_size"
            ok = ok and all((isinstance(v, int) and not isinstance(v, bool)) or (none_ok and v is None) for v in value)
        if not ok:
            names = "/".join("null" if t is type(None) else t.__name__ for t in allowed)
            raise ValueError(f"{where}.{key}: expected {names}, got {value!r}")
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    return cls, params


def _depth(description) -> int:
    """Nesting depth of Sequentials, counted without recursion."""
    deepest, stack = 0, [(description, 1)]
    while stack:
        entry, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > MAX_DEPTH:
            break
        if isinstance(entry, dict) and isinstance(entry.get("layers"), list):
            stack.extend((e, d + 1) for e in entry["layers"])
    return deepest


def build_model(description: dict, *, where: str = "architecture") -> nn.Module:
    """Rebuild the (untrained) model of a description made by `describe_model`: an nn.Sequential,
    or a torch.fx.GraphModule for a graph."""
    if isinstance(description, dict) and description.get("type") == "Graph":
        return _build_graph(description, where)
    if _depth(description) > MAX_DEPTH:
        raise ValueError(f"{where}: Sequentials nested more than {MAX_DEPTH} deep; refusing to build it")
    return _build_sequential(description, where)


def _build_sequential(description, where: str) -> nn.Sequential:
    if not isinstance(description, dict) or description.get("type") != "Sequential" or not isinstance(description.get("layers"), list):
        raise ValueError(f"{where}: expected {{'type': 'Sequential', 'layers': [...]}} or {{'type': 'Graph', ...}}, got {str(description)[:80]}")
    modules = []
    for i, entry in enumerate(description["layers"]):
        if isinstance(entry, dict) and entry.get("type") == "Sequential":
            modules.append(_build_sequential(entry, f"{where}.layers[{i}]"))
            continue
        modules.append(_build_leaf(entry, f"{where}.layers[{i}]"))
    return nn.Sequential(*modules)


def _build_leaf(entry, where: str) -> nn.Module:
    cls, params = _check_entry(entry, where)
    try:
        return cls(**params)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{where}: cannot build {cls.__name__}({params}): {err}") from err


_PATH = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")


def _build_graph(description: dict, where: str) -> nn.Module:
    modules, nodes = description.get("modules"), description.get("nodes")
    if not isinstance(modules, dict) or not isinstance(nodes, list) or not nodes:
        raise ValueError(f"{where}: expected a graph {{'type': 'Graph', 'modules': {{...}}, 'nodes': [...]}}")
    root = nn.Module()
    for path, entry in modules.items():
        if not isinstance(path, str) or not _PATH.match(path):
            raise ValueError(f"{where}.modules: {path!r} is not a module path like 'layer1.0.conv1'")
        parent = root
        *parents, leaf = path.split(".")
        for part in parents:
            if not hasattr(parent, part):
                parent.add_module(part, nn.Module())
            parent = getattr(parent, part)
            if not type(parent) is nn.Module:
                raise ValueError(f"{where}.modules: {path!r} lies inside another layer")
        if hasattr(parent, leaf):
            raise ValueError(f"{where}.modules: {path!r} is given twice or contains another layer")
        parent.add_module(leaf, _build_leaf(entry, f"{where}.modules[{path!r}]"))

    graph = torch.fx.Graph()
    values: list = []

    def decode(a, at):
        if isinstance(a, dict) and set(a) == {"slice"}:
            bounds = a["slice"]
            if not (isinstance(bounds, list) and len(bounds) == 3 and all(_int_or_none(v) for v in bounds)):
                raise ValueError(f"{at}: {a!r:.60} is not a slice [start, stop, step] of integers or null")
            return slice(*bounds)
        if isinstance(a, dict) and a == {"ellipsis": True}:
            return Ellipsis
        if isinstance(a, dict) and set(a) == {"tuple"} and isinstance(a["tuple"], list):
            return tuple(decode(v, at) for v in a["tuple"])
        if isinstance(a, dict):
            k = a.get("node")
            if set(a) != {"node"} or not isinstance(k, int) or not 0 <= k < len(values) or values[k] is None:
                raise ValueError(f"{at}: {a!r} is not a reference to an earlier node")
            return values[k]
        if isinstance(a, list):
            return [decode(v, at) for v in a]
        if a is None or isinstance(a, (bool, int, float, str)):
            return a
        raise ValueError(f"{at}: unexpected argument {a!r:.60}")

    for i, e in enumerate(nodes):
        at = f"{where}.nodes[{i}]"
        if not isinstance(e, dict) or not isinstance(e.get("op"), str):
            raise ValueError(f"{at}: expected an object with a string 'op'")
        op = e["op"]
        if (op == "input") != (i == 0) or (op == "output") != (i == len(nodes) - 1):
            raise ValueError(f"{at}: the graph must start with its one input and end with its output")
        args = decode(e.get("args", []), at)
        kwargs = e.get("kwargs", {})
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise ValueError(f"{at}: args must be a list and kwargs an object")
        kwargs = {str(k): decode(v, at) for k, v in kwargs.items()}
        target = e.get("target")
        if op == "input":
            values.append(graph.placeholder("x"))
        elif op == "output":
            values.append(graph.output(args[0] if args else None))
        elif op == "module":
            if target not in modules:
                raise ValueError(f"{at}: module {target!r} is not among the graph's modules")
            values.append(graph.call_module(target, tuple(args)))
        elif op == "function":
            if target not in FUNCTIONS:
                raise ValueError(f"{at}: function {target!r} is not one reluscope supports")
            values.append(graph.call_function(FUNCTIONS[target], tuple(args), kwargs))
            _set_owner(values[-1], e, at)
        elif op == "method":
            if target not in METHODS:
                raise ValueError(f"{at}: method {target!r} is not one reluscope supports")
            values.append(graph.call_method(target, tuple(args), kwargs))
            _set_owner(values[-1], e, at)
        else:
            raise ValueError(f"{at}.op: expected input, module, function, method or output, got {op!r}")
    try:
        return torch.fx.GraphModule(root, graph, "Graph")
    except Exception as err:  # fx code generation: a malformed but well-typed graph
        raise ValueError(f"{where}: not a valid graph ({type(err).__name__}: {err})") from err


def _int_or_none(v) -> bool:
    return v is None or (isinstance(v, int) and not isinstance(v, bool))


def _set_owner(node, entry: dict, at: str) -> None:
    owner = entry.get("owner")
    if owner is None:
        return
    if not isinstance(owner, str) or not (owner == "" or _PATH.match(owner)):
        raise ValueError(f"{at}.owner: expected a module path, got {owner!r:.60}")
    node.meta["nn_module_stack"] = {owner: (owner, nn.Module)}
