"""The demo report: each capability adds a `Section` computed from a shared `DemoContext`.

A topic module `reluscope.report.<topic>` defines `section(ctx: DemoContext) -> Section`, embeds
its figures with `figure_html(fig)` and is listed in `reluscope.report.demo._SECTIONS`.
`run_demo(out)` (`reluscope demo`, `make demo`) trains the demo networks and writes
`out/report.html`, `out/summary.json` and `out/figures/*.png`. Importing this package does not
import matplotlib.
"""

from .base import DemoContext, Section, build_report, figure_html, table_html
from .demo import DemoResult, run_demo

__all__ = ["Section", "DemoContext", "figure_html", "table_html", "build_report", "run_demo", "DemoResult"]
