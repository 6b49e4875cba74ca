"""Sweeps: many pure, seeded tasks on Ray (all cores, fractions of GPUs, or a cluster), resumable.

A sweep is a task function `config -> result` and a list of configs (frozen dataclasses or dicts).
`run_sweep` runs the tasks as Ray tasks and appends one row per finished task to `out/sweep.jsonl`
(see `_table` for why JSON-lines). Rerunning the same sweep skips the configs whose row is there,
so a killed sweep loses only the tasks that were running. `import reluscope.sweep` does not import
Ray; running a sweep does (the optional extra `reluscope[sweep]`), unless `workers=0`.

A row: key, task, status ("ok" or "failed"), config, result, error, traceback, seconds (wall),
cpu_seconds (CPU time of the worker process during the task, all its threads), host, version (of
reluscope on the worker), finished (UTC).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import math
import os
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ._decode import decode, result_type
from ._ray import connect, machine_cpus
from ._table import TABLE_NAME, SweepLockedError, SweepTable, read_rows
from ._task import config_json, config_key, execute, task_id

__all__ = ["run_sweep", "SweepSummary", "TaskResources", "read_sweep", "config_key", "SweepLockedError",
           "decode", "result_type", "ray_session"]


@dataclass(frozen=True)
class TaskResources:
    """What one task asks of Ray. `gpus` may be a fraction: 0.25 lets four tasks share one card.

    `cpus` also sets the task's torch threads. `memory` (bytes) is a scheduling hint for Ray, not a cap.
    """

    cpus: float = 1.0
    gpus: float = 0.0
    memory: int | None = None

    def __post_init__(self):
        for name in ("cpus", "gpus"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"resources.{name}: expected a finite number >= 0, got {v!r}")
        if self.cpus == 0 and self.gpus == 0:
            raise ValueError("resources: a task must ask for some CPUs or GPUs; got cpus=0 and gpus=0")
        if self.gpus > 1 and self.gpus != int(self.gpus):
            raise ValueError(f"resources.gpus: a fraction must be below 1 (Ray's rule), got {self.gpus!r}")
        if self.memory is not None and (isinstance(self.memory, bool) or not isinstance(self.memory, int)
                                        or self.memory < 1):
            raise ValueError(f"resources.memory: expected a number of bytes >= 1 or None, got {self.memory!r}")


@dataclass(frozen=True)
class SweepSummary:
    """What a sweep did. `ok` and `failed` count the configs' rows in the table after this run
    (reused rows included); `ran` were run now, `reused` were already there."""

    table: Path
    task: str
    total: int
    ran: int
    reused: int
    ok: int
    failed: int
    seconds: float
    workers: int  # tasks in flight at most; 0: run in this process
    address: str | None  # the cluster joined; None for the embedded local Ray or in-process
    keys: tuple[str, ...] = field(repr=False, default=())

    def rows(self, *, status: str | None = None) -> list[dict]:
        """The table's rows for this sweep's configs, in the order of the configs."""
        if status not in (None, "ok", "failed"):
            raise ValueError(f"status: expected None, 'ok' or 'failed', got {status!r}")
        by_key = read_rows(self.table)
        rows = [by_key[k] for k in self.keys if k in by_key]
        return [r for r in rows if status is None or r["status"] == status]

    @property
    def cpu_seconds(self) -> float:
        """CPU seconds the tasks of this sweep's rows took (reused rows included; rows written
        before this field existed count 0)."""
        return float(sum(r.get("cpu_seconds") or 0.0 for r in self.rows()))

    def check(self, what: str = "tasks") -> "SweepSummary":
        """Raise `RuntimeError` naming the first failure if any task failed; else return self."""
        if self.failed:
            first = self.rows(status="failed")[0]
            raise RuntimeError(f"{what}: {self.failed} of {self.total} tasks failed, the first with {first['error']} "
                               f"(tracebacks in {self.table}; a rerun into the same folder redoes only the failed ones)")
        return self

    def results(self, as_type: type | None = None) -> list:
        """The results of the tasks that succeeded, in the order of the configs: their JSON form,
        or rebuilt as `as_type` (e.g. the task's annotated return dataclass, see `result_type`)."""
        rows = [r["result"] for r in self.rows(status="ok")]
        return rows if as_type is None else [decode(as_type, r) for r in rows]


def read_sweep(out: str | os.PathLike) -> list[dict]:
    """Every row of the table under `out` (one per config run so far), in the order they finished."""
    path = Path(out) / TABLE_NAME
    if not path.exists():
        raise FileNotFoundError(f"out: no sweep table at {path}; run a sweep with out={str(out)!r} first")
    return list(read_rows(path).values())


_SESSION = {"depth": 0, "ray_started": False}


@contextlib.contextmanager
def ray_session():
    """Keep the Ray that a sweep inside the block starts until the block ends, so that many sweeps
    (a reproduction's several studies) pay Ray's start-up once. Imports Ray only if a sweep runs."""
    _SESSION["depth"] += 1
    try:
        yield
    finally:
        _SESSION["depth"] -= 1
        if _SESSION["depth"] == 0 and _SESSION["ray_started"]:
            _SESSION["ray_started"] = False
            import ray

            ray.shutdown()


def _resources(resources) -> TaskResources:
    if isinstance(resources, TaskResources):
        return resources
    if isinstance(resources, Mapping):
        unknown = set(resources) - {"cpus", "gpus", "memory"}
        if unknown:
            raise ValueError(f"resources: unknown keys {sorted(unknown)}; expected cpus, gpus, memory")
        return TaskResources(**resources)
    raise TypeError(f"resources: expected a TaskResources or a dict, got {type(resources).__name__}")


def _capacity(ray, res: TaskResources) -> int:
    """How many tasks the cluster can run at once with `res` each."""
    total = ray.cluster_resources()
    limits = []
    if res.cpus:
        limits.append(int(total.get("CPU", 0) // res.cpus))
    if res.gpus:
        limits.append(int(total.get("GPU", 0) // res.gpus))
    cap = min(limits)
    if cap < 1:
        raise ValueError(f"resources: each task asks cpus={res.cpus}, gpus={res.gpus}, but the Ray cluster "
                         f"has CPU={total.get('CPU', 0)}, GPU={total.get('GPU', 0)}; ask for less")
    return cap


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_sweep(task: Callable, configs: Iterable, *, out: str | os.PathLike, address: str | None = None,
              workers: int | None = None, resources: TaskResources | Mapping = TaskResources(),
              retry_failed: bool = False, progress: bool = True) -> SweepSummary:
    """Run `task(config)` for every config, streaming one row per finished task into `out/sweep.jsonl`.

    address: None starts an embedded local Ray sized to this machine's cores (or joins RAY_ADDRESS
        when set); "auto" joins the cluster started on this machine with `ray start`; "ray://host:port"
        joins a remote cluster through Ray Client. If Ray is already initialised in this process,
        that connection is used as it is.
    workers: most tasks in flight at once; None: as many as the cluster's resources allow.
        0 runs the tasks one after another in this process, without Ray (for debugging).
    resources: per task (`TaskResources`, or a dict with keys cpus, gpus, memory).
    retry_failed: rerun the configs whose row records a failure (otherwise they are skipped like
        the finished ones: tasks are seeded, so a failure repeats until the code changes).

    A task that raises does not stop the sweep: its row records the error and traceback.
    Another sweep writing into the same `out` makes this one raise `SweepLockedError`.
    """
    if not callable(task):
        raise TypeError(f"task: expected a function config -> result, got {type(task).__name__}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 0):
        raise ValueError(f"workers: expected an int >= 0 or None, got {workers!r}")
    res = _resources(resources)
    configs = list(configs)
    keys, seen = [], {}
    for i, config in enumerate(configs):
        config_json(config, f"configs[{i}]")
        key = config_key(task, config)
        if key in seen:
            raise ValueError(f"configs: items {seen[key]} and {i} are the same config; a seeded task gives "
                             f"the same row twice: drop one, or give them different seeds")
        seen[key] = i
        keys.append(key)

    start = time.perf_counter()
    tid = task_id(task)
    with SweepTable(out) as table:
        existing = table.rows()
        if retry_failed:
            table.drop({k for k in keys if existing.get(k, {}).get("status") == "failed"})
            existing = table.rows()

        old = sorted({existing[k].get("version") for k in keys if k in existing} - {__version__}, key=str)
        if old:
            warnings.warn(f"out: reusing rows written by reluscope {', '.join(map(str, old))} (this is "
                          f"{__version__}); use a new out directory to recompute them", stacklevel=2)
        todo = [(k, c) for k, c in zip(keys, configs) if k not in existing]
        bar = _Progress(tid, len(configs), len(configs) - len(todo), progress)

        def record(key, config, part: dict):
            row = {"key": key, "task": tid, "status": part["status"], "config": config_json(config)}
            row.update({k: v for k, v in part.items() if k != "status"}, finished=_now())
            table.append(row)
            bar.finished(part["status"] == "ok")

        joined, in_flight = None, 0
        try:
            if not todo:
                pass
            elif workers == 0:
                for key, config in todo:
                    bar.running(1)
                    record(key, config, execute(task, config))
            else:
                joined, in_flight = _run_on_ray(task, todo, record, bar, address, workers, res)
        finally:
            bar.close()

    rows = read_rows(table.path)
    statuses = [rows[k]["status"] for k in keys if k in rows]
    return SweepSummary(table.path, tid, len(configs), len(todo), len(configs) - len(todo),
                        statuses.count("ok"), statuses.count("failed"), time.perf_counter() - start,
                        in_flight, joined, tuple(keys))


def _run_on_ray(task, todo, record, bar, address, workers, res):
    local_cpus = max(machine_cpus(), math.ceil((workers or 0) * res.cpus))
    ray, started, joined = connect(address, num_cpus=local_cpus)
    try:
        cap = _capacity(ray, res)
        limit = workers or cap  # more workers than fit: Ray queues the rest, as asked
        opts = {"num_cpus": res.cpus, "num_gpus": res.gpus}
        if res.memory:
            opts["memory"] = res.memory
        remote = ray.remote(execute).options(**opts)
        pending, queue = {}, list(reversed(todo))
        try:
            while queue or pending:
                while queue and len(pending) < limit:
                    key, config = queue.pop()
                    pending[remote.remote(task, config, res.cpus or 1)] = (key, config)
                bar.running(len(pending))
                done, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
                for ref in done:
                    key, config = pending.pop(ref)
                    try:
                        part = ray.get(ref)
                    except ray.exceptions.RayError as err:  # the worker died (out of memory, node lost, ...)
                        text = str(err)
                        part = {"status": "failed", "result": None,
                                "error": f"{type(err).__name__}: {text.splitlines()[0] if text else ''}",
                                "traceback": text, "seconds": None, "cpu_seconds": None, "host": None,
                                "version": None}
                    record(key, config, part)
        except BaseException:
            for ref in pending:  # do not leave orphans computing rows nobody will write
                ray.cancel(ref, force=True)
            raise
        return joined, limit
    finally:
        if started and _SESSION["depth"]:
            _SESSION["ray_started"] = True  # ray_session shuts it down
        elif started:
            ray.shutdown()


class _Progress:
    """done / failed / running, with tqdm's rate and time left."""

    def __init__(self, name: str, total: int, reused: int, enabled: bool):
        self.failed, self.shown, self.last = 0, None, 0.0
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=reused, desc=name.rsplit(":", 1)[-1], unit="task",
                            dynamic_ncols=True)

    def running(self, n: int) -> None:
        # redraw when the counts change, and every few seconds so the clock moves on long tasks
        if self.bar is None or ((self.failed, n) == self.shown and time.monotonic() - self.last < 5):
            return
        self.shown, self.last = (self.failed, n), time.monotonic()
        self.bar.set_postfix_str(f"failed={self.failed} running={n}")

    def finished(self, ok: bool) -> None:
        self.failed += not ok
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
