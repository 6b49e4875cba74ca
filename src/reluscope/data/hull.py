"""The four 2-D point sets of the convex-hull paper (Jia et al., arXiv 1904.01399, Tables 1-2).

Shipped inside the package (`hull_toy/`, taken unchanged from the authors' repository
SamJia/RevisedGE, commit c2c534d; see its README), so nothing is downloaded.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

__all__ = ["HULL_TOY_SETS", "load_hull_toy", "read_point_file"]

HULL_TOY_SETS = ("Center", "Circles", "Moons", "Centers")


def read_point_file(path) -> np.ndarray:
    """float64 [N, D] from the paper's text format: a first line `N D`, then `id v1 ... vD`."""
    with open(path) as handle:
        header = handle.readline().split()
        if len(header) != 2:
            raise ValueError(f"path: expected a first line 'N D' in {path}, got {' '.join(header)!r}")
        n, d = (int(v) for v in header)
        rows = np.loadtxt(handle, ndmin=2)
    if rows.shape != (n, d + 1):
        raise ValueError(f"path: header says {n} points of dimension {d}, the file holds {rows.shape[0]} rows of {rows.shape[1] - 1} values")
    return rows[:, 1:]


def load_hull_toy(name: str) -> np.ndarray:
    """float64 [2000, 2]: one of Center, Circles, Moons, Centers."""
    if name not in HULL_TOY_SETS:
        raise ValueError(f"name: expected one of {', '.join(HULL_TOY_SETS)}, got {name!r}")
    with resources.as_file(resources.files(__package__) / "hull_toy" / f"{name}.txt") as path:
        return read_point_file(path)
