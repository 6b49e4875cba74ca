"""Save and load models as safetensors weights plus a JSON architecture description.

`save_model(model, "run/net")` writes `run/net.safetensors` (the state dict) and `run/net.json`
(the layers of the nn.Sequential with their hyperparameters, and the SHA-256 of the weights file).
`load_model("run/net")` rebuilds the nn.Sequential from the whitelist below and loads the weights.
Nothing is ever unpickled: JSON and safetensors cannot run code, and plain PyTorch files are read
with `torch.load(..., weights_only=True)`.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
import torch.nn as nn

from ..io_utils import write_bytes_atomic, write_json_atomic, write_together

__all__ = ["save_model", "load_model", "load_state_dict_file", "describe_model", "build_model", "MODEL_FORMAT"]

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
    "BatchNorm1d": (nn.BatchNorm1d, {"num_features": _INT, "eps": _FLOAT, "momentum": (int, float, type(None)), "affine": _BOOL, "track_running_stats": _BOOL}),
    "BatchNorm2d": (nn.BatchNorm2d, {"num_features": _INT, "eps": _FLOAT, "momentum": (int, float, type(None)), "affine": _BOOL, "track_running_stats": _BOOL}),
    "AvgPool2d": (nn.AvgPool2d, {"kernel_size": _PAIR, "stride": _OPTIONAL_PAIR, "padding": _PAIR, "ceil_mode": _BOOL, "count_include_pad": _BOOL, "divisor_override": (int, type(None))}),
    "MaxPool2d": (nn.MaxPool2d, {"kernel_size": _PAIR, "stride": _OPTIONAL_PAIR, "padding": _PAIR, "dilation": _PAIR, "ceil_mode": _BOOL}),
}


def _paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """'run/net', 'run/net.json' and 'run/net.safetensors' all name the same pair of files."""
    p = Path(path)
    if p.suffix in (".json", ".safetensors"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


def _jsonable(value):
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def _describe(module: nn.Module, path: str) -> dict:
    if isinstance(module, nn.Sequential):
        return {"type": "Sequential", "layers": [_describe(m, f"{path}.{n}" if path else n) for n, m in module.named_children()]}
    entry = next(((name, spec) for name, (cls, spec) in _LAYERS.items() if type(module) is cls), None)
    if entry is None:
        raise TypeError(
            f"model: module {path or '<root>'!r} of type {type(module).__name__} cannot be saved with its "
            f"architecture; supported: Sequential, {', '.join(_LAYERS)}. For other models save the "
            "state dict with safetensors.torch.save_file and rebuild the module in your own code"
        )
    name, spec = entry
    params = {}
    for key in spec:
        value = getattr(module, key)
        if key == "bias" and name in ("Linear", "Conv2d"):
            value = module.bias is not None
        params[key] = _jsonable(value)
    return {"type": name, **params}


def describe_model(model: nn.Module) -> dict:
    """The JSON-able architecture of an nn.Sequential (nested Sequentials allowed)."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(
            f"model: expected an nn.Sequential of supported layers, got {type(model).__name__}; "
            "save a custom module's state dict with safetensors.torch.save_file instead"
        )
    return _describe(model, "")


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
            ok = ok and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        if not ok:
            names = "/".join("null" if t is type(None) else t.__name__ for t in allowed)
            raise ValueError(f"{where}.{key}: expected {names}, got {value!r}")
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    return cls, params


def build_model(description: dict, *, where: str = "architecture") -> nn.Sequential:
    """Rebuild the (untrained) nn.Sequential of a description made by `describe_model`."""
    if not isinstance(description, dict) or description.get("type") != "Sequential" or not isinstance(description.get("layers"), list):
        raise ValueError(f"{where}: expected {{'type': 'Sequential', 'layers': [...]}}, got {str(description)[:80]}")
    modules = []
    for i, entry in enumerate(description["layers"]):
        if isinstance(entry, dict) and entry.get("type") == "Sequential":
            modules.append(build_model(entry, where=f"{where}.layers[{i}]"))
            continue
        cls, params = _check_entry(entry, f"{where}.layers[{i}]")
        try:
            modules.append(cls(**params))
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(f"{where}.layers[{i}]: cannot build {cls.__name__}({params}): {err}") from err
    return nn.Sequential(*modules)


def save_model(model: nn.Module, path: str | os.PathLike, *, metadata: dict | None = None) -> tuple[Path, Path]:
    """Write `path.safetensors` and `path.json`; returns both paths.

    `metadata` (JSON-able) is stored in the JSON file, e.g. the training summary.
    """
    from safetensors.torch import save

    description = describe_model(model)
    weights_path, json_path = _paths(path)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
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
    _, json_path = _paths(path)
    if not json_path.is_file():
        raise FileNotFoundError(f"path: no architecture file {json_path}; save models with reluscope.save_model (it writes .json and .safetensors)")
    try:
        doc = json.loads(json_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{json_path}: not valid JSON ({err})") from err
    if not isinstance(doc, dict) or doc.get("format") != MODEL_FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ValueError(f"{json_path}: expected format {MODEL_FORMAT!r}, got {got!r}")
    return doc


def load_model(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> nn.Sequential:
    """Rebuild a model saved with `save_model`, load its weights, and return it in eval mode."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    weights_path, json_path = _paths(path)
    doc = read_model_description(path)
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
    try:
        state = load(blob)
    except SafetensorError as err:
        raise ValueError(f"{weights_path}: not a valid safetensors file ({err})") from err
    _load_state(model, state, str(weights_path))
    return model.to(device).eval()


def _load_state(model: nn.Module, state: dict, where: str) -> None:
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(f"{where}: weights do not fit the architecture (missing {missing[:5]}, unexpected {unexpected[:5]})")
    for key, expected in own.items():  # the model's order, so the first mismatch named is stable
        if state[key].shape != expected.shape:
            raise ValueError(f"{where}: {key} has shape {list(state[key].shape)}, the architecture needs {list(expected.shape)}")
    model.load_state_dict(state)


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict from a .safetensors file or a plain PyTorch file, never unpickling objects.

    PyTorch files go through `torch.load(weights_only=True)`, which only accepts tensors and plain
    containers and refuses anything that would run code on loading.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
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
