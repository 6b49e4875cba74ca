"""Report section: exact linear regions of the moons MLP, its dual graph's Fiedler partition, a
frame strip of the regions over training, counts and topology, and a plane through three MNIST
digits of the MNIST MLP.

Every region map shown is checked by `reluscope.testing.regions.check_region_map` (areas, affine
maps, patterns) before it is drawn, and compared with the grid-sampling reference.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict

import numpy as np
import torch

from .._checks import single_thread
from ..regions import GraphVariant, Plane, fiedler_partition, fiedler_score, regions_2d
from ..regions.recorder import TopologyRecorder
from ..regions.topology import cell_counts, random_summary, sublevel_summary
from ..testing.regions import check_against_grid, check_region_map
from ..train import mlp, train_classifier
from ..viz import report_figure
from ..viz.regions import plot_betti_curves, plot_fiedler, plot_region_frames, plot_regions
from .base import DemoContext, Section, figure_html, table_html

__all__ = ["section"]


def _box_around(x: torch.Tensor, margin: float = 0.3):
    lo, hi = x.min(0).values.double(), x.max(0).values.double()
    pad = margin * (hi - lo)
    return (float(lo[0] - pad[0]), float(hi[0] + pad[0]), float(lo[1] - pad[1]), float(hi[1] + pad[1]))


def section(ctx: DemoContext) -> Section:

    with single_thread():  # tiny nets and many small operations: one thread is fastest
        return _section(ctx)


def _section(ctx: DemoContext) -> Section:

    x, y = ctx.toy_data
    box = _box_around(x)
    parts, summary = [], {}

    # 1. the trained moons net: regions, decision boundary, Fiedler partition
    t0 = time.perf_counter()
    rm = regions_2d(ctx.toy_model, box=box)
    seconds = time.perf_counter() - t0
    check_region_map(rm)
    grid_seen = check_against_grid(rm, ctx.toy_model, n=200)
    part = fiedler_partition(rm)
    score = fiedler_score(rm, part)
    fig, axes = report_figure(1, 2, figsize=(11, 5))
    plot_regions(rm, ax=axes[0], points=x, labels=y)
    plot_fiedler(rm, part, ax=axes[1])
    parts.append(figure_html(fig, caption=(
        f"Moons MLP 2-16-16-2: {rm.n_regions} exact linear regions ({seconds * 1000:.0f} ms), coloured by a hash "
        f"of their activation pattern, decision boundary in black; right: the dual graph's Fiedler "
        f"partition ({part.variant.value}). Area-weighted agreement with the decision "
        f"{score.agreement:.3f}, Cohen's kappa {score.kappa:.3f}{' (degenerate split)' if score.degenerate else ''}. "
        f"A 200x200 grid sees only {grid_seen} of the regions.")))
    counts = cell_counts(rm)
    rnd = random_summary(rm, n_orders=4, seed=ctx.seed)
    sub = sublevel_summary(rm, output=1)
    summary["moons"] = {**asdict(counts), "seconds": seconds, "grid_200_patterns": grid_seen, **{f"fiedler_{k}": v for k, v in asdict(score).items()},
                        "random_max_beta1": rnd.max_beta1, **{f"sublevel_{k}": v for k, v in sub.as_row().items()}}

    # 2. regions over training: a fresh copy of the architecture trained on the same data
    model = mlp(2, [16, 16], 2, seed=ctx.seed)
    epochs = 40 if ctx.quick else 150
    steps_per_epoch = -(-len(x) // 64)
    every = max(1, epochs * steps_per_epoch // 8)
    rec = TopologyRecorder(box=box, n_orders=2, keep_frames=True, seed=ctx.seed, variants=(GraphVariant.LENGTH_RW,))
    train_classifier(model, x, y, epochs=epochs, lr=3e-3, batch_size=64, seed=ctx.seed, callbacks=[rec], callback_every=every)
    frames = rec.frames[:: max(1, len(rec.frames) // 6)][:6]
    fig, axes = report_figure(1, len(frames), figsize=(2.5 * len(frames), 2.7))
    plot_region_frames(frames, axes=np.atleast_1d(axes))
    parts.append(figure_html(fig, caption="Regions over training (same colours = same activation pattern at every step)."))
    keys = ("step", "faces", "edges", "vertices", "fiedler_length_rw_agreement", "fiedler_length_rw_kappa",
            "fiedler_straight_kappa", "random_max_beta1", "sublevel_n_pairs0")
    rows = [{k: r.as_row()[k] for k in keys} for r in rec.records]
    parts.append(table_html(rows))
    summary["training"] = rows

    fig, ax = report_figure(figsize=(6, 3.5))
    plot_betti_curves(rnd, ax=ax, label="(trained)")
    parts.append(figure_html(fig, caption="Random filtrations of the trained net's complex (faces in random order, with their edges and vertices): mean Betti curves over 4 orders."))

    # 3. a plane through three MNIST test digits of the MNIST MLP
    xm, ym = ctx.mnist_test
    picks = [int(torch.nonzero(ym == d)[0]) for d in (0, 1, 7)]
    plane = Plane.through_points(*(xm[i].double() for i in picks))
    mnist = copy.deepcopy(ctx.mnist_model).double()
    t0 = time.perf_counter()
    rmm = regions_2d(mnist, plane=plane, box=plane.box_around_anchors(0.15))
    mseconds = time.perf_counter() - t0
    check_region_map(rmm, n_interior=1)
    fig, ax = report_figure(figsize=(5.5, 5.5))
    plot_regions(rmm, ax=ax, decision_boundary=False, linewidth=0.1)
    ax.scatter(plane.anchors[:, 0], plane.anchors[:, 1], c="black", s=25)
    for (s, t), d in zip(plane.anchors.tolist(), (0, 1, 7)):
        ax.annotate(str(d), (s, t), fontsize=12, fontweight="bold")
    parts.append(figure_html(fig, caption=f"MNIST MLP 784-64-64-10 on the plane through test digits 0, 1, 7: {rmm.n_regions} regions ({mseconds:.2f} s)."))
    summary["mnist_plane"] = {"faces": rmm.n_regions, "seconds": mseconds}
    return Section("Linear regions of 2-D slices, dual graph and topology", "\n".join(parts), summary)
