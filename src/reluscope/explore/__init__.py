"""`reluscope explore`: a local, exact explorer of a small network's regions in the browser.

The computation (`ExploreRun`, `PlaneView`) is plain library code; `server` wraps it in a small
starlette app bound to 127.0.0.1 and serves the page's assets from the package. Importing this
package does not import starlette or uvicorn; `serve` and `create_app` do.
"""

from __future__ import annotations

from .config import Activation, ExploreConfig, OptimizerName, ToyData
from .run import ExploreRun
from .views import Frame, SegmentView

__all__ = ["ExploreConfig", "ExploreRun", "Frame", "SegmentView", "ToyData", "Activation", "OptimizerName"]
