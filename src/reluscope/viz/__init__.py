"""Plotting, scikit-learn style: each topic module `reluscope.viz.<topic>` has Display objects,
built with `XDisplay.from_model(...)` (computes) or `XDisplay.from_result(...)` (draws a result you
have), then `.plot(ax=None)`, which stores `ax_` and `figure_`. The `plot_*` functions are thin
wrappers that return the Axes. matplotlib is imported only when drawing (so `import reluscope.viz`
stays light); global rcParams are never touched. `report_figure` makes a figure outside pyplot
(for files) and `save_figure` writes one atomically.
"""

from ._common import Display, figure_bytes, report_figure, save_figure
from .patterns import HammingPathDisplay, UnitActivityDisplay, plot_hamming_along_path, plot_unit_activity

__all__ = [
    "Display", "figure_bytes", "report_figure", "save_figure",
    "HammingPathDisplay", "UnitActivityDisplay", "plot_hamming_along_path", "plot_unit_activity",
]
