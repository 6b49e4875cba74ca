"""`reluscope reproduce folding`: Lewandowski et al.'s space-folding claims, with verdicts.

Claims checked: folding grows with depth among nets that reach 0.9 validation accuracy (Phi first,
the papers' measure); folding drops as the generalisation error grows (nets of one depth, stopped
before 0.9, at 0.9 and trained past it); the regulariser (our surrogate: the papers' term is not
public); CantorNet representation A folds more than B and C. Protocol and verdict rules:
docs/methods.md, section 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np

from ..experiments.folding_study import (
    MEASURES, DepthTrend, FoldingNetRow, MeasureTrends, FoldingStudyConfig, FoldingStudyResult, Trend, folding_net_task,
)
from ..experiments.folding_training import FoldingRegulariserConfig, run_folding_regulariser
from ..folding.cantor import cantornet_folding
from ..viz import report_figure
from ..viz.folding import FoldingDepthDisplay, FoldingErrorDisplay
from ._framework import Claim, ClaimResult, PaperResult, RunContext, Scale, Verdict

TITLE = "Space folding of ReLU networks (Lewandowski et al.)"
CITATION = ("Lewandowski, Eghbalzadeh, Heinzl, Pisoni, Moser, On Space Folds of ReLU Neural Networks, TMLR 2025 "
            "(arXiv 2502.09954); The Space Between, ICLR 2025 workshop (arXiv 2503.08502); CantorNet, NeurReps 2024 "
            "(arXiv 2411.19713)")

DEPTH = Claim("depth", "Among nets that generalise (validation accuracy 0.9), folding grows with depth (3-6 hidden layers)",
              "grows with depth; mean and spread per architecture over 100 nets each, no test statistic published")
ERROR = Claim("error", "Folding drops when the generalisation error grows (nets of the same depth)",
              "stated qualitatively (folding is high for low-error nets and drops as the error grows); no figure")
REGULARISER = Claim("regulariser", "A folding term in the loss encourages folding early in training",
                    "exact term not published; no number we can compare with")
CANTOR = Claim("cantor", "CantorNet: representation A (recursion) folds more than the DNF representations B and C",
               "A folds most (along (0, 3/4) -> (1, 3/4))")


def study_config(scale: Scale, seed: int = 0) -> FoldingStudyConfig:
    """The depth / error study's grid at this scale (`FoldingStudyConfig`; quick is its default)."""

    return FoldingStudyConfig.paper(data_seed=seed) if scale is Scale.PAPER else FoldingStudyConfig(data_seed=seed)


@dataclass(frozen=True)
class FoldingSettings:
    """The sizes of one scale (quick: smaller than the papers, stated in the report): the depth /
    error study's grid, the regulariser runs and the CantorNet levels."""

    study: FoldingStudyConfig
    reg_seeds: int
    reg_epochs: int
    reg_lams: tuple[float, ...]
    cantor_k: int

    def to_dict(self) -> dict:
        """The report's settings JSON: the study's fields but its data seed (the run's seed is
        reported beside), then the regulariser's and CantorNet's."""
        study = asdict(self.study)
        study.pop("data_seed")
        return {**study, **{f.name: getattr(self, f.name) for f in fields(self) if f.name != "study"}}


def settings(scale: Scale, seed: int = 0) -> FoldingSettings:
    """The sizes of each scale; `seed` is the study's data seed."""
    study = study_config(scale, seed)
    if scale is Scale.PAPER:
        return FoldingSettings(study, reg_seeds=10, reg_epochs=5, reg_lams=(0.0, 0.1, 1.0), cantor_k=5)
    return FoldingSettings(study, reg_seeds=2, reg_epochs=2, reg_lams=(0.0, 0.1, 1.0), cantor_k=4)


# ----------------------------------------------------------------------------- claim logic (tested)


def depth_verdict(trends: MeasureTrends | Mapping[str, Trend]) -> tuple[Verdict, str]:
    """Phi (exact) decides; the other measures can only make it "partly".

    reproduced: Phi rho > 0 with p < 0.05; partly: Phi not significant but mean chi or share of
    folded segments (exact) grows significantly; untestable when fewer than 3 nets reached the
    target or they all have one depth (no rho); not reproduced otherwise."""
    phi = trends["phi_exact"]
    if not math.isfinite(phi.rho):
        return Verdict.UNTESTABLE, f"Too few nets at the target to compute a trend ({phi.n})."
    if _sig_pos(phi):
        return Verdict.REPRODUCED, "Phi (exact walks) grows significantly with depth."
    others = [k for k in ("chi_mean_exact", "share_folded_exact") if _sig_pos(trends[k])]
    if others:
        return Verdict.PARTLY, (f"Phi, the papers' measure, shows no significant trend ({phi.text()}); "
                                f"{' and '.join(others)} grow significantly with depth.")
    return Verdict.NOT_REPRODUCED, f"No measure grows significantly with depth (Phi: {phi.text()})."


def error_verdict(per_depth: Sequence[DepthTrend] | Mapping[int, Trend]) -> tuple[Verdict, str]:
    """Per depth, Spearman's rho of (test error, Phi exact): the `DepthTrend`s of
    `FoldingStudyResult.error_trends()` (or a mapping depth -> `Trend`). reproduced: rho < 0 with
    p < 0.05 at at least half the depths and rho > 0 significant at none; partly: negative at most
    depths but significant at fewer than half; not reproduced otherwise."""
    every = per_depth.values() if isinstance(per_depth, Mapping) else (t.trend for t in per_depth)
    trends = [t for t in every if math.isfinite(t.rho)]
    if not trends:
        return Verdict.UNTESTABLE, "Too few nets per depth to compute a trend."
    sig_neg = sum(t.rho < 0 and t.p_value < 0.05 for t in trends)
    sig_pos = sum(t.rho > 0 and t.p_value < 0.05 for t in trends)
    neg = sum(t.rho < 0 for t in trends)
    if sig_neg * 2 >= len(trends) and sig_pos == 0:
        return Verdict.REPRODUCED, f"Phi falls significantly with the test error at {sig_neg} of {len(trends)} depths."
    if neg * 2 > len(trends) and sig_pos == 0:
        return Verdict.PARTLY, (f"Phi falls with the test error at {neg} of {len(trends)} depths, significantly at "
                                f"{sig_neg}.")
    return Verdict.NOT_REPRODUCED, (f"Phi falls with the test error at {neg} of {len(trends)} depths "
                                    f"(significantly at {sig_neg}), rises significantly at {sig_pos}.")


def _sig_pos(t) -> bool:
    return math.isfinite(t.rho) and t.rho > 0 and t.p_value < 0.05


# ----------------------------------------------------------------------------- the run


def run(ctx: RunContext) -> PaperResult:
    cfg = settings(ctx.scale, ctx.seed)
    study = cfg.study
    rows = ctx.map(folding_net_task, study.nets(), desc="folding nets")
    result = FoldingStudyResult(study, tuple(r if isinstance(r, FoldingNetRow) else FoldingNetRow(**r) for r in rows))
    claims = [_depth_claim(ctx, result), _error_claim(ctx, result), _regulariser_claim(ctx, cfg),
              _cantor_claim(ctx, cfg)]
    exact = all(r.walks_exact for r in result.rows)
    notes = (
        f"Scale {ctx.scale.value}: depths {study.depths} x widths {study.widths} x {study.seeds} seeds, "
        f"{study.n_train:,} training images (raw pixels in [0, 1]), at most {study.epochs} epochs, "
        f"{study.pairs} digit 1 -> 4 test segments per net"
        + ("; the papers used 100 nets per architecture and all training images." if ctx.quick else "."),
        "Walks: " + ("exact traversal for every net (ReLU)." if exact else
                     "some nets have smooth activations: their walks come from bisection (exact=False)."),
        "Output bits are included, as in the authors' code.",
    )
    return PaperResult(paper=ctx.paper, title=TITLE, citation=CITATION, scale=ctx.scale, claims=tuple(claims),
                       settings={**cfg.to_dict(), "seed": ctx.seed}, notes=notes)


def _depth_claim(ctx, result) -> ClaimResult:
    nets = result.at_target()
    trends = result.depth_trends(seed=ctx.seed)
    verdict, why = depth_verdict(trends)
    depths = result.config.depths
    by_depth = {m: {d: float(np.mean([getattr(s, m) for dd, s in nets if dd == d]))
                    for d in depths if any(dd == d for dd, _ in nets)} for m, _ in MEASURES}
    ours = "; ".join(f"{label}: {trends[m].text()}" for m, label in MEASURES[:1] + MEASURES[2:3] + MEASURES[4:5])
    ours += f" [{len(nets)} of {len(result.rows)} nets reached {result.config.target:g}]"
    notes = (why + " Grid rows: " + "; ".join(f"{label}: {trends[m].text()}" for m, label in MEASURES[1::2])
             + f". Nets that never reached {result.config.target:g} in {result.config.epochs} epochs are left out "
             f"({len(result.rows) - len(nets)}).")
    return ClaimResult(DEPTH, ours, verdict, figures=(ctx.save_figure(FoldingDepthDisplay.from_result(result).to_figure(), "folding_vs_depth"),),
                       notes=notes,
                       values={"trends": trends, "mean_by_depth": by_depth, "nets": len(nets), "trained": len(result.rows),
                               "per_net": [{"depth": r.config.depth, "width": r.config.width, "seed": r.config.seed,
                                            **{m: getattr(r.at_target(), m) for m, _ in MEASURES}}
                                           for r in result.rows if r.reached_target]})


def _error_claim(ctx, result) -> ClaimResult:
    per_depth = result.error_trends(seed=ctx.seed)
    chi_per_depth = result.error_trends("chi_mean_exact", seed=ctx.seed)
    points = [(r.config.depth, s) for d in result.config.depths for r in result.rows if r.config.depth == d
              for s in r.snapshots]
    verdict, why = error_verdict(per_depth)
    ours = "; ".join(f"depth {t.depth}: {t.trend.text()}" for t in per_depth)
    stages = sorted({s.stage for _, s in points})
    notes = (why + f" Snapshots per net: {', '.join(stages)} (validation accuracy first reaching each level, and "
             f"after {result.config.epochs} epochs). Mean chi instead of Phi: "
             + "; ".join(f"depth {t.depth}: {t.trend.text()}" for t in chi_per_depth) + ".")
    return ClaimResult(ERROR, "Phi vs test error, " + ours, verdict,
                       figures=(ctx.save_figure(FoldingErrorDisplay.from_result(result).to_figure(), "folding_vs_error"),),
                       notes=notes,
                       values={"phi_trend_per_depth": per_depth, "chi_mean_trend_per_depth": chi_per_depth,
                               "snapshots": [{"depth": d, **vars(s)} for d, s in points]})


def _regulariser_claim(ctx, cfg: FoldingSettings) -> ClaimResult:
    config = FoldingRegulariserConfig(lams=cfg.reg_lams, seeds=cfg.reg_seeds, epochs=cfg.reg_epochs,
                                      n_train=cfg.study.n_train, pairs=cfg.study.pairs, data_seed=ctx.seed)
    result = run_folding_regulariser(config, mapper=lambda task, nets: ctx.map(task, nets, desc="regulariser"))
    rows = list(result.runs)
    summary = result.by_lambda()
    ours = "; ".join(f"lambda {v.lam:g}: test acc {v.test_accuracy:.3f}, mean chi {v.chi_mean_exact:.3f}, "
                     f"Phi {v.phi_exact:.3f}, soft chi {v.soft_chi_mean:.3f}" for v in summary)
    notes = ("The papers' folding term is not published, so the claim cannot be checked; this row reports what our "
             "surrogate (soft bits sigmoid(z/tau), tau 0.5, soft distance sum |p - q|, 11-point grid, lambda > 0 "
             f"rewards folding) does to exact chi and test accuracy: 4 x 16 MLPs, {cfg.reg_epochs} epochs, "
             f"{cfg.reg_seeds} seeds per lambda; lambdas fixed in advance (0, 0.1, 1).")
    fig = _regulariser_figure(summary)
    return ClaimResult(REGULARISER, ours, Verdict.UNTESTABLE, figures=(ctx.save_figure(fig, "regulariser"),),
                       notes=notes, values={"per_lambda": summary, "runs": rows})


def _cantor_claim(ctx, cfg: FoldingSettings) -> ClaimResult:
    rows = cantornet_folding(range(1, cfg.cantor_k + 1))
    table = {(r.k, r.representation): r.chi_exact for r in rows}
    ks = sorted({r.k for r in rows})
    a_most = [table[(k, "A")] > max(table[(k, "B")], table[(k, "C")]) for k in ks]
    verdict = Verdict.REPRODUCED if all(a_most) else (Verdict.PARTLY if any(a_most) else Verdict.NOT_REPRODUCED)
    ours = "; ".join(f"k={k}: A {table[(k, 'A')]:.3f} / B {table[(k, 'B')]:.3f} / C {table[(k, 'C')]:.3f}" for k in ks)
    grid = "; ".join(f"k={r.k}{r.representation} {r.chi_grid:.3f}" for r in rows)
    fig = _cantor_figure(rows)
    return ClaimResult(CANTOR, "exact chi " + ours, verdict, figures=(ctx.save_figure(fig, "cantornet"),),
                       notes=f"A folds most at {sum(a_most)} of {len(ks)} levels k (exact walks, rational arithmetic). "
                             f"11-point grid: {grid}.",
                       values={"rows": [{"k": r.k, "representation": r.representation, "chi_exact": r.chi_exact,
                                         "chi_grid": r.chi_grid, "regions": r.regions} for r in rows]})


# ----------------------------------------------------------------------------- figures


def _regulariser_figure(summary):
    fig, axes = report_figure(1, 2, figsize=(9, 3.4))
    labels = [f"{v.lam:g}" for v in summary]
    axes[0].bar(labels, [v.chi_mean_exact for v in summary])
    axes[0].set_title("mean exact chi")
    axes[1].bar(labels, [v.test_accuracy for v in summary])
    axes[1].set_ylim(min(v.test_accuracy for v in summary) - 0.05, 1)
    axes[1].set_title("test accuracy")
    for ax in axes:
        ax.set_xlabel("lambda")
    return fig


def _cantor_figure(rows):
    fig, ax = report_figure(figsize=(5, 3.4))
    for rep in sorted({r.representation for r in rows}):
        sel = [r for r in rows if r.representation == rep]
        ax.plot([r.k for r in sel], [r.chi_exact for r in sel], "o-", label=f"{rep} exact")
        ax.plot([r.k for r in sel], [r.chi_grid for r in sel], "x--", label=f"{rep} 11 points")
    ax.set_xlabel("k")
    ax.set_ylabel("chi")
    ax.legend(fontsize=7)
    return fig
