"""Running one task: the same code in this process (workers=0) and inside a Ray worker."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import sys
import time
import traceback
from collections.abc import Mapping

from .. import __version__
from ..io_utils import to_jsonable

__all__ = ["config_key", "config_json", "task_id", "execute"]


def task_id(task) -> str:
    """`module:qualname` of the task function; part of every row's key."""
    name = getattr(task, "__qualname__", None) or getattr(task, "__name__", None) or type(task).__qualname__
    return f"{getattr(task, '__module__', None) or '?'}:{name}"


def config_json(config, name: str = "config") -> dict:
    if isinstance(config, Mapping):
        return to_jsonable(dict(config))
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return to_jsonable(config)
    raise TypeError(f"{name}: expected a dataclass instance or a dict, got {type(config).__name__}")


def config_key(task, config) -> str:
    """A stable key for (task, config): SHA-256 of their canonical JSON (sorted keys), 32 hex digits.

    Stable across processes and machines; it changes if the task is renamed or moved to another
    module, or if the config gains or loses a field, or a value changes."""
    canonical = json.dumps({"task": task_id(task), "config": config_json(config)},
                           sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def execute(task, config, cpus: float | None = None) -> dict:
    """Run `task(config)`; the row's worker-side fields. An exception becomes a failed row, never a raise."""
    if cpus is not None:  # inside a Ray worker: as many torch threads as CPUs the task was given
        threads = max(1, int(cpus))
        torch = sys.modules.get("torch")
        if torch is not None:
            torch.set_num_threads(threads)
        else:  # read by torch when the task imports it; tasks without torch do not pay its import
            os.environ["OMP_NUM_THREADS"] = str(threads)

    start, cpu = time.perf_counter(), time.process_time()
    try:
        result = to_jsonable(task(config))
        status, error, trace = "ok", None, None
    except Exception as exc:  # the sweep goes on; the row keeps what happened
        result, status = None, "failed"
        error, trace = f"{type(exc).__name__}: {exc}", traceback.format_exc()
    return {"status": status, "result": result, "error": error, "traceback": trace,
            "seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu,
            "host": socket.gethostname(), "version": __version__}
