"""Plotting. Every function imports matplotlib inside itself (so `import reluscope.viz` stays
light), takes `ax=None` (a new figure is made when None) and returns the Axes it drew on; global
rcParams are never touched. Topic modules: `reluscope.viz.<topic>`.
"""

from .patterns import plot_hamming_along_path, plot_unit_activity

__all__ = ["plot_hamming_along_path", "plot_unit_activity"]
