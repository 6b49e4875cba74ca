"""Report section: tangent similarities of the demo MNIST MLP (gap histograms, classifiers)."""

from __future__ import annotations

import torch

from ..data import sample_per_class
from ..tangent import (
    LandmarkClassifier, LinearSimilarityClassifier, goodness_curve, per_input_gap, sign_agreement_mask,
    similarity_gap, tangent_similarity,
)
from ..train import accuracy
from ..viz import report_figure
from ..viz.tangent import plot_gap_histograms
from .base import DemoContext, Section, figure_html, table_html

__all__ = ["section"]


def section(ctx: DemoContext) -> Section:

    k = 10 if ctx.quick else 25
    gen = ctx.generator("tangent")
    (xt, yt), (xs, ys) = ctx.mnist_train, ctx.mnist_test
    test, land = sample_per_class(ys, k, generator=gen), sample_per_class(yt, k, generator=gen)
    xs, ys, xl, yl = xs[test], ys[test], xt[land], yt[land]
    model = ctx.mnist_model
    mask = sign_agreement_mask(model, xl, yl)
    n = xs.shape[0]
    both = torch.cat([xs, xl])
    rows, gaps = [], {}
    net = accuracy(model, xs, ys)
    for metric, extra in (("block", {}), ("sparse", {"mask": mask}), ("full", {}), ("hidden", {})):
        # per output, unnormalised: the form Euler's identity ties to the logits (see experiments.tangent)
        opts = {} if metric == "hidden" else {"normalize": False}
        if metric == "sparse":
            opts["per_output"] = False  # the authors' summed form: 10x fewer features to hold
        s_all = tangent_similarity(model, both, metric=metric, **opts, **extra)
        s = s_all[:n, :n]
        gap = similarity_gap(s, ys)
        gaps[metric] = per_input_gap(s, ys).numpy()
        rows.append({
            "metric": metric, "gap": gap.gap, "same-class mean": gap.same, "cross-class mean": gap.cross,
            "eps at gamma=0": goodness_curve(s, ys, gammas=[0.0]).eps_at(0.0),
            "landmark acc.": LandmarkClassifier().fit(s_all[n:, n:], yl).score(s_all[:n, n:], ys),
            "linear acc.": LinearSimilarityClassifier().fit(s_all[n:, n:], yl).score(s_all[:n, n:], ys),
        })
    fig, axes = report_figure(1, 2, figsize=(10, 3.6))
    plot_gap_histograms({"block": gaps["block"]}, ax=axes[0], title="block metric")
    plot_gap_histograms({"sparse": gaps["sparse"]}, ax=axes[1], title="sparse metric")
    best_block = max(r["linear acc."] for r in rows if r["metric"] == "block")
    body = (
        f"<p>Tangent features g(x) = d f(x)/d theta of the demo MNIST MLP, per output, not "
        f"normalised (min-max scaling put the landmark classifier at chance level in our runs); {k} test images per class, {k} training images per class as landmarks "
        f"(the sparse metric, on summed gradients, uses the sign-agreement mask with threshold 1.15 computed from the landmarks and "
        f"keeps {mask.fraction:.1%} of the coordinates). Network accuracy on these test images: "
        f"{net:.3f}.</p>" + table_html(rows)
        + figure_html(fig, caption="Per-input gap (same-class mean minus cross-class mean similarity), scaled by its std.")
    )
    summary = {"network_accuracy": net, "metrics": rows, "sparse_fraction": mask.fraction,
               "block_at_least_as_good_as_network": best_block >= net}
    return Section("Tangent similarities", body, summary)
