"""CantorNet (Lewandowski, Eghbalzadeh, Moser, 2024): a hand-built ReLU benchmark for folding.

A(x) = max(-3x + 1, 0, 3x - 2) on [0, 1]; A^k is A applied k times. The decision region is
R_k = {(x, y) in [0, 1]^2 : y <= g_k(x)} with g_k(x) = (A^k(x) + 1) / 2, whose piecewise-linear
boundary has its vertices at the endpoints of the 2^k intervals of the level-k Cantor set.

Three networks compute a readout N with R_k = {N <= 0}:

* A (recursion, 5 hidden units per level): h = (u, v) starts at (x, y); each level applies
  a = ReLU([[3, 0], [-3, 0], [0, 1]] h + [-2, 1, 0]), h = ReLU([[1, 1, 0], [0, 0, 1]] a) = (A(u), v);
  N = -u/2 + v - 1/2 = y - g_k(x).
* B and C (disjunctive normal form, O(2^k) units): g_k is 1 except for 2^(k-1) trapezoid valleys,
  one per level-(k-1) Cantor interval [c, d] (down from (c, 1) to 1/2 over its first third, flat,
  back up to (d, 1)), so N = max(y - 1, max over valleys of min(y - 1/2, y - down(x), y - up(x))).
  The min and max are built from ReLU gadgets, B: min(a, b) = ReLU(b) - ReLU(-b) - ReLU(b - a),
  C: min(a, b) = (ReLU(a + b) - ReLU(-a - b) - ReLU(b - a) - ReLU(a - b)) / 2, max(a, b) =
  -min(-a, -b), and values a later layer still needs pass through as ReLU(s) - ReLU(-s).

Readout: the authors pass N through a final ReLU and code its bit. Our Sequential ends with the
linear readout N instead (so `model(p) <= 0` is the decision and the output is not clamped), and
the same bit, N > 0, is the output bit that `path_folding(..., include_output=True)` codes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from .._checks import check_int
from ..results import Result
from . import folding_profile, path_folding

if TYPE_CHECKING:
    from .._types import ArrayLike

__all__ = [
    "cantornet", "CantorRegion", "cantor_region", "cantor_intervals", "cantor_boundary_vertices",
    "cantor_path", "REPRESENTATIONS", "CantorFolding", "cantornet_folding", "cantornet_spec", "rational_walk",
    "rational_patterns",
]

REPRESENTATIONS = ("A", "B", "C")


def _check_k(k) -> int:
    k = check_int(k, "k", what="recursion depth")
    if k > 12:
        raise ValueError(f"k: expected k <= 12 (representations B and C have O(2^k) units), got {k}")
    return int(k)


def cantor_intervals(k: int) -> list[tuple[Fraction, Fraction]]:
    """The 2^k closed intervals of the level-k Cantor set, exactly, left to right (k >= 0)."""
    intervals = [(Fraction(0), Fraction(1))]
    for _ in range(k):
        intervals = [part for a, b in intervals for part in ((a, a + (b - a) / 3), (b - (b - a) / 3, b))]
    return intervals


def cantor_boundary_vertices(k: int) -> list[tuple[Fraction, Fraction]]:
    """Vertices (x, g_k(x)) of R_k's boundary from the Cantor construction, exactly.

    Every endpoint of a level-k interval is a vertex: height 1 if it already ends a level-(k-1)
    interval, 1/2 if it appeared at level k.
    """
    k = _check_k(k)
    older = {e for iv in cantor_intervals(k - 1) for e in iv}
    xs = sorted({e for iv in cantor_intervals(k) for e in iv})
    return [(x, Fraction(1) if x in older else Fraction(1, 2)) for x in xs]


def _A(x):
    return torch.maximum(torch.maximum(-3 * x + 1, torch.zeros_like(x)), 3 * x - 2)


@dataclass(frozen=True)
class CantorRegion(Result):
    """The decision region R_k = {y <= g_k(x)}: `boundary(x)` is g_k, calling it on points [N, 2]
    gives bool [N] membership."""

    k: int

    def boundary(self, x: ArrayLike) -> torch.Tensor:
        x = torch.as_tensor(x)
        x = x if x.is_floating_point() else x.double()
        for _ in range(self.k):
            x = _A(x)
        return (x + 1) / 2

    def __call__(self, points: ArrayLike) -> torch.Tensor:
        p = torch.as_tensor(points)
        if p.dim() != 2 or p.shape[1] != 2:
            raise ValueError(f"points: expected shape [N, 2], got {list(p.shape)}")
        p = p if p.is_floating_point() else p.double()
        return p[:, 1] <= self.boundary(p[:, 0])

    def vertices(self) -> list[tuple[Fraction, Fraction]]:
        return cantor_boundary_vertices(self.k)


def cantor_region(k: int) -> CantorRegion:
    """R_k as a function of points (see `CantorRegion`)."""
    return CantorRegion(_check_k(k))


def cantor_path(dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """The authors' folding path: (0, 3/4) -> (1, 3/4)."""
    return torch.tensor([0.0, 0.75], dtype=dtype), torch.tensor([1.0, 0.75], dtype=dtype)


# ---------------------------------------------------------------- the networks, exactly
# Each network is first written down in exact rationals (a "spec": a list of (W, b) per Linear, a
# ReLU between consecutive ones), then converted to floats. Computing the weights in Fractions keeps
# them exact dyadic numbers where possible (3^k / 2, Cantor endpoints times 3^k / 2), and lets
# `cantornet_folding` walk the path in exact arithmetic: on (0, 3/4) -> (1, 3/4) some units of B and
# C are identically zero over whole pieces, and in floats rounding noise would decide their bits.

Spec = list  # [(W: list[list[Fraction]], b: list[Fraction]), ...]
F = Fraction


def _recursive(k: int) -> Spec:
    level = [([[F(3), F(0)], [F(-3), F(0)], [F(0), F(1)]], [F(-2), F(1), F(0)]),
             ([[F(1), F(1), F(0)], [F(0), F(0), F(1)]], [F(0), F(0)])]
    return level * k + [([[F(-1, 2), F(1)]], [F(-1, 2)])]


# A signal is an affine function of the current layer's outputs h: (coef [dim h], bias). A gadget
# layer turns pairs of signals into ReLU units whose pre-activations are combinations of signals,
# and gives back each result as a combination of the new units.

_GADGETS = {
    # min(a, b): units as combinations (c_a, c_b) of a and b, and the output as unit weights
    "B": ([(0, 1), (0, -1), (-1, 1)], [F(1), F(-1), F(-1)]),
    "C": ([(1, 1), (-1, -1), (-1, 1), (1, -1)], [F(1, 2), F(-1, 2), F(-1, 2), F(-1, 2)]),
}


def _gadget_layer(signals, jobs, rep):
    """One Linear+ReLU layer computing `jobs` ('min'|'max', i, j) or ('pass', i) on `signals`."""
    units, outs = [], []  # unit pre-activations as {signal: coef}; outputs as {unit: coef}
    for job in jobs:
        if job[0] == "pass":
            base = len(units)
            units += [{job[1]: 1}, {job[1]: -1}]
            outs.append({base: F(1), base + 1: F(-1)})
            continue
        op, i, j = job
        sign = 1 if op == "min" else -1  # max(a, b) = -min(-a, -b)
        combos, weights = _GADGETS[rep]
        base = len(units)
        for ca, cb in combos:
            units.append({i: sign * ca, j: sign * cb})
        outs.append({base + u: sign * w for u, w in enumerate(weights)})
    dim = len(signals[0][0])
    W = [[sum((c * signals[s][0][q] for s, c in u.items()), F(0)) for q in range(dim)] for u in units]
    b = [sum((c * signals[s][1] for s, c in u.items()), F(0)) for u in units]
    new = [([o.get(u, F(0)) for u in range(len(units))], F(0)) for o in outs]
    return (W, b), new


def _dnf(k: int, rep: str) -> Spec:
    signals = [([F(0), F(1)], F(-1))]  # y - 1
    valleys = []
    for c, d in cantor_intervals(k - 1):
        w = (d - c) / 3
        s = 1 / (2 * w)
        base = len(signals)
        signals += [([F(0), F(1)], F(-1, 2)),  # y - 1/2
                    ([s, F(1)], -1 - c * s),  # y - down(x), down from (c, 1) to (c + w, 1/2)
                    ([-s, F(1)], F(-1, 2) + (d - w) * s)]  # y - up(x), up from (d - w, 1/2) to (d, 1)
        valleys.append(base)
    spec = []
    # layer 1: min of the first two pieces of each valley; layer 2: min with the third
    jobs = [("pass", 0)] + [j for v in valleys for j in (("min", v, v + 1), ("pass", v + 2))]
    layer, signals = _gadget_layer(signals, jobs, rep)
    spec.append(layer)
    jobs = [("pass", 0)] + [("min", 1 + 2 * i, 2 + 2 * i) for i in range(len(valleys))]
    layer, signals = _gadget_layer(signals, jobs, rep)
    spec.append(layer)
    while len(signals) > 1:  # balanced max tree over y - 1 and the valleys
        jobs = [("max", i, i + 1) for i in range(0, len(signals) - 1, 2)]
        if len(signals) % 2:
            jobs.append(("pass", len(signals) - 1))
        layer, signals = _gadget_layer(signals, jobs, rep)
        spec.append(layer)
    (coef, bias), = signals
    return spec + [([coef], [bias])]


def cantornet_spec(k: int, representation: str = "A") -> Spec:
    """The exact rational weights of `cantornet(k, representation)`: [(W, b), ...] per Linear."""
    k = _check_k(k)
    if representation not in REPRESENTATIONS:
        raise ValueError(f"representation: expected one of {REPRESENTATIONS}, got {representation!r}")
    return _recursive(k) if representation == "A" else _dnf(k, representation)


def _linear(w, b, dtype) -> nn.Linear:
    w = torch.tensor([[float(v) for v in row] for row in w], dtype=dtype)
    layer = nn.Linear(w.shape[1], w.shape[0], dtype=dtype)
    with torch.no_grad():
        layer.weight.copy_(w)
        layer.bias.copy_(torch.tensor([float(v) for v in b], dtype=dtype))
    return layer


def cantornet(k: int, representation: str = "A", *, dtype: torch.dtype | None = None) -> nn.Sequential:
    """CantorNet of recursion depth k as an `nn.Sequential` [N, 2] -> [N, 1]; R_k = {output <= 0}.

    `representation` "A" (recursive, 5 units per level, k levels), "B" or "C" (disjunctive normal
    form from min/max gadgets, O(2^k) units, k + 2 hidden layers); see the module docstring.
    """
    spec = cantornet_spec(k, representation)
    dtype = dtype or torch.get_default_dtype()
    mods: list[nn.Module] = []
    for w, b in spec:
        mods += [_linear(w, b, dtype), nn.ReLU()]
    return nn.Sequential(*mods[:-1]).eval()


def rational_walk(spec: Spec, x0: Sequence[Fraction | int], x1: Sequence[Fraction | int]) -> tuple[list[Fraction], list[tuple[bool, ...]]]:
    """Exact traversal of x0 -> x1 (rational points) through a rational ReLU net: (t, patterns).

    Patterns include the output sign bit. A unit identically zero on a piece has bit 0, exactly as
    the definition z > 0 says; floats cannot tell such a unit from one at +-1e-17.
    """
    sparse = [([[(q, wq) for q, wq in enumerate(row) if wq] for row in w], b) for w, b in spec]
    x0 = [F(v) for v in x0]
    d = [F(v) - a for v, a in zip(x1, x0)]
    t, ts, pats = F(0), [F(0)], []
    while t < 1:
        alpha, beta = list(x0), list(d)  # the layer input as alpha + beta * t along the path
        bits, nxt = [], F(1)
        for rows, b in sparse:
            za = [sum((wq * alpha[q] for q, wq in row), F(0)) + bb for row, bb in zip(rows, b)]
            zb = [sum((wq * beta[q] for q, wq in row), F(0)) for row in rows]
            on = []
            for a_, b_ in zip(za, zb):
                v = a_ + b_ * t
                on.append(v > 0 or (v == 0 and b_ > 0))  # the sign just after t
                if b_ != 0 and t < -a_ / b_ < nxt:
                    nxt = -a_ / b_
            bits += on
            alpha = [a_ if o else F(0) for a_, o in zip(za, on)]
            beta = [b_ if o else F(0) for b_, o in zip(zb, on)]
        pats.append(tuple(bits))
        ts.append(nxt)
        t = nxt
    keep = [0] + [i for i in range(1, len(pats)) if pats[i] != pats[i - 1]]  # merge equal neighbours
    return [ts[i] for i in keep] + [F(1)], [pats[i] for i in keep]


# ---------------------------------------------------------------- folding along the authors' path


def rational_patterns(spec: Spec, points: Iterable[Sequence[Fraction | int]]) -> list[tuple[bool, ...]]:
    """Exact patterns (hidden bits, then the output sign bit) of rational points."""
    out = []
    for p in points:
        h, bits = [F(v) for v in p], []
        for w, b in spec:
            z = [sum((wq * hq for wq, hq in zip(row, h) if wq), F(0)) + bb for row, bb in zip(w, b)]
            bits += [v > 0 for v in z]
            h = [max(v, F(0)) for v in z]
        out.append(tuple(bits))
    return out


@dataclass(frozen=True)
class CantorFolding(Result):
    """chi of CantorNet(k, representation) along (0, 3/4) -> (1, 3/4).

    `chi_exact`: every region, in exact rational arithmetic (the reference). `chi_float`: exact
    traversal of the float64 network, where rounding noise can flip the bits of units that are
    identically zero on a piece (B and C on this path), adding spurious regions. `chi_grid`: the
    papers' `n_points` equally spaced samples (exact arithmetic).
    """

    k: int
    representation: str
    hidden_units: int
    regions: int
    regions_float: int
    chi_exact: float
    chi_float: float
    chi_grid: float
    n_points: int
    running_exact: np.ndarray = field(repr=False)
    running_grid: np.ndarray = field(repr=False)
    t_exact: np.ndarray = field(repr=False)  # region boundaries of the exact walk


def cantornet_folding(ks: Sequence[int] = (1, 2, 3, 4, 5), representations: Sequence[str] = REPRESENTATIONS, *,
                      n_points: int = 11) -> list[CantorFolding]:
    """The CantorNet folding table: one row per (k, representation), exact vs `n_points` samples.

    The readout bit is coded, as the authors do (their readout passes a ReLU).
    """

    x0, x1 = cantor_path()
    q0, q1 = (F(0), F(3, 4)), (F(1), F(3, 4))
    grid_t = [F(i, n_points - 1) for i in range(n_points)]
    rows = []
    for k in ks:
        for rep in representations:
            spec = cantornet_spec(k, rep)
            ts, pats = rational_walk(spec, q0, q1)
            exact = folding_profile(torch.tensor(pats, dtype=torch.bool))
            grid = folding_profile(torch.tensor(rational_patterns(
                spec, [tuple(a + t * (b - a) for a, b in zip(q0, q1)) for t in grid_t]), dtype=torch.bool))
            flt = path_folding(cantornet(k, rep, dtype=torch.float64), x0, x1, include_output=True)
            hidden = sum(len(b) for _, b in spec[:-1])
            rows.append(CantorFolding(
                k, rep, hidden, len(pats), flt.n_patterns, exact.chi, flt.chi, grid.chi, n_points,
                exact.running_chi, grid.running_chi, np.array([float(t) for t in ts]),
            ))
    return rows
