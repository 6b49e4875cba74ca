"""Report section: RGE hulls of the paper's four 2-D toy sets, and nearest-convex-hull accuracy
per layer of the demo MNIST MLP next to the network's own (a small subset per class)."""

from __future__ import annotations

from ..data import load_hull_toy, sample_per_class
from ..experiments.hulls import layer_activations
from ..hull import overfitting_report, revised_greedy_expansion
from ..train import accuracy
from ..viz.hull import plot_nch_layers, plot_rge
from .base import DemoContext, Section, figure_html, table_html

__all__ = ["section"]

PAPER_ERROR = {"Center": 0.000, "Circles": 0.053, "Moons": 0.039, "Centers": 0.038}


def section(ctx: DemoContext) -> Section:
    import matplotlib.pyplot as plt

    parts, summary = [], {}
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.2))
    rows = []
    for ax, (name, perr) in zip(axes, PAPER_ERROR.items()):
        x = load_hull_toy(name)
        r = revised_greedy_expansion(x, kcha_sample=300 if ctx.quick else None)
        plot_rge(x, r.indices, ax=ax, title=f"{name}: |E|={r.size}, error {r.error:.3f}")
        rows.append({"set": name, "size_E": r.size, "error": r.error, "paper_error": perr, "seconds": r.seconds})
    parts.append("<p>Revised Greedy Expansion (eps 0.03, stop 0.06) on the paper's toy sets "
                  "(2,000 points each; the paper's implementation took 9 to 46 s per set). "
                  + ("Quick report: KCHA seeded from 300 random points (the paper and the default use all)."
                     if ctx.quick else "KCHA on all points, as in the paper.") + "</p>")
    parts.append(figure_html(fig, caption="Selected points E (red) and their hull."))
    parts.append(table_html(rows, floatfmt=".3f"))
    summary["rge"] = rows
    # NCH vs network on the demo MNIST MLP
    per_tr, per_te = (10, 5) if ctx.quick else (20, 10)
    gen = ctx.generator("hull")
    xtr, ytr = ctx.mnist_train
    xte, yte = ctx.mnist_test

    itr = sample_per_class(ytr, per_tr, generator=gen)
    ite = sample_per_class(yte, per_te, generator=gen)
    a_tr = layer_activations(ctx.mnist_model, xtr[itr])
    a_te = layer_activations(ctx.mnist_model, xte[ite])
    report = overfitting_report(
        [(n, a, b) for (n, a), (_, b) in zip(a_tr, a_te)], ytr[itr].numpy(), yte[ite].numpy(),
        net_train=accuracy(ctx.mnist_model, xtr[itr], ytr[itr]), net_test=accuracy(ctx.mnist_model, xte[ite], yte[ite]),
    )
    rows = [vars(r) for r in report]
    parts.append(f"<p>Nearest-convex-hull classifier per layer of the demo MNIST MLP ({per_tr} training "
                 f"points per class, leave-one-out; {per_te} test points per class).</p>")
    parts.append(figure_html(plot_nch_layers(rows).figure, caption="NCH accuracy by layer vs the network's."))
    parts.append(table_html(rows, floatfmt=".3f"))
    best = max(rows, key=lambda r: r["nch_train"])  # layer chosen by leave-one-out training accuracy, never on test
    summary["nch"] = rows
    summary["nch_beats_network_on_test"] = bool(best["nch_test"] > best["net_test"])
    return Section("Convex hulls in activation space", "\n".join(parts), summary)
