"""Save and load models as safetensors weights plus a JSON architecture description.

`save_model(model, "run/net")` writes `run/net.safetensors` (the state dict) and `run/net.json`
(the architecture, described in `architecture.py`, and the SHA-256 of the weights file).
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
import sys
from pathlib import Path

import torch
import torch.nn as nn

from ..io_utils import write_bytes_atomic, write_json_atomic, write_together
from .architecture import MAX_DEPTH, build_model, describe_model

__all__ = [
    "save_model", "load_model", "load_state_dict_file", "describe_model", "build_model", "MODEL_FORMAT",
    "MAX_DEPTH", "model_paths",
]

_MAX_HEADER = 100 * 2**20  # bytes of safetensors JSON header

MODEL_FORMAT = "reluscope.model/1"


def model_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """(weights, architecture) files of a saved model: 'run/net', 'run/net.json' and
    'run/net.safetensors' all name the same pair, run/net.safetensors and run/net.json."""
    p = Path(path)
    if p.suffix in (".json", ".safetensors"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


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
