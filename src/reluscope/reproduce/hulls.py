"""`reluscope reproduce hulls`: Jia et al., convex hulls in activation space.

Claims checked:
1. Revised Greedy Expansion (KCHA on all points, eps 0.03, stop 0.06) approximates the hulls of the
   four 2-D toy sets with |E| <= N/10 (paper, Table 1: errors 0.000 / 0.053 / 0.039 / 0.038).
2. The nearest-convex-hull classifier on a hidden layer beats the network on the test set (paper:
   0.983 vs 0.94 on MNIST). The layer is chosen on a validation split, never on the test set.
3. Misinclusion (share of points inside another class's hull, tolerance 0.03 of the hull's
   radius) is near zero in the lower layers; we call <= 1% of test points "near zero".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import TYPE_CHECKING

from ..data import load_hull_toy
from ..experiments.hulls import QUICK, paper_configs, run_hulls_experiment
from ..hull import revised_greedy_expansion
from ..viz import report_figure
from ..viz.hull import NCHLayersDisplay, RGEDisplay
from ._framework import Claim, ClaimResult, PaperResult, RunContext, Verdict

if TYPE_CHECKING:
    from ..experiments.hulls import HullsSummary

TITLE = "On Geometric Structure of Activation Spaces in Neural Networks (Jia et al.)"
CITATION = "Jia, Wang, Shao, Long, Zhou, Wang; arXiv 1904.01399; Neurocomputing 499 (2022) 93-105"
PAPER_ERROR = {"Center": 0.000, "Circles": 0.053, "Moons": 0.039, "Centers": 0.038}
NEAR_ZERO = 0.01

CLAIMS = (
    Claim("rge_toy", "RGE approximates each toy set's hull within the stop distance 0.06, with |E| <= N/10",
          "errors 0.000 / 0.053 / 0.039 / 0.038 (Center / Circles / Moons / Centers), 9-46 s per set"),
    Claim("nch_beats_network", "Nearest-convex-hull classification on a hidden layer beats the network on test data",
          "MNIST 4x1024 ReLU MLP: NCH 0.983 vs network 0.94"),
    Claim("misinclusion_low", "Misinclusion is near zero in the lower layers",
          "near 0 (figures per data set in the paper)"),
)


def rge_claim(rows: Sequence[dict]) -> ClaimResult:
    """rows: one dict per toy set with name, size, n, error, seconds (JSON rows of the report)."""
    ok = all(r["error"] <= 0.06 + 1e-9 and r["size"] <= r["n"] // 10 for r in rows)
    ours = " / ".join(f"{r['error']:.3f}" for r in rows) + " ; " + ", ".join(f"{r['seconds']:.1f} s" for r in rows)
    worse = [r["name"] for r in rows if r["error"] > PAPER_ERROR[r["name"]] + 0.005]
    notes = "KCHA on all points (the paper's setting). " + (
        f"Above the paper's error (still within stop) on: {', '.join(worse)}." if worse else "At or below the paper's errors.")
    return ClaimResult(CLAIMS[0], ours, Verdict.REPRODUCED if ok else Verdict.NOT_REPRODUCED, notes=notes,
                       values={"rows": rows})


def nch_claims(summary: Sequence[HullsSummary], quick: bool) -> tuple[ClaimResult, ClaimResult]:
    """summary: `HullsResult.summary()`, one entry per (dataset, activation)."""
    beats = {s.key: s.nch_beats_network for s in summary}
    ours = "; ".join(f"{s.key}: NCH {s.nch_test:.3f} vs net {s.net_test:.3f} (layers {', '.join(s.chosen_layers)})"
                     for s in summary)
    verdict = Verdict.REPRODUCED if all(beats.values()) else Verdict.PARTLY if any(beats.values()) else Verdict.NOT_REPRODUCED
    scale = ("quick scale: 4x256 MLPs on 10,000 images, hulls of 150 points per class; the paper's size is "
             "--scale paper" if quick else "paper scale")
    c2 = ClaimResult(CLAIMS[1], ours, verdict, notes=f"Layer chosen on a held-out validation split; {scale}.",
                     values={s.key: s for s in summary})
    mis = {s.key: s.first_layer_misinclusion_test for s in summary}
    top = {s.key: s.max_misinclusion_test for s in summary}
    low = all(m <= NEAR_ZERO for m in mis.values())
    c3 = ClaimResult(CLAIMS[2], "; ".join(f"{k}: first hidden layer {mis[k]:.3f} (max over layers {top[k]:.3f})" for k in mis),
                     Verdict.REPRODUCED if low else Verdict.NOT_REPRODUCED,
                     notes=f"'near zero' read as <= {NEAR_ZERO} of test points in the first hidden layer; tolerance "
                           "0.03 of each hull's radius.", values={"first_layer": mis, "max_over_layers": top})
    return c2, c3


def run(ctx: RunContext) -> PaperResult:
    rows = []
    fig, axes = report_figure(1, 4, figsize=(12, 3.2))
    for ax, name in zip(axes, PAPER_ERROR):
        x = load_hull_toy(name)
        r = revised_greedy_expansion(x, seed=ctx.seed)
        RGEDisplay.from_result(x, r).plot(ax, title=f"{name}: |E|={r.size}, error {r.error:.3f}")
        rows.append({"name": name, "n": int(len(x)), "size": r.size, "error": r.error, "seconds": r.seconds,
                     "stopped_by": r.stopped_by.value, "paper_error": PAPER_ERROR[name]})
    rge_fig = ctx.save_figure(fig, "rge_toy_sets")
    c1 = rge_claim(rows)
    c1 = ClaimResult(c1.claim, c1.ours, c1.verdict, (rge_fig,), c1.notes, c1.values)
    configs = [replace(c, seed=ctx.seed) for c in QUICK] if ctx.quick else paper_configs()
    exp = run_hulls_experiment(configs, mapper=lambda task, cs: ctx.map(task, cs, desc="nch"))
    figs = []
    for run_ in exp.runs:
        f = NCHLayersDisplay.from_result(run_).to_figure(
            title=f"{run_.config.dataset} {run_.config.activation} seed {run_.config.seed}")
        figs.append(ctx.save_figure(f, f"nch_{run_.config.dataset}_{run_.config.activation}_{run_.config.seed}"))
    c2, c3 = nch_claims(exp.summary(), ctx.quick)
    c2 = ClaimResult(c2.claim, c2.ours, c2.verdict, tuple(figs), c2.notes, c2.values)
    settings = {"configs": [asdict(c) for c in configs], "rge": {"eps": 0.03, "stop": 0.06, "kcha": "all points"}}
    notes = ("In the NCH figures the dashed 'net train' line is the network's validation accuracy.",
             "Per-layer rows: " + "; ".join(
                 f"{r.config.dataset}: " + ", ".join(f"{x.layer} val {x.nch_val:.3f} test {x.nch_test:.3f}" for x in r.layers)
                 for r in exp.runs))
    return PaperResult(ctx.paper, TITLE, CITATION, ctx.scale, (c1, c2, c3), settings, notes)
