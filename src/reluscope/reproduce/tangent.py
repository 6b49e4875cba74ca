"""`reluscope reproduce tangent`: Racz & Daroczy's gradient-similarity claims, with verdicts.

The authors' CNN trained on MNIST (and Fashion-MNIST at paper scale); block-metric similarities,
per output and without normalisation; classifiers on the similarities to landmark images compared
with the network on the same test images. Protocol and verdict rules: docs/methods.md, section 5.
"""

from __future__ import annotations

import math
from dataclasses import replace

from ..experiments.tangent import TangentConfig, TangentDatasetResult, dataset_task  # noqa: F401 (the task and its types)
from ..viz import report_figure
from ..viz.tangent import plot_gap_histograms
from ._framework import Claim, ClaimResult, PaperResult, RunContext, Scale, Verdict

TITLE = "Gradient representations in ReLU networks as similarity functions (Racz & Daroczy)"
CITATION = "Racz, Daroczy, Gradient representations in ReLU networks as similarity functions, ESANN 2021 (arXiv 2110.13581)"

AS_GOOD = Claim("as_good", "A rank-one (block) metric on the tangent space gives a similarity at least as good as the network",
                "at least as good as the network (CIFAR-10 CNN, 200 test images per class)")
GOODNESS = Claim("goodness", "The block similarity is good: same-class mean similarity above the other-class mean",
                 "positive similarity gap; (eps, gamma)-good with small eps")
SPARSE = Claim("sparse", "The sparse (sign-agreement) metric increases the similarity gap",
               "the sparse metric raises the gap over the dense tangent metric")


def config_for(scale: Scale, seed: int):
    if scale is Scale.PAPER:
        return TangentConfig(seed=seed)  # the fair scale: 20,000 training images, 100 + 100 per class, 2,000 held out
    return replace(TangentConfig.quick(), seed=seed)


def _se(a: float, b: float, n: int) -> float:
    """Standard error of the difference of two accuracies on n images (unpaired, conservative)."""
    return math.sqrt((a * (1 - a) + b * (1 - b)) / n)


def as_good_verdict(rows: list[dict]) -> tuple[Verdict, str]:
    """Per dataset: the held-out linear classifier's accuracy against the network's minus one
    standard error of the difference. All datasets: reproduced; some: partly; none: not."""
    ok = [r["similarity"] >= r["network"] - _se(r["similarity"], r["network"], r["n"]) for r in rows]
    names = ", ".join(r["dataset"] for r, o in zip(rows, ok) if not o)
    if all(ok):
        return Verdict.REPRODUCED, "The similarity classifier is within one standard error of the network or above it."
    if any(ok):
        return Verdict.PARTLY, f"Below the network by more than one standard error on {names}."
    return Verdict.NOT_REPRODUCED, f"Below the network by more than one standard error on {names}."


def goodness_verdict(rows: list[dict]) -> tuple[Verdict, str]:
    """reproduced: positive gap and a majority of test images satisfying the criterion everywhere."""
    ok = [r["gap"] > 0 and r["share_good"] > 0.5 for r in rows]
    if all(ok):
        return Verdict.REPRODUCED, "Positive gap; most test images have a higher same-class mean."
    return (Verdict.PARTLY if any(ok) else Verdict.NOT_REPRODUCED), "The gap or the share of good images fails on some data."


def sparse_verdict(rows: list[dict]) -> tuple[Verdict, str]:
    """Compared scale-free: the share of test images meeting the goodness criterion, sparse vs
    the dense (Euclidean) tangent metric on the same per-output gradients."""
    up = [r["sparse"] > r["dense"] for r in rows]
    if all(up):
        return Verdict.REPRODUCED, "The sparse metric raises the share of good test images on every data set."
    if any(up):
        return Verdict.PARTLY, "The sparse metric helps on some data sets only."
    return Verdict.NOT_REPRODUCED, "The sparse metric does not raise the share of good test images."


def run(ctx: RunContext) -> PaperResult:
    config = config_for(ctx.scale, ctx.seed)
    results = ctx.map(dataset_task, [replace(config, datasets=(name,)) for name in config.datasets],
                      desc="tangent datasets")
    rows_good, rows_acc, rows_sparse = [], [], []
    for r in results:
        acc = r.classifier_accuracy
        rows_acc.append({"dataset": r.dataset, "network": r.network_accuracy, "similarity": acc["block/linear-heldout"],
                         "n": r.n_test, "landmark": acc["block/landmark"], "linear_on_landmarks": acc["block/linear"]})
        rows_good.append({"dataset": r.dataset, "gap": r.gaps["block"]["gap"], "share_good": r.share_good["block"]})
        rows_sparse.append({"dataset": r.dataset, "sparse": r.share_good["sparse"], "dense": r.share_good["euclidean"],
                            "gap_sparse": r.gaps["sparse"]["gap"], "gap_dense": r.gaps["euclidean"]["gap"],
                            "kept": r.sparse_fraction})
    figure = ctx.save_figure(_figure(results), "tangent_accuracy")
    gaps_fig = ctx.save_figure(_gap_figure(results), "tangent_gaps")
    v1, why1 = as_good_verdict(rows_acc)
    v2, why2 = goodness_verdict(rows_good)
    v3, why3 = sparse_verdict(rows_sparse)
    claims = (
        ClaimResult(AS_GOOD, "; ".join(
            f"{r['dataset']}: network {r['network']:.3f}, block-metric linear classifier {r['similarity']:.3f} "
            f"(fitted on held-out images), landmark {r['landmark']:.3f}" for r in rows_acc), v1,
            figures=(figure,), notes=why1 + " " + _variants_text(results), values={"rows": rows_acc}),
        ClaimResult(GOODNESS, "; ".join(
            f"{r['dataset']}: gap {r['gap']:.3g}, {r['share_good']:.3f} of test images good" for r in rows_good), v2,
            figures=(gaps_fig,), notes=why2 + " Criterion: per test image, mean similarity to its own class above "
                                              "the mean over the other classes (gamma = 0).",
            values={"rows": rows_good}),
        ClaimResult(SPARSE, "; ".join(
            f"{r['dataset']}: share good sparse {r['sparse']:.3f} vs dense {r['dense']:.3f} ({r['kept']:.1%} of "
            "coordinates kept)" for r in rows_sparse), v3,
            figures=(gaps_fig,), notes=why3 + " Gaps in raw units are not comparable between metrics of different "
                                              "dimension, hence the scale-free share.", values={"rows": rows_sparse}),
    )
    notes = (
        f"Scale {ctx.scale.value}: {', '.join(config.datasets)}; CNN width {config.width}, {config.n_train:,} training "
        f"images, {config.epochs} epochs; {config.per_class} test and {config.landmarks_per_class} landmark images per "
        f"class; linear classifier also fitted on {config.n_heldout:,} held-out training images."
        + (" Smaller than the fair scale (20,000 training images, 100 + 100 per class, 2,000 held out): run "
           "--scale paper for it." if ctx.quick else ""),
        "The authors used CIFAR-10, which is not available offline here; the same CNN runs on 28x28 images.",
        "Tangent features per output, no normalisation (the defaults; see docs/methods.md for why).",
    )
    return PaperResult(paper=ctx.paper, title=TITLE, citation=CITATION, scale=ctx.scale, claims=claims,
                       settings=vars(config), notes=notes)


def _variants_text(results) -> str:
    parts = []
    for r in results:
        v = r.variant_accuracy
        if v:
            parts.append(f"{r.dataset}, landmark classifier on other forms of the block metric: " + ", ".join(
                f"{k} {x['landmark']:.3f}" for k, x in v.items()))
    return "; ".join(parts) + "." if parts else ""


def _figure(results):
    fig, axes = report_figure(1, len(results), figsize=(6 * len(results), 3.6), squeeze=False)
    for ax, r in zip(axes[0], results):
        names = ["network"] + list(r.classifier_accuracy) + [f"block/{k} (landmark)" for k in r.variant_accuracy]
        vals = ([r.network_accuracy] + list(r.classifier_accuracy.values())
                + [x["landmark"] for x in r.variant_accuracy.values()])
        ax.barh(names, vals, color=["#555"] + ["#4a7"] * len(r.classifier_accuracy) + ["#c84"] * len(r.variant_accuracy))
        ax.axvline(r.network_accuracy, color="k", lw=0.8)
        ax.set_xlim(0, 1)
        ax.set_title(f"{r.dataset}: test accuracy")
    return fig


def _gap_figure(results):
    fig, axes = report_figure(len(results), 2, figsize=(10, 3.4 * len(results)), squeeze=False)
    for row, r in zip(axes, results):
        for ax, metric in zip(row, ("block", "sparse")):
            plot_gap_histograms({metric: r.per_input_gaps[metric]}, ax=ax, title=f"{r.dataset}: {metric} metric")
    return fig
