"""Connecting to Ray: an embedded local instance, or an existing cluster."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import reluscope

__all__ = ["RAY_PIN", "import_ray", "connect", "machine_cpus"]

RAY_PIN = "ray==2.60.0"  # the version the Makefile installs and the tests run on


def import_ray():
    try:
        import ray
    except ImportError:
        raise ImportError(
            "run_sweep: Ray is not installed; install it with pip install 'reluscope[sweep]' "
            f"(or pip install '{RAY_PIN}'), or pass workers=0 to run the tasks one after another "
            "in this process") from None
    return ray


def machine_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _package_root() -> str:
    return str(Path(reluscope.__file__).resolve().parent.parent)


def connect(address: str | None, *, num_cpus: int | None = None):
    """Initialise Ray unless it already is; returns (ray, started, address joined or None).

    No address and no RAY_ADDRESS: a fresh local Ray with `num_cpus` CPUs (the machine's by default).
    Its workers get this process's reluscope on PYTHONPATH, so a source checkout runs as-is.
    A cluster's workers import reluscope from their own node: it must be installed on every node.
    """
    ray = import_ray()
    if ray.is_initialized():
        return ray, False, None
    address = address or os.environ.get("RAY_ADDRESS") or None
    quiet = dict(logging_level=logging.ERROR, log_to_driver=False)
    if address is None:
        path = os.pathsep.join(p for p in (_package_root(), os.environ.get("PYTHONPATH")) if p)
        ray.init(address="local", num_cpus=num_cpus or machine_cpus(), include_dashboard=False,
                 object_store_memory=256 * 2**20,  # rows are small; do not reserve 30 % of RAM
                 runtime_env={"env_vars": {"PYTHONPATH": path}}, **quiet)
        return ray, True, None
    ray.init(address=address, **quiet)
    return ray, True, address
