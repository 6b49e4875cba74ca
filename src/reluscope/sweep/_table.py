"""The results table of a sweep: one JSON-lines file under `out/`, appended one row per finished task.

Why JSON-lines and not Parquet: rows arrive one at a time from tasks that finish in any order, and
a killed sweep must keep every row already written. Appending one line is one `write` on an
`O_APPEND` file: rows are never torn apart by other writers, a crash can only cut the last line
(dropped and repaired on the next run), and no dependency is needed. Parquet files cannot be
appended to: streaming would need one file per row and a compaction step. Any tool reads the
table: `pandas.read_json(path, lines=True)`, `duckdb`, `jq`, or `read_sweep` here.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import socket
from pathlib import Path

from ..io_utils import atomic_path

__all__ = ["TABLE_NAME", "SweepLockedError", "SweepTable"]

TABLE_NAME = "sweep.jsonl"
LOCK_NAME = ".sweep.lock"


class SweepLockedError(RuntimeError):
    """Another sweep is writing into the same `out/` directory."""


def _read_lines(path: Path) -> tuple[list[dict], int]:
    """Rows of the table and the byte length of its complete lines (a cut last line is not counted)."""
    if not path.exists():
        return [], 0
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1  # whatever follows the last newline is a line cut by a crash
    rows = []
    for number, line in enumerate(data[:end].splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: line {number} is not a JSON row ({err.msg}); "
                             f"delete that line and rerun to recompute its task") from None
        if not isinstance(row, dict) or "key" not in row:
            raise ValueError(f"{path}: line {number} is not a sweep row (no 'key'); "
                             f"was the file written by another program?")
        rows.append(row)
    return rows, end


def read_rows(path: str | os.PathLike) -> dict[str, dict]:
    """Rows by key, the last row of a key winning (the file holds one row per key unless edited by hand)."""
    rows, _ = _read_lines(Path(path))
    return {row["key"]: row for row in rows}


class SweepTable:
    """The table file and its lock, held for the whole sweep (released by the OS if the process dies)."""

    def __init__(self, out: str | os.PathLike):
        self.out = Path(out)
        self.path = self.out / TABLE_NAME
        self._lock_fd: int | None = None
        self._fd: int | None = None

    def __enter__(self) -> "SweepTable":
        import fcntl

        self.out.mkdir(parents=True, exist_ok=True)
        lock_path = self.out / LOCK_NAME
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "an unknown process"
            os.close(fd)
            raise SweepLockedError(
                f"out: another sweep ({holder}) is writing into {self.out}; wait for it to finish, "
                f"or give this sweep another out directory") from None
        os.ftruncate(fd, 0)
        now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}, since {now}\n".encode(), 0)
        self._lock_fd = fd
        try:
            self._repair()
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def _repair(self) -> None:
        """Drop a last line cut by a crash, so the next append starts on a fresh line."""
        if not self.path.exists():
            return
        _, end = _read_lines(self.path)
        if end < self.path.stat().st_size:
            os.truncate(self.path, end)

    def rows(self) -> dict[str, dict]:
        return read_rows(self.path)

    def drop(self, keys: set[str]) -> None:
        """Rewrite the table without the rows of `keys` (atomically; used to retry failed tasks)."""
        if not keys:
            return
        rows, _ = _read_lines(self.path)
        os.close(self._fd)
        with atomic_path(self.path) as tmp:
            tmp.write_text("".join(_line(r) for r in rows if r["key"] not in keys), encoding="utf-8")
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)

    def append(self, row: dict) -> None:
        data = _line(row).encode("utf-8")
        view = memoryview(data)
        while view:  # one write in practice; loop only if the OS writes part (e.g. a signal)
            view = view[os.write(self._fd, view):]


def _line(row: dict) -> str:
    return json.dumps(row, allow_nan=False, ensure_ascii=False) + "\n"
