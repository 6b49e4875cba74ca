"""`reluscope explore`: the live explorer in the browser (local only)."""

from __future__ import annotations

import threading
import webbrowser
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..data import ImageSet, Split, load_dataset
from ..explore.plane_view import PlaneView
from ..explore.server import bind_socket, create_app, serve
from ._common import load_user_model as load_model, user_errors

__all__ = ["register", "explore"]


@user_errors
def explore(
    model: Annotated[Optional[Path], typer.Option("--model", help="A model saved by reluscope (path without suffix, e.g. out/models/mnist-mlp); default: train a toy net live.")] = None,
    data: Annotated[ImageSet, typer.Option(help="Test images for the plane of an image model.")] = ImageSet.MNIST,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).", min=0, max=65535)] = 8765,
    open_browser: Annotated[bool, typer.Option("--open", help="Open the page in a browser, where one exists.")] = False,
) -> None:
    """Explore exact regions, traversals and folding live in the browser, served on 127.0.0.1 only."""
    if model is None:
        app = create_app()
    else:
        net = load_model(model)
        first = next((m for m in net.modules() if hasattr(m, "in_features")), None)
        images = labels = None
        if first is None or first.in_features != 2:
            images, labels = load_dataset(data, Split.TEST)
        app = create_app(plane_view=PlaneView(net, name=model.name, images=images, labels=labels))
    sock = bind_socket(port)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    typer.echo(f"reluscope explore: serving {url} (local only; Ctrl-C to stop)")
    if open_browser:
        threading.Timer(0.5, lambda: webbrowser.open(url)).start()
    serve(app, sock)


def register(app: typer.Typer, experiment: typer.Typer) -> None:
    app.command("explore")(explore)
