"""Atomic file writes: a reader never sees half a file, a crash never leaves one behind.

Everything reluscope writes (JSON summaries, model weights, the data cache, reports) goes through
`atomic_path`: write to a temporary file in the target's directory, flush it to disk, then
`os.replace` it over the target, which is atomic on POSIX and Windows within one file system.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

__all__ = [
    "atomic_path", "write_together", "folder_lock", "write_bytes_atomic", "write_json_atomic", "write_text_atomic",
    "to_jsonable",
]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success it replaces `path`, on error it is removed.

    `suffix` defaults to the target's suffix, so writers that pick a format from the file name
    (numpy's `savez`, matplotlib's `savefig`) behave as if writing `path` itself.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=target.suffix if suffix is None else suffix, dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:  # the data must be on disk before the rename makes it visible
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on `folder` (flock on the folder itself: no lock file is left behind).

    Serialises the final renames of concurrent writers into one folder. Without fcntl (Windows)
    this is a no-op.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@contextlib.contextmanager
def write_together(*paths: str | os.PathLike) -> Iterator[list[Path]]:
    """Yield staging paths for `paths`; on success they replace their targets as one unit.

    Files that belong together (weights and architecture, patterns and their statistics) are
    written into a hidden staging folder next to each target, then moved into place while the
    target folder is locked, so two concurrent runs writing the same outputs leave the complete
    set of one run or the other, never a mix. On error nothing is replaced and the staging
    folders are removed. Staging paths keep the targets' names, so writers that derive file names
    from a stem (`save_model`) work unchanged.
    """
    targets = [Path(p) for p in paths]
    names = [t.name for t in targets]
    if len(set(zip(names, (t.parent.resolve() for t in targets)))) != len(targets):
        raise ValueError(f"paths: expected distinct output files, got {[str(t) for t in targets]}")
    stages: dict[Path, Path] = {}
    try:
        for t in targets:
            parent = t.parent.resolve()
            if parent not in stages:
                parent.mkdir(parents=True, exist_ok=True)
                stages[parent] = Path(tempfile.mkdtemp(prefix=".reluscope-stage-", dir=parent))
        staged = [stages[t.parent.resolve()] / t.name for t in targets]
        yield staged
        with contextlib.ExitStack() as locks:
            for parent in sorted(stages):  # one order for every writer: no deadlock
                locks.enter_context(folder_lock(parent))
            for stage in stages.values():
                for f in sorted(stage.iterdir()):  # every file written there (save_model writes two)
                    with open(f, "rb+") as fh:
                        os.fsync(fh.fileno())
                    os.chmod(f, 0o666 & ~_umask())
            for stage, parent in ((s, p) for p, s in stages.items()):
                for f in sorted(stage.iterdir()):
                    os.replace(f, parent / f.name)
    finally:
        for stage in stages.values():
            shutil.rmtree(stage, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically; returns the path."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data: expected bytes, got {type(data).__name__}")
    with atomic_path(path) as tmp:
        tmp.write_bytes(bytes(data))
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 `text` to `path` atomically; returns the path."""
    if not isinstance(text, str):
        raise TypeError(f"text: expected str, got {type(text).__name__}")
    return write_bytes_atomic(path, text.encode("utf-8"))


def to_jsonable(obj: object) -> object:
    """Plain JSON values from numpy/torch scalars and arrays, paths, enums and dataclasses.

    Non-finite floats become None: strict JSON has no NaN or Infinity, and a summary that other
    tools cannot parse is worse than a missing number.
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, enum.Enum):
        return to_jsonable(obj.value)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    # numpy and torch without importing either: both expose .tolist() on arrays and scalars
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return to_jsonable(tolist())
    item = getattr(obj, "item", None)
    if callable(item):
        return to_jsonable(item())
    raise TypeError(f"obj: cannot write a value of type {type(obj).__name__} as JSON")


def write_json_atomic(path: str | os.PathLike, obj: object, *, indent: int | None = 2) -> Path:
    """Write `obj` as strict JSON (see `to_jsonable`) to `path` atomically; returns the path."""
    text = json.dumps(to_jsonable(obj), indent=indent, allow_nan=False, sort_keys=False)
    return write_text_atomic(path, text + "\n")
