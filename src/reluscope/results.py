"""Results that leave Python: `to_dict()`, `save(path)`, `load(path)` and `to_frame()`.

Every result of reluscope is a frozen dataclass that inherits `Result`. Array convention (README,
"Conventions"): fields hold numpy arrays on the CPU, except activation patterns and what is exact
along a segment (`Traversal`, `PathFolding.walk`, `PackedPatterns`, `SignAgreementMask`), which
stay torch tensors on the input's device; `save` keeps that distinction (tensors load on the CPU).

File format (`save`): one `.npz` file, written atomically, never pickled. Its arrays are the
result's numeric arrays; its member `__result__` holds UTF-8 JSON describing every other field,
with arrays referred to by name. `numpy.load(path)["__result__"].tobytes().decode()` reads it
without reluscope. `load` only rebuilds classes of reluscope itself.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import inspect
import json
import math
import os
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from .io_utils import atomic_path, to_jsonable

__all__ = ["Result", "load_result", "FORMAT_VERSION", "encode_manifest", "decode_manifest"]

FORMAT_VERSION = 1
_META = "__result__"
R = TypeVar("R", bound="Result")


class Result:
    """Mixin for result dataclasses: plain dicts, files, and tables."""

    def to_dict(self) -> dict:
        """The fields as plain JSON values (arrays become nested lists, enums their values)."""
        return to_jsonable(self)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the result to `path` (a `.npz` file, suffix added when missing); returns the path."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        arrays: dict[str, np.ndarray] = {}
        meta = {"format": FORMAT_VERSION, "value": _encode(self, arrays)}
        arrays[_META] = np.frombuffer(json.dumps(meta, allow_nan=True).encode("utf-8"), dtype=np.uint8)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **arrays)
        return path

    @classmethod
    def load(cls: type[R], path: str | os.PathLike) -> R:
        """Read a result written by `save`; refuses a file holding another kind of result."""
        value = load_result(path)
        if not isinstance(value, cls):
            raise ValueError(f"path: {path} holds a {type(value).__name__}, not a {cls.__name__}")
        return value

    def to_frame(self):
        """A pandas DataFrame of the result's rows (table-shaped results only)."""
        raise TypeError(f"{type(self).__name__} is not table-shaped; use to_dict()")


def frame(rows: list[dict] | dict, what: str):
    """pandas.DataFrame from rows (pandas is optional: imported here, with the fix when missing)."""
    try:
        import pandas as pd
    except ImportError as err:
        raise ImportError(f"{what}.to_frame() needs pandas: pip install pandas") from err
    return pd.DataFrame(rows)


def load_result(path: str | os.PathLike) -> Result:
    """Read any result written by `Result.save`."""
    path = Path(path)
    if not path.is_file() and path.suffix != ".npz" and path.with_name(path.name + ".npz").is_file():
        path = path.with_name(path.name + ".npz")
    if not path.is_file():
        raise FileNotFoundError(f"path: {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (ValueError, OSError) as err:
        raise ValueError(f"path: {path} is not a reluscope result file ({err})") from err
    if _META not in arrays:
        raise ValueError(f"path: {path} is not a reluscope result file (no {_META} member)")
    meta = json.loads(arrays.pop(_META).tobytes().decode("utf-8"))
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"path: {path} has result format {meta.get('format')!r}; this reluscope reads {FORMAT_VERSION}")
    return _decode(meta["value"], arrays)


def encode_manifest(value: object, *, what: str) -> dict:
    """The JSON manifest of a value without arrays (for results stored inside another file's JSON)."""
    arrays: dict[str, np.ndarray] = {}
    encoded = _encode(value, arrays)
    if arrays:
        raise TypeError(f"{what}: cannot store arrays in a JSON manifest; use Result.save")
    return {"format": FORMAT_VERSION, "value": encoded}


def decode_manifest(meta: dict, *, what: str):
    """The value of a manifest written by `encode_manifest` (only reluscope classes are rebuilt)."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"{what}: result format {meta.get('format') if isinstance(meta, dict) else meta!r}; "
                         f"this reluscope reads {FORMAT_VERSION}")
    try:
        return _decode(meta.get("value"), {})
    except (KeyError, TypeError) as err:
        raise ValueError(f"{what}: malformed result manifest ({type(err).__name__}: {err})") from None


# ----------------------------------------------------------------------------- encoding


def _qualname(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _resolve(name: str) -> type:
    """A class of reluscope from 'module:Qualname'; anything else is refused (no code from files)."""
    module, _, qual = name.partition(":")
    if not (module == "reluscope" or module.startswith("reluscope.")):
        raise ValueError(f"result file: refusing to rebuild {name!r}, which is not a reluscope class")
    obj = importlib.import_module(module)
    for part in qual.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, type):
        raise ValueError(f"result file: {name!r} is not a class")
    return obj


def _store(arrays: dict, value: np.ndarray) -> str:
    key = f"a{len(arrays)}"
    arrays[key] = value
    return key


def _encode(value, arrays: dict):
    if isinstance(value, enum.Enum):  # before str: options are str-Enums
        return {"__enum__": _qualname(type(value)), "value": value.value}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else {"__float__": repr(f)}
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Fraction):
        return {"__fraction__": [value.numerator, value.denominator]}
    if isinstance(value, os.PathLike):
        return {"__path__": os.fspath(value)}
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu()
        dtype = str(t.dtype).removeprefix("torch.")
        if t.dtype == torch.bfloat16:
            t = t.float()
        return {"__tensor__": _store(arrays, t.numpy()), "dtype": dtype}
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError("result: cannot save an object array; convert it to a numeric array first")
        return {"__array__": _store(arrays, value)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _encode(getattr(value, f.name), arrays) for f in dataclasses.fields(value)}
        return {"__dataclass__": _qualname(type(value)), "fields": fields}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, arrays) for v in value]}
    if isinstance(value, list):
        return [_encode(v, arrays) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            return {"__items__": [[_encode(k, arrays), _encode(v, arrays)] for k, v in value.items()]}
        return {"__dict__": {k: _encode(v, arrays) for k, v in value.items()}}
    raise TypeError(
        f"result: cannot save a field of type {type(value).__name__}"
        + (" (save models with reluscope.save_model)" if isinstance(value, torch.nn.Module) else "")
    )


def _decode(value, arrays: dict):
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tensor__" in value:
        t = torch.from_numpy(arrays[value["__tensor__"]].copy())
        return t.to(getattr(torch, value["dtype"]))
    if "__array__" in value:
        return arrays[value["__array__"]]
    if "__enum__" in value:
        return _resolve(value["__enum__"])(value["value"])
    if "__float__" in value:
        return float(value["__float__"])
    if "__fraction__" in value:
        return Fraction(*value["__fraction__"])
    if "__path__" in value:
        return Path(value["__path__"])
    if "__tuple__" in value:
        return tuple(_decode(v, arrays) for v in value["__tuple__"])
    if "__items__" in value:
        return {_decode(k, arrays): _decode(v, arrays) for k, v in value["__items__"]}
    if "__dict__" in value:
        return {k: _decode(v, arrays) for k, v in value["__dict__"].items()}
    if "__dataclass__" in value:
        cls = _resolve(value["__dataclass__"])
        if not dataclasses.is_dataclass(cls):
            raise ValueError(f"result file: {value['__dataclass__']!r} is not a dataclass")
        fields = {k: _decode(v, arrays) for k, v in value["fields"].items()}
        init = {f.name for f in dataclasses.fields(cls) if f.init}
        # and keywords a hand-written __init__ still takes for an older field (Traversal's bool
        # `patterns`, stored packed since): files saved before load as they were saved
        init |= {k for k, p in inspect.signature(cls).parameters.items()
                 if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and k in fields}
        obj = cls(**{k: v for k, v in fields.items() if k in init})
        for k, v in fields.items():  # fields computed in __post_init__ (init=False) come back as saved
            if k not in init:
                object.__setattr__(obj, k, v)
        return obj
    raise ValueError(f"result file: unknown entry {sorted(value)}")
