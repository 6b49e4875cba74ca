"""Helpers shared by the CLI topic modules: clean error exits, writability checks and JSON output.

Every failure ends with one line `error: ...` on stderr and an exit code that says what kind of
failure it was (documented in the README, "Command line"):

    0  success
    1  `demo`: a report section failed (the report is still written)
    2  invalid usage or value: an unknown or malformed option, a value out of range
    3  an input is missing or unreadable: no such file, a corrupt data set, model or array file
    4  an output cannot be written (its folder is not writable, it names a folder, a parent is a
       file, the disk is full) or a file is not accessible (permissions)
    5  over the memory budget, or out of memory
    6  the computation failed at run time (e.g. a model that does not match the data)
    7  an optional dependency is missing
    70 an internal error (a bug: please report it; RELUSCOPE_TRACEBACK=1 shows the traceback)
    130 interrupted (Ctrl-C); 143 terminated (SIGTERM). Temporary files are removed either way.
"""

from __future__ import annotations

import functools
import gzip
import inspect
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer._click.exceptions import ClickException  # typer vendors its own click

from .._checks import check_int, out_of_memory
from ..io_utils import to_jsonable, write_json_atomic
from ..network.io import load_model
from ..viz import save_figure as write_figure

__all__ = [
    "user_errors", "emit_json", "save_figure", "check_writable", "check_figure_suffix", "exit_code_for",
    "OutputNotWritable", "InputUnreadable", "EXIT_CODES", "load_user_model", "set_model_class", "check_workers",
    "address_option", "workers_option", "add_commands", "ModelArg", "OutJsonOpt", "DataNameOpt", "DeviceOpt",
    "MemoryBudgetOpt", "EpochsOpt",
]

EXIT_CODES = {
    "ok": 0, "section_failed": 1, "usage": 2, "input": 3, "output": 4, "memory": 5, "runtime": 6,
    "dependency": 7, "internal": 70, "interrupted": 130, "terminated": 143,
}
FIGURE_SUFFIXES = (".png", ".svg", ".pdf")

_MODEL_CLASS: str | None = None  # `reluscope --model-class ...`, for the one invocation running


def set_model_class(spec: str | None) -> None:
    global _MODEL_CLASS
    _MODEL_CLASS = spec


def load_user_model(path, **kwargs):
    """`load_model(path)`, or with `reluscope --model-class pkg.module:Class ...` the user's class
    and `path` its state dict."""
    return load_model(path, model_class=_MODEL_CLASS, **kwargs)


class OutputNotWritable(OSError):
    """An output path cannot be written; raised before any work starts."""


class InputUnreadable(ValueError):
    """An input file exists but cannot be read as what it should be (exit code 3)."""


def _corrupt_input_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [EOFError, zipfile.BadZipFile, gzip.BadGzipFile, UnicodeDecodeError]
    try:
        from safetensors import SafetensorError

        errors.append(SafetensorError)
    except ImportError:  # pragma: no cover - safetensors is a dependency
        pass
    return tuple(errors)


def exit_code_for(err: BaseException) -> int:
    """The documented exit code of an exception escaping a command (see the module docstring)."""
    if isinstance(err, (OutputNotWritable, IsADirectoryError, NotADirectoryError, PermissionError)):
        return EXIT_CODES["output"]
    if out_of_memory(err):  # MemoryError, torch's OutOfMemoryError and the CPU allocator's RuntimeError
        return EXIT_CODES["memory"]
    if isinstance(err, (FileNotFoundError, InputUnreadable, *_corrupt_input_errors())):
        return EXIT_CODES["input"]
    if isinstance(err, OSError):  # no space left, read-only file system, ...
        return EXIT_CODES["output"]
    if isinstance(err, ImportError):
        return EXIT_CODES["dependency"]
    if isinstance(err, (ValueError, TypeError, KeyError, IndexError)):
        return EXIT_CODES["usage"]
    if isinstance(err, RuntimeError):
        return EXIT_CODES["runtime"]
    return EXIT_CODES["internal"]


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, OSError) and err.filename is not None and str(err.filename) not in text:
        text = f"{text}: {err.filename}"
    if isinstance(err, (MemoryError, RuntimeError)) and type(err).__name__ not in text:
        text = f"{type(err).__name__}: {text}"
    code = exit_code_for(err)
    if code == EXIT_CODES["internal"]:
        text = f"internal error ({type(err).__name__}: {text}); please report it (RELUSCOPE_TRACEBACK=1 shows where)"
    return text


def fail(err: BaseException) -> typer.Exit:
    """Print `error: ...` (one line) and return the typer.Exit with the error's code."""
    typer.echo(f"error: {_one_line(err)}", err=True)
    return typer.Exit(exit_code_for(err))


_OUTPUT_OPTIONS = ("out", "stats", "plot", "figure")
_FIGURE_OPTIONS = ("plot", "figure")


def user_errors(func=None, *, out: str = "file"):
    """Check a command's outputs before it works, and turn any exception into one `error: ...` line
    with its documented exit code.

    Before the body runs, every output option (`out`, `stats`, `plot`, `figure`) is checked for
    writability and figure options for their suffix, so a long computation never ends in a lost
    result. `out` says what `--out` names: "file" (default), "folder", or "model" (a path stem
    for OUT.safetensors, OUT.json and OUT.train.json). The library's errors already say what was
    wrong and how to fix it; a traceback would only hide that. RELUSCOPE_TRACEBACK=1 re-raises.
    """
    if func is None:
        return functools.partial(user_errors, out=out)
    if out not in ("file", "folder", "model"):
        raise ValueError(f"out: expected 'file', 'folder' or 'model', got {out!r}")
    signature = inspect.signature(func)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            bound = signature.bind_partial(*args, **kwargs).arguments
            _check_outputs(bound, out)
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, ClickException, KeyboardInterrupt, SystemExit):
            raise
        except Exception as err:
            if os.environ.get("RELUSCOPE_TRACEBACK"):
                raise
            raise fail(err) from err

    wrapper.output_kind = out  # what --out names; test_bad_inputs_cli checks it against the help
    return wrapper


def _check_outputs(arguments: dict, out_kind: str) -> None:
    for name in _OUTPUT_OPTIONS:
        value = arguments.get(name)
        if value is None:
            continue
        paths = [Path(p) for p in (value if isinstance(value, (list, tuple)) else [value])]
        if name in _FIGURE_OPTIONS:
            check_figure_suffix(*paths)
        if name == "out" and out_kind == "folder":
            check_writable(*paths, folder=True)
        elif name == "out" and out_kind == "model":
            check_writable(*(p.with_name(p.name + s) for p in paths for s in (".safetensors", ".json", ".train.json")))
        else:
            check_writable(*paths)


def check_writable(*paths: Path | None, folder: bool = False) -> None:
    """Refuse, before any work, outputs that cannot be written (exit code 4 in the CLI).

    Files: the path must not be a folder, its parent must be (or become) a writable folder.
    `folder=True`: the paths are output folders (created when missing). None entries are skipped.
    """
    for path in paths:
        if path is None:
            continue
        path = Path(path)
        target = path if folder else path.parent
        if not folder and path.is_dir():
            raise OutputNotWritable(f"{path} is a folder; give a file path (e.g. {path / 'result.json'})")
        if folder and path.exists() and not path.is_dir():
            raise OutputNotWritable(f"{path} exists and is not a folder; give a folder path")
        for parent in (target, *target.parents):
            if parent.exists():
                if not parent.is_dir():
                    raise OutputNotWritable(f"cannot write {path}: {parent} is a file, not a folder")
                break
        try:
            target.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".reluscope-probe-", dir=target)
            os.close(fd)
            os.unlink(probe)
        except OSError as err:
            raise OutputNotWritable(f"cannot write {path}: {err.strerror or err} ({target})") from None


def check_workers(workers: int | None) -> None:
    """--workers of the study commands: None (one per CPU) or an integer >= 0 (0: in process)."""
    if workers is not None:
        check_int(workers, "--workers", minimum=0)


# Options that several commands declare alike, declared once (each command keeps its default).
ModelArg = Annotated[Path, typer.Argument(metavar="MODEL", help="Model saved by `reluscope train` / save_model (path without suffix).")]
OutJsonOpt = Annotated[Path, typer.Option(help="Output JSON file.")]
DataNameOpt = Annotated[str, typer.Option("--data", help="Data set: mnist, fashion-mnist, digits or a toy set.")]
DeviceOpt = Annotated[str, typer.Option(help="cpu or cuda.")]
MemoryBudgetOpt = Annotated[float, typer.Option(
    help="Bytes of working memory the computation may hold at once (it works in parts to stay under, and refuses what cannot).")]
EpochsOpt = Annotated[int, typer.Option(help="Training epochs.")]


def address_option(tasks: str):
    """The type of a study command's --address, whose `tasks` ("nets", "seeds", ...) run on Ray."""
    return Annotated[Optional[str], typer.Option(
        help=f"Ray cluster to run the {tasks} on (auto, ray://host:port); default: an embedded Ray on this machine's cores.")]


def workers_option(tasks: str):
    """The type of a study command's --workers (checked by `check_workers`)."""
    return Annotated[Optional[int], typer.Option(
        help=f"Most {tasks} in flight at once (default: one per CPU); 0 runs them here, one after another, without Ray.")]


def add_commands(group: typer.Typer, commands: Mapping[str, Callable]) -> None:
    """Register each function of `commands` under its command name (a topic module's `register`)."""
    for name, function in commands.items():
        group.command(name)(function)


def check_figure_suffix(*paths: Path | None) -> None:
    """Refuse figure paths with an unsupported suffix before the computation starts."""
    for path in paths:
        if path is not None and Path(path).suffix.lower() not in FIGURE_SUFFIXES:
            raise ValueError(f"figure: expected a .png, .svg or .pdf path, got {path}")


def emit_json(obj, path: Path | None = None) -> None:
    """Write `obj` to `path` atomically (when given) and print it to stdout."""
    if path is not None:
        write_json_atomic(path, obj)
    typer.echo(json.dumps(to_jsonable(obj), indent=2))


def save_figure(fig, path: Path) -> None:
    """Save a matplotlib figure atomically (`reluscope.viz.save_figure`; format from the suffix)."""
    write_figure(fig, path)
