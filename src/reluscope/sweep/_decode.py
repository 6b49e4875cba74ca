"""Rows back into objects: the JSON form of a task's result, rebuilt as its annotated dataclass.

The table stores results as JSON (dataclasses become dicts, tuples lists, enums their values,
NaN null). `decode(cls, data)` inverts that from the type hints, so a study reads the same objects
whether a row was computed now, on another node, or yesterday.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
import types
import typing

__all__ = ["decode", "result_type"]


def result_type(task):
    """The dataclass a task is annotated to return, or None (then rows stay JSON dicts)."""
    try:
        hint = typing.get_type_hints(task).get("return")
    except Exception:  # unresolvable annotations: fall back to the JSON form
        return None
    return hint if isinstance(hint, type) and dataclasses.is_dataclass(hint) else None


@functools.lru_cache(maxsize=None)
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def decode(tp, data):
    """`data` (JSON values) as type `tp`: dataclasses, tuples, lists, dicts, Optional, enums, scalars."""
    if tp is typing.Any or tp is object:
        return data
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        if data is None and type(None) in args:
            return None
        kinds = [a for a in args if a is not type(None)]
        for kind in kinds:
            try:
                return decode(kind, data)
            except (TypeError, ValueError):
                continue
        raise ValueError(f"cannot read {data!r} as {tp}")
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(data, dict):
            raise TypeError(f"expected an object for {tp.__name__}, got {type(data).__name__}")
        hints = _hints(tp)
        return tp(**{f.name: decode(hints[f.name], data[f.name]) for f in dataclasses.fields(tp)
                     if f.init and f.name in data})
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode(args[0], v) for v in data)
        if args:
            return tuple(decode(a, v) for a, v in zip(args, data))
        return tuple(data)
    if origin in (list, set, frozenset):
        return origin(decode(args[0], v) for v in data) if args else origin(data)
    if origin is dict:
        return {k: decode(args[1], v) for k, v in data.items()} if args else dict(data)
    if tp in (tuple, list, set, frozenset, dict):
        return tp(data)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(data)
    if tp is float:
        return math.nan if data is None else float(data)  # to_jsonable wrote NaN/inf as null
    if tp in (int, str, bool):
        if not isinstance(data, tp) or (tp is int and isinstance(data, bool)):
            raise TypeError(f"expected {tp.__name__}, got {type(data).__name__}")
        return data
    return data  # numpy arrays and other types: their JSON form (lists)
