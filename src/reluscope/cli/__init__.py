"""The `reluscope` command line: a thin typer layer over the library.

Each topic module `reluscope.cli.<topic>` exposes `register(app, experiment)` and adds its commands;
they are listed explicitly in `_TOPICS` (no import-time discovery, so a missing module is an error,
not a silently missing command). Every command is one library call plus I/O and writes JSON.
"""

from __future__ import annotations

import importlib

import typer

__all__ = ["app", "experiment", "main"]

app = typer.Typer(
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

_TOPICS = ("core", "folding", "regions", "hull", "tangent", "reproduce", "explore")

for _topic in _TOPICS:
    importlib.import_module(f"reluscope.cli.{_topic}").register(app, experiment)


def main() -> None:
    """Entry point of the `reluscope` script."""
    app()
