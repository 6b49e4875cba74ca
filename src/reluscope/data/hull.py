"""The four 2-D point sets of the convex-hull paper (Jia et al., arXiv 1904.01399, Tables 1-2).

Shipped inside the package (`hull_toy/`, taken unchanged from the authors' repository
SamJia/RevisedGE, commit c2c534d; see its README), so nothing is downloaded.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import os

__all__ = ["HULL_TOY_SETS", "load_hull_toy", "read_point_file"]

HULL_TOY_SETS = ("Center", "Circles", "Moons", "Centers")


def read_point_file(path: str | os.PathLike) -> np.ndarray:
    """float64 [N, D] from the paper's text format: "N D", then N lines "id v1 ... vD".

    The ids must be 0..N-1, each once, in any order; row `id` of the result is that line's point.

    Every malformed line is an error naming it: a duplicate id would leave an unset row, a negative
    one would wrap around and a fractional one be truncated, each silently using a wrong point.
    """
    with open(path) as fh:
        lines = [(i, line.split()) for i, line in enumerate(fh, 1)]
    lines = [(i, f) for i, f in lines if f]  # blank lines carry nothing
    if not lines or len(lines[0][1]) != 2:
        got = " ".join(lines[0][1]) if lines else "an empty file"
        raise ValueError(f"{path}: line 1: expected 'N D' (number of points, dimension), got {got!r}")
    try:
        n, d = (int(v) for v in lines[0][1])
    except ValueError:
        raise ValueError(f"{path}: line {lines[0][0]}: expected two integers 'N D', got {' '.join(lines[0][1])!r}") from None
    if n < 1 or d < 1:
        raise ValueError(f"{path}: line {lines[0][0]}: expected N >= 1 points of dimension D >= 1, got {n} {d}")
    if len(lines) - 1 != n:
        raise ValueError(f"{path}: the header declares {n} points, the file has {len(lines) - 1} point lines")
    x = np.empty((n, d))
    seen = np.zeros(n, dtype=bool)
    for lineno, fields in lines[1:]:
        if len(fields) != d + 1:
            raise ValueError(f"{path}: line {lineno}: expected 'id v1 ... v{d}' ({d + 1} numbers), got {len(fields)}")
        head = fields[0]
        if not (head.isascii() and head.isdigit()):
            raise ValueError(f"{path}: line {lineno}: expected an integer id in 0..{n - 1}, got {head!r}")
        k = int(head)
        if k >= n:
            raise ValueError(f"{path}: line {lineno}: id {k} is out of range; ids must be 0..{n - 1}")
        if seen[k]:
            raise ValueError(f"{path}: line {lineno}: id {k} appears twice; ids must be 0..{n - 1}, each once")
        try:
            row = np.array([float(v) for v in fields[1:]])
        except ValueError:
            raise ValueError(f"{path}: line {lineno}: expected {d} numbers after the id, got {' '.join(fields[1:])!r}") from None
        if not np.isfinite(row).all():
            raise ValueError(f"{path}: line {lineno}: expected finite coordinates, got {' '.join(fields[1:])!r}")
        x[k], seen[k] = row, True
    return x  # n lines, each id in range and none repeated: every row was set


def load_hull_toy(name: str) -> np.ndarray:
    """float64 [2000, 2]: one of Center, Circles, Moons, Centers."""
    if name not in HULL_TOY_SETS:
        raise ValueError(f"name: expected one of {', '.join(HULL_TOY_SETS)}, got {name!r}")
    with resources.as_file(resources.files(__package__) / "hull_toy" / f"{name}.txt") as path:
        return read_point_file(path)
