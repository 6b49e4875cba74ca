"""Save and load models as safetensors weights plus a JSON architecture description.

`save_model(model, "run/net")` writes `run/net.safetensors` (the state dict) and `run/net.json`
(the architecture and the SHA-256 of the weights file). A plain nn.Sequential is described as its
layers; any other supported model as the graph torch.fx traces (whitelisted modules with their
hyperparameters, plus the whitelisted functions and tensor methods between them), which
`load_model` rebuilds as a torch.fx.GraphModule with the original parameter names.
`load_model` builds the architecture on the meta device and compares it with the safetensors
header before any weight is allocated. Nothing is ever unpickled: JSON and safetensors cannot run
code, functions are looked up in a fixed table, and plain PyTorch files are read with
`torch.load(..., weights_only=True)`. A user's own module class can be named instead
(`load_model(state_dict_file, model_class="pkg.module:Class")`).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
import sys
from pathlib import Path

import torch
import torch.fx
import torch.nn as nn

from ..io_utils import write_bytes_atomic, write_json_atomic, write_together
from .whitelist import WHITELIST, whitelisted

__all__ = [
    "save_model", "load_model", "load_state_dict_file", "describe_model", "build_model", "MODEL_FORMAT",
    "MAX_DEPTH", "model_paths",
]

MAX_DEPTH = 64  # nested Sequentials in a saved architecture; deeper files are refused, not recursed
_MAX_HEADER = 100 * 2**20  # bytes of safetensors JSON header

MODEL_FORMAT = "reluscope.model/1"

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
}


def model_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """(weights, architecture) files of a saved model: 'run/net', 'run/net.json' and
    'run/net.safetensors' all name the same pair, run/net.safetensors and run/net.json."""
    p = Path(path)
    if p.suffix in (".json", ".safetensors"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


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
        if key == "bias" and name in ("Linear", "Conv2d"):
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
    from .convert import to_network, trace_graph

    from .convert import FUNCTIONS

    names = {fn: name for name, fn in FUNCTIONS.items()}
    to_network(model)  # refuses, naming the node, whatever reluscope cannot analyse
    graph = trace_graph(model)
    index: dict = {}
    modules: dict[str, dict] = {}

    def arg(a):
        if isinstance(a, torch.fx.Node):
            return {"node": index[a]}
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
    from .convert import FUNCTIONS, METHODS

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


def _set_owner(node, entry: dict, at: str) -> None:
    owner = entry.get("owner")
    if owner is None:
        return
    if not isinstance(owner, str) or not (owner == "" or _PATH.match(owner)):
        raise ValueError(f"{at}.owner: expected a module path, got {owner!r:.60}")
    node.meta["nn_module_stack"] = {owner: (owner, nn.Module)}


def save_model(model: nn.Module, path: str | os.PathLike, *, metadata: dict | None = None) -> tuple[Path, Path]:
    """Write `path.safetensors` and `path.json`; returns both paths.

    Any model `to_network` accepts can be saved; `metadata` (JSON-able) is stored in the JSON
    file, e.g. the training summary.
    """
    from safetensors.torch import save

    description = describe_model(model)
    weights_path, json_path = model_paths(path)
    if description["type"] == "Graph":
        used = {f"{m}.{k}" for m in description["modules"] for k in model.get_submodule(m).state_dict()}
        state = {k: v for k, v in model.state_dict().items() if k in used}
    else:
        state = model.state_dict()
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    blob = save(tensors)
    with write_together(weights_path, json_path) as (weights_tmp, json_tmp):  # a pair, never a mix of runs
        write_bytes_atomic(weights_tmp, blob)
        write_json_atomic(json_tmp, {
            "format": MODEL_FORMAT,
            "architecture": description,
            "weights": {"file": weights_path.name, "sha256": hashlib.sha256(blob).hexdigest()},
            "metadata": metadata or {},
        })
    return weights_path, json_path


def read_model_description(path: str | os.PathLike) -> dict:
    """The parsed JSON file of a saved model, checked for format."""
    _, json_path = model_paths(path)
    if not json_path.is_file():
        raise FileNotFoundError(f"path: no architecture file {json_path}; save models with reluscope.save_model (it writes .json and .safetensors)")
    try:
        doc = json.loads(json_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{json_path}: not valid JSON ({err})") from err
    except RecursionError:
        raise ValueError(f"{json_path}: nested too deeply to be a reluscope model") from None
    if not isinstance(doc, dict) or doc.get("format") != MODEL_FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ValueError(f"{json_path}: expected format {MODEL_FORMAT!r}, got {got!r}")
    return doc


def safetensors_header(blob: bytes, where: str) -> dict[str, tuple[str, list[int]]]:
    """{name: (dtype, shape)} from a safetensors file's header, read without loading any tensor."""
    if len(blob) < 8:
        raise ValueError(f"{where}: not a valid safetensors file (shorter than its 8-byte header size)")
    n = int.from_bytes(blob[:8], "little")
    if n > len(blob) - 8 or n > _MAX_HEADER:
        raise ValueError(f"{where}: not a valid safetensors file (header of {n} bytes in a file of {len(blob)})")
    try:
        header = json.loads(blob[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ValueError(f"{where}: not a valid safetensors file (header is not JSON: {err})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{where}: not a valid safetensors file (header is not an object)")
    out = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        shape = info.get("shape") if isinstance(info, dict) else None
        if not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape):
            raise ValueError(f"{where}: not a valid safetensors file (entry {key!r} has no valid shape)")
        out[key] = (str(info.get("dtype")), shape)
    return out


def _check_shapes(expected: dict[str, list[int]], found: dict[str, list[int]], where: str) -> None:
    missing, unexpected = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{where}: weights do not fit the architecture (missing {missing[:5]}, unexpected {unexpected[:5]})")
    for key, shape in expected.items():  # the model's order, so the first mismatch named is stable
        if list(found[key]) != list(shape):
            raise ValueError(f"{where}: {key} has shape {list(found[key])}, the architecture needs {list(shape)}")


def load_model(path: str | os.PathLike, *, device: str | torch.device = "cpu", model_class: str | None = None) -> nn.Module:
    """Rebuild a model saved with `save_model`, load its weights, and return it in eval mode.

    The architecture is built on the meta device and checked against the safetensors header, so a
    file declaring a huge layer costs nothing before it is refused. With `model_class=
    "pkg.module:Class"`, `path` is a state dict (.safetensors or a plain PyTorch file read with
    weights_only=True) for `Class()`, which must be constructible without arguments.
    """
    if model_class is not None:
        return load_model_class(model_class, path, device=device)
    from safetensors import SafetensorError
    from safetensors.torch import load

    weights_path, json_path = model_paths(path)
    doc = read_model_description(path)
    with torch.device("meta"):
        model = build_model(doc.get("architecture"), where=f"{json_path.name}: architecture")
    if not weights_path.is_file():
        raise FileNotFoundError(f"path: no weights file {weights_path} next to {json_path}")
    blob = weights_path.read_bytes()
    expected = (doc.get("weights") or {}).get("sha256")
    if expected is not None and hashlib.sha256(blob).hexdigest() != expected:
        raise ValueError(
            f"{weights_path}: SHA-256 does not match the one recorded in {json_path.name}; "
            "the weights and the architecture file come from different saves"
        )
    header = safetensors_header(blob, str(weights_path))
    _check_shapes({k: list(v.shape) for k, v in model.state_dict().items()}, {k: s for k, (_, s) in header.items()}, str(weights_path))
    try:
        state = load(blob)
    except SafetensorError as err:
        raise ValueError(f"{weights_path}: not a valid safetensors file ({err})") from err
    model.load_state_dict(state, assign=True)
    return model.to(device).eval()


def load_model_class(spec: str, path: str | os.PathLike, *, device: str | torch.device = "cpu") -> nn.Module:
    """`Class()` from "pkg.module:Class" with the state dict at `path` loaded, in eval mode.

    Importing `pkg.module` runs that module's code: name only your own code. The weights are
    never unpickled (safetensors, or torch.load with weights_only=True).
    """
    module_name, _, class_name = str(spec).partition(":")
    if not module_name or not class_name or not all(p.isidentifier() for p in [*module_name.split("."), class_name]):
        raise ValueError(f"model_class: expected 'package.module:Class', got {spec!r}")
    added = os.getcwd() not in sys.path
    if added:  # the user's own package next to where they run the command
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"model_class: cannot import {module_name!r} ({err})") from err
    finally:
        if added:
            sys.path.remove(os.getcwd())
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ValueError(f"model_class: {module_name}.{class_name} is not a torch.nn.Module class")
    try:
        model = cls()
    except TypeError as err:
        raise ValueError(f"model_class: {class_name}() must be constructible without arguments ({err})") from err
    state = load_state_dict_file(path)
    _check_shapes({k: list(v.shape) for k, v in model.state_dict().items()}, {k: list(v.shape) for k, v in state.items()}, str(path))
    model.load_state_dict(state)
    return model.to(device).eval()


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict from a .safetensors file or a plain PyTorch file, never unpickling objects.

    PyTorch files go through `torch.load(weights_only=True)`, which only accepts tensors and plain
    containers and refuses anything that would run code on loading.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load

        blob = path.read_bytes()
        safetensors_header(blob, str(path))
        try:
            return load(blob)
        except SafetensorError as err:
            raise ValueError(f"{path}: not a valid safetensors file ({err})") from err
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, ... for refused files
        raise ValueError(
            f"{path}: not a plain PyTorch state dict loadable with weights_only=True "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
        ) from err
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]  # common checkpoint layout {"state_dict": ..., "epoch": ...}
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise ValueError(f"{path}: expected a dict of name -> tensor, got {type(state).__name__}")
    return state
