"""Report section: space folding (CantorNet curves and table; chi histogram of the demo MNIST net)."""

from __future__ import annotations

import html

import numpy as np
import torch

from ..folding import global_folding
from ..folding.cantor import cantornet_folding
from ..viz.folding import plot_cantornet_curves, plot_folding_histogram
from .base import DemoContext, Section, figure_html, table_html

__all__ = ["section"]


def section(ctx: DemoContext) -> Section:

    k_max = 4 if ctx.quick else 5
    rows = cantornet_folding(range(1, k_max + 1), n_points=11)
    table = [{"k": r.k, "representation": r.representation, "hidden units": r.hidden_units,
              "regions on path": r.regions, "chi exact": r.chi_exact, "chi float64 traversal": r.chi_float,
              "chi 11 points": r.chi_grid} for r in rows]
    curves = plot_cantornet_curves(rows)

    x, y = ctx.mnist_test
    budget = 200 if ctx.quick else 1000
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=ctx.generator("folding")))
    exact = global_folding(ctx.mnist_model, x, y, classes=(1, 4), budget=budget, seed=seed)
    grid = global_folding(ctx.mnist_model, x, y, classes=(1, 4), budget=budget, seed=seed, n_points=11)
    ax = plot_folding_histogram(exact.chi, label="exact traversal", title="demo MNIST net: chi on segments digit 1 -> digit 4")
    plot_folding_histogram(grid.chi, ax=ax, label="11 points")
    mnist_rows = [
        {"walk": name, "segments": len(r.chi), "Phi (median chi > 0)": r.value, "mean chi": r.aggregate("mean"),
         "max chi": r.aggregate("max"), "share folded": r.aggregate("share_folded"),
         "patterns per walk": float(r.n_patterns.mean())}
        for name, r in (("exact", exact), ("11 points", grid))
    ]
    a_vs_bc = {r.k: r.chi_exact for r in rows if r.representation == "A"}
    body = (
        "<p>chi = 1 - r1/r2 of the walk of activation patterns along a segment (r1: farthest Hamming "
        "distance from the start, r2: total Hamming length); output bits included, as in the authors' "
        "code. Exact walks visit every linear region on the segment; the papers sample 11 points.</p>"
        "<h3>CantorNet along (0, 3/4) &rarr; (1, 3/4)</h3><p>exact: rational arithmetic; float64: "
        "exact traversal of the float network, where rounding can flip units that are identically zero "
        "on a piece (representation C).</p>"
        + table_html(table) + figure_html(curves[0].figure, caption="Running chi along the path; solid: exact, dashed: 11 points.")
        + "<h3>Demo MNIST net, digits 1 vs 4</h3>" + table_html(mnist_rows)
        + figure_html(ax.figure, caption=html.escape(f"{budget} random test pairs (seed {seed})."))
    )
    summary = {
        "cantornet": table,
        "cantornet_A_folds_more_than_B_and_C": all(
            a_vs_bc[r.k] >= r.chi_exact for r in rows if r.representation != "A"),
        "mnist": mnist_rows,
        "mnist_grid_differs_share": float(np.mean(np.abs(exact.chi - grid.chi) > 1e-12)),
    }
    return Section("Space folding", body, summary)
