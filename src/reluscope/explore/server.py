"""The explorer's HTTP layer: a starlette app over one `ExploreRun` (or one `PlaneView`).

Why starlette + uvicorn: both are small, well kept and pure Python wheels; starlette gives
routing, JSON and a test client without a framework's weight, and uvicorn is the standard ASGI
server. The page polls `/api/frame` instead of holding a websocket: a frame is one small JSON
document, polling keeps every tab in step with the one training run, and nothing else is needed.

Safety: the server binds 127.0.0.1 only; assets come from the package's `static/` folder through a
fixed allow-list (no path from the page reaches the file system); models come only from the
command line; every request body is validated and capped (`ExploreConfig.from_request`).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from importlib import resources
from typing import TYPE_CHECKING

from ..regions import GraphVariant
from .config import ExploreConfig
from .run import ExploreRun

if TYPE_CHECKING:
    from typing import Any
    from .plane_view import PlaneView

__all__ = ["create_app", "one_thread_process", "serve", "serve_in_thread", "Trainer", "bind_socket"]

_ASSETS = {"index.html": "text/html", "app.js": "text/javascript", "style.css": "text/css"}
# The exact-complex graph variants; the authors' grid graph splits grid cells, not the faces drawn.
_VARIANTS = tuple(v.value for v in GraphVariant if v is not GraphVariant.AUTHORS_GRID)


class Trainer:
    """Runs the one training in a background thread while playing; every tab watches it.

    Each tick trains `steps_per_frame` steps and makes a frame, then sleeps so frames come at most
    every `min_interval` seconds (the page polls; faster frames would only be dropped).
    """

    def __init__(self, run: ExploreRun, *, min_interval: float = 0.05):
        self.run = run
        self.min_interval = min_interval
        self.playing = False
        self.fiedler_variant = GraphVariant.LENGTH_RW.value
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.RLock()
        self._thread = threading.Thread(target=self._loop, name="reluscope-explore-trainer", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self.playing:
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            started = time.perf_counter()
            with self._lock:  # re-checked under the lock: once pause() returns, no frame follows
                if self.playing:
                    self.tick()
            rest = self.min_interval - (time.perf_counter() - started)
            if rest > 0:
                self._stop.wait(rest)

    def tick(self, n_steps: int | None = None):
        with self._lock:
            self.run.step(n_steps or self.run.config.steps_per_frame)
            return self.run.frame(fiedler_variant=self.fiedler_variant)

    def play(self) -> None:
        self.playing = True
        self._wake.set()

    def pause(self) -> None:
        """Stop training; returns after the frame in progress (if any) is done, so the last frame
        a client sees after pausing is the one that stays."""
        self.playing = False
        with self._lock:
            pass

    def reset(self, config: ExploreConfig) -> None:
        with self._lock:
            self.playing = False
            self.run.reset(config)
            self.run.frame(fiedler_variant=self.fiedler_variant, force_map=True)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)


def _asset(name: str) -> bytes:
    return resources.files("reluscope.explore").joinpath("static", name).read_bytes()


def create_app(*, run: ExploreRun | None = None, plane_view: PlaneView | None = None, trainer: Trainer | None = None):
    """The ASGI app. Exactly one of a training run (default) or a `PlaneView` of a saved model."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    if plane_view is None:
        trainer = trainer or Trainer(run or ExploreRun())
        if trainer.run.last_frame is None:
            trainer.run.frame(force_map=True)

    def error(message: str, status: int = 400):
        return JSONResponse({"error": message}, status_code=status)

    async def body_of(request: Request) -> dict:
        raw = await request.body()
        if len(raw) > 64_000:
            raise ValueError("request: body over 64 kB")
        if not raw:
            return {}
        try:
            doc = json.loads(raw)
        except json.JSONDecodeError as err:
            raise ValueError(f"request: not valid JSON ({err.msg})") from None
        if not isinstance(doc, dict):
            raise ValueError("request: expected a JSON object")
        return doc

    def guarded(handler):
        async def wrapped(request: Request):
            try:
                return await handler(request)
            except ValueError as err:
                return error(str(err))
        return wrapped

    async def page(request: Request):
        name = request.path_params.get("name", "index.html")
        if name not in _ASSETS:
            return Response("not found", status_code=404, media_type="text/plain")
        return Response(_asset(name), media_type=_ASSETS[name])

    async def state(request: Request):
        if plane_view is not None:
            return JSONResponse({"mode": "model", **plane_view.describe()})
        run = trainer.run
        return JSONResponse({
            "mode": "train", "config": run.config.to_dict(), "playing": trainer.playing,
            "step": run.steps, "version": run.version, "variants": list(_VARIANTS), "variant": trainer.fiedler_variant,
            "data": run.data(),
        })

    async def frame(request: Request):
        if plane_view is not None:
            return error("this server shows a saved model: ask /api/plane", 409)
        since = request.query_params.get("since", "-1")
        if not since.lstrip("-").isdigit():
            return error("since: expected an integer")
        current = trainer.run.last_frame
        if current is None or current.version <= int(since):
            return Response(status_code=204)
        return JSONResponse({**current.to_dict(), "playing": trainer.playing})

    async def control(request: Request):
        if plane_view is not None:
            return error("this server shows a saved model; there is no training to control", 409)
        action = request.path_params["action"]
        doc = await body_of(request)
        if action == "play":
            trainer.play()
        elif action == "pause":
            trainer.pause()
        elif action == "step":
            trainer.pause()
            trainer.tick()
        elif action == "reset":
            trainer.reset(ExploreConfig.from_request(doc.get("config", {})))
        elif action == "variant":
            variant = doc.get("variant")
            if variant not in _VARIANTS:
                raise ValueError(f"variant: expected one of {list(_VARIANTS)}, got {variant!r}")
            trainer.fiedler_variant = variant
            with trainer._lock:
                trainer.run.frame(fiedler_variant=variant, force_map=True)
        else:
            return error(f"action: expected play, pause, step, reset or variant, got {action!r}", 404)
        return JSONResponse({"playing": trainer.playing, "step": trainer.run.steps})

    async def traverse(request: Request):
        doc = await body_of(request)
        target = plane_view if plane_view is not None else trainer.run
        return JSONResponse(target.traverse(doc.get("p0"), doc.get("p1")).to_dict())

    async def region(request: Request):
        q = request.query_params
        target = plane_view if plane_view is not None else trainer.run
        return JSONResponse(target.region_at([q.get("x"), q.get("y")]))

    async def hulls(request: Request):
        if plane_view is not None:
            return error("class hulls are shown for the training run only", 409)
        layer = request.query_params.get("layer", "1")
        if not layer.isdigit():
            return error(f"layer: expected a positive integer, got {layer!r}")
        return JSONResponse(trainer.run.hulls(int(layer)).to_dict())

    async def plane(request: Request):
        if plane_view is None:
            return error("this server trains a toy network; start it with --model to view a saved one", 409)
        digits = request.query_params.get("classes", "")
        return JSONResponse(plane_view.frame(digits).to_dict())

    async def image(request: Request):
        if plane_view is None:
            return error("no saved model on this server", 409)
        q = request.query_params
        return JSONResponse(plane_view.image_at([q.get("x"), q.get("y")]))

    routes = [
        Route("/", page),
        Route("/static/{name}", page),
        Route("/api/state", guarded(state)),
        Route("/api/frame", guarded(frame)),
        Route("/api/control/{action}", guarded(control), methods=["POST"]),
        Route("/api/traverse", guarded(traverse), methods=["POST"]),
        Route("/api/region", guarded(region)),
        Route("/api/hulls", guarded(hulls)),
        Route("/api/plane", guarded(plane)),
        Route("/api/image", guarded(image)),
    ]
    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        if trainer is not None:
            trainer.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.trainer = trainer
    app.state.plane_view = plane_view
    return app


def bind_socket(port: int = 0) -> socket.socket:
    """A listening socket on 127.0.0.1 only (port 0: any free port), bound before the server
    starts so the URL printed is the one that answers; a taken port is a clear error."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as err:
        sock.close()
        raise ValueError(f"port: cannot listen on 127.0.0.1:{port} ({err.strerror}); pick another with --port") from None
    sock.listen(64)
    return sock


def one_thread_process() -> None:
    """Put this process's torch and BLAS on one thread, for good.

    A frame is hundreds of tiny tensor and eigen operations; on two busy cores, fanning each out
    to a thread pool made the Fiedler split alone 10-50x slower (bench/explore.py). Called by the
    `reluscope explore` command, which owns its process, never by the library behind a user's back.
    """
    import torch

    torch.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # threadpoolctl comes with scikit-learn; without it numpy keeps its threads
        pass


def serve(app: Any, sock: socket.socket, *, log_level: str = "warning") -> None:
    """Serve `app` on the bound socket until interrupted (the process runs on one thread)."""
    import uvicorn

    one_thread_process()
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, lifespan="on"))
    server.run(sockets=[sock])


def serve_in_thread(app: Any, sock: socket.socket):
    """Serve `app` from a daemon thread (for tests and the demo's screenshot); returns the uvicorn
    server and its thread. Stop with `server.should_exit = True; thread.join()`."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="reluscope-explore-server", daemon=True)
    thread.start()
    for _ in range(400):  # wait until it answers
        if server.started:
            break
        time.sleep(0.05)
    return server, thread
