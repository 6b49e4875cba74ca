"""Helpers shared by the CLI topic modules: clean error exits and JSON output."""

from __future__ import annotations

import functools
import io
import json
from pathlib import Path

import typer

from ..io_utils import to_jsonable, write_bytes_atomic, write_json_atomic

__all__ = ["user_errors", "emit_json", "save_figure"]


def user_errors(func):
    """Turn the library's ValueError/TypeError/FileNotFoundError into `error: ...` and exit code 2.

    These errors already say what was wrong and how to fix it; a traceback would only hide that.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (ValueError, TypeError, FileNotFoundError, ImportError) as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from err

    return wrapper


def emit_json(obj, path: Path | None = None) -> None:
    """Write `obj` to `path` atomically (when given) and print it to stdout."""
    if path is not None:
        write_json_atomic(path, obj)
    typer.echo(json.dumps(to_jsonable(obj), indent=2))


def save_figure(fig, path: Path) -> None:
    """Save a matplotlib figure atomically; the format comes from the suffix (png, svg or pdf)."""
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in ("png", "svg", "pdf"):
        raise ValueError(f"figure: expected a .png, .svg or .pdf path, got {path}")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=120, bbox_inches="tight")
    write_bytes_atomic(path, buf.getvalue())
