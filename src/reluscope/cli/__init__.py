"""The `reluscope` command line: a thin typer layer over the library.

Each topic module `reluscope.cli.<topic>` exposes `register(app, experiment)` and adds its commands;
they are listed explicitly in `_TOPICS` (no import-time discovery, so a missing module is an error,
not a silently missing command). Every command is one library call plus I/O and writes JSON.
"""

from __future__ import annotations

import importlib
import os
import signal
from typing import Optional

import typer
from typer._click.exceptions import ClickException, UsageError  # typer vendors its own click
from typer.core import TyperGroup

from ._common import fail, set_model_class

__all__ = ["app", "experiment", "main"]


class _Group(TyperGroup):
    """The root group: usage errors and anything a command lets escape become one `error:` line
    with the documented exit code (see reluscope.cli._common)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, KeyboardInterrupt, SystemExit):
            raise
        except ClickException as err:  # option parse errors name the option
            where = getattr(err, "ctx", None) or ctx
            hint = f" (see '{where.command_path} --help')" if isinstance(err, UsageError) else ""
            typer.echo(f"error: {' '.join(err.format_message().split())}{hint}", err=True)
            raise typer.Exit(err.exit_code) from err
        except Exception as err:
            if os.environ.get("RELUSCOPE_TRACEBACK"):
                raise
            raise fail(err) from err


app = typer.Typer(
    cls=_Group,
    name="reluscope",
    help="See and measure the geometry of piecewise-linear neural networks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
experiment = typer.Typer(
    help="Reproduce the papers' experiments (each writes a JSON summary and figures).",
    no_args_is_help=True,
)
app.add_typer(experiment, name="experiment")


@app.callback()
def _global_options(
    ctx: typer.Context,
    model_class: Optional[str] = typer.Option(
        None, "--model-class", metavar="PKG.MODULE:CLASS",
        help="Use your own torch module: Class() is built without arguments and each MODEL argument is "
        "its state dict (.safetensors, or .pt read with weights_only=True). Importing PKG.MODULE runs it.",
    ),
) -> None:
    set_model_class(model_class)
    ctx.call_on_close(lambda: set_model_class(None))  # never leaks into a later invocation


_TOPICS = ("core", "folding", "regions", "hull", "tangent", "reproduce", "explore")

for _topic in _TOPICS:
    importlib.import_module(f"reluscope.cli.{_topic}").register(app, experiment)


def _terminate(signum, frame):
    # unwind like Ctrl-C so every `finally` runs: temporary files of half-written outputs are removed
    raise SystemExit(128 + signum)


def main() -> None:
    """Entry point of the `reluscope` script."""
    signal.signal(signal.SIGTERM, _terminate)
    app()

