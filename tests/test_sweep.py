"""Sweeps on Ray: rows equal a plain loop, resume after a kill, failures recorded, one writer per out/."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from reluscope.io_utils import to_jsonable
from reluscope.sweep import SweepLockedError, TaskResources, read_sweep, run_sweep
from reluscope.testing.sweep import flaky, sleepy, toy_training


def _lines(out):
    return (out / "sweep.jsonl").read_text().splitlines()


def test_import_reluscope_does_not_import_ray():
    code = ("import sys, reluscope, reluscope.sweep, reluscope.testing.sweep; "
            "reluscope.run_sweep; print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"]


def test_missing_ray_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(ImportError, match=r"reluscope\[sweep\].*workers=0"):
        run_sweep(flaky, [{"seed": 0}], out=tmp_path, progress=False)


def test_in_process_sweep_resumes_and_repairs_a_cut_last_line(tmp_path):
    configs = [{"seed": s} for s in range(4)]
    first = run_sweep(flaky, configs[:2], out=tmp_path, workers=0, progress=False)
    assert (first.ran, first.ok, first.failed) == (2, 2, 0)
    with open(tmp_path / "sweep.jsonl", "a") as fh:  # a crash in the middle of a write
        fh.write('{"key": "abc", "stat')
    second = run_sweep(flaky, configs, out=tmp_path, workers=0, progress=False)
    assert (second.ran, second.reused, second.ok) == (2, 2, 4)
    assert [json.loads(line)["config"]["seed"] for line in _lines(tmp_path)] == [0, 1, 2, 3]
    assert second.results() == [{"seed": s} for s in range(4)]
    assert len(read_sweep(tmp_path)) == 4


def test_configs_are_checked(tmp_path):
    with pytest.raises(ValueError, match="items 0 and 2 are the same config"):
        run_sweep(flaky, [{"seed": 1}, {"seed": 2}, {"seed": 1}], out=tmp_path, workers=0)
    with pytest.raises(TypeError, match=r"configs\[1\]: expected a dataclass instance or a dict, got list"):
        run_sweep(flaky, [{"seed": 1}, [2]], out=tmp_path, workers=0)
    with pytest.raises(ValueError, match="resources.gpus"):
        TaskResources(gpus=1.5)
    with pytest.raises(ValueError, match="workers"):
        run_sweep(flaky, [{"seed": 1}], out=tmp_path, workers=-1)


def test_a_corrupt_row_in_the_middle_is_named(tmp_path):
    run_sweep(flaky, [{"seed": 1}], out=tmp_path, workers=0, progress=False)
    with open(tmp_path / "sweep.jsonl", "a") as fh:
        fh.write("not json\n")
    with pytest.raises(ValueError, match="line 2 is not a JSON row"):
        run_sweep(flaky, [{"seed": 2}], out=tmp_path, workers=0, progress=False)


# --- on Ray ---------------------------------------------------------------------------------------

def test_ray_session_keeps_the_ray_a_sweep_started_until_it_ends(tmp_path):
    ray = pytest.importorskip("ray")
    from reluscope.sweep import ray_session

    assert not ray.is_initialized()
    with ray_session():
        first = run_sweep(sleepy, [{"seed": 0, "sleep": 0}], out=tmp_path / "a", progress=False)
        assert ray.is_initialized()
        second = run_sweep(sleepy, [{"seed": 1, "sleep": 0}], out=tmp_path / "b", progress=False)
    assert not ray.is_initialized()
    assert (first.ok, second.ok) == (1, 1)


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray with 2 CPUs for the module; run_sweep uses an initialised Ray as it is."""
    ray = pytest.importorskip("ray")
    from reluscope.sweep._ray import connect

    connect(None, num_cpus=2)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def test_rows_equal_a_plain_loop(ray_local, tmp_path):
    configs = [{"seed": s, "depth": d, "width": 6, "epochs": 3, "n": 120} for s in range(2) for d in (1, 2)]
    summary = run_sweep(toy_training, configs, out=tmp_path, progress=False)
    assert (summary.total, summary.ran, summary.ok, summary.failed, summary.workers) == (4, 4, 4, 0, 2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the workers (one CPU per task)
    try:
        expected = [to_jsonable(toy_training(c)) for c in configs]
    finally:
        torch.set_num_threads(threads)
    assert summary.results() == expected
    rows = summary.rows()
    assert [r["config"] for r in rows] == configs
    assert all(r["seconds"] > 0 and r["host"] and r["version"] for r in rows)


def test_a_failing_task_is_recorded_and_the_others_finish(ray_local, tmp_path):
    configs = [{"seed": s, "fail": s == 2} for s in range(5)]
    summary = run_sweep(flaky, configs, out=tmp_path, progress=False)
    assert (summary.ok, summary.failed) == (4, 1)
    (bad,) = summary.rows(status="failed")
    assert bad["config"]["seed"] == 2 and bad["result"] is None
    assert bad["error"] == "ValueError: seed 2: failing on purpose"
    assert "raise ValueError" in bad["traceback"]
    again = run_sweep(flaky, configs, out=tmp_path, progress=False)
    assert (again.ran, again.reused, again.failed) == (0, 5, 1)
    retried = run_sweep(flaky, configs, out=tmp_path, retry_failed=True, progress=False)
    assert (retried.ran, retried.failed) == (1, 1) and len(_lines(tmp_path)) == 5


SCRIPT = """
import sys
from reluscope.sweep import run_sweep
from reluscope.testing.sweep import sleepy
run_sweep(sleepy, [{"seed": i, "sleep": 0.3} for i in range(16)], out=sys.argv[1], address=sys.argv[2],
          progress=False)
"""


def test_killed_sweep_resumes_and_a_second_sweep_is_refused(ray_local, tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path), ray_local], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not ((tmp_path / "sweep.jsonl").exists() and len(_lines(tmp_path)) >= 3):
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the sweep in the subprocess wrote no rows"
            time.sleep(0.1)
        with pytest.raises(SweepLockedError, match=r"another sweep \(pid \d+"):
            run_sweep(sleepy, [{"seed": 99}], out=tmp_path, progress=False)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    written = len(_lines(tmp_path))
    assert 3 <= written < 16
    configs = [{"seed": i, "sleep": 0.3} for i in range(16)]
    summary = run_sweep(sleepy, configs, out=tmp_path, progress=False)
    assert (summary.reused, summary.ran, summary.ok) == (written, 16 - written, 16)
    keys = [json.loads(line)["key"] for line in _lines(tmp_path)]
    assert len(keys) == 16 and len(set(keys)) == 16
    assert summary.results() == [{"seed": i} for i in range(16)]


# --- rows back into objects -----------------------------------------------------------------------

from dataclasses import dataclass  # noqa: E402
from enum import Enum  # noqa: E402


class _Kind(str, Enum):
    A = "a"


@dataclass(frozen=True)
class _Cfg:
    depth: int
    levels: tuple[float, ...] = (0.7, 0.9)
    classes: tuple[int, int] = (1, 4)
    kind: _Kind = _Kind.A


@dataclass(frozen=True)
class _Snap:
    level: float | None
    phi: float


@dataclass(frozen=True)
class _Row:
    config: _Cfg
    snaps: tuple[_Snap, ...]
    extra: dict[str, list[int]]
    tolerance: float | None = None


def _row_task(config: _Cfg) -> _Row:
    return _Row(config, (_Snap(0.7, 0.25), _Snap(None, float("nan"))), {"a": [1, 2]})


def test_decode_rebuilds_the_annotated_dataclass_from_its_json_row():
    from reluscope.sweep import decode, result_type

    assert result_type(_row_task) is _Row and result_type(flaky) is None
    row = _row_task(_Cfg(3))
    back = decode(_Row, json.loads(json.dumps(to_jsonable(row))))
    assert back.config == row.config and back.extra == row.extra and back.tolerance is None
    assert back.snaps[0] == row.snaps[0] and back.snaps[1].level is None
    assert back.snaps[1].phi != back.snaps[1].phi  # NaN was written as null, read back as NaN
