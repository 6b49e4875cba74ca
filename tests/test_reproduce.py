"""The reproduce framework: claims, verdicts, atomic per-paper reports, the CLI, failures kept apart."""

import json
import sys
import types

import pytest
from typer.testing import CliRunner

from reluscope.cli import app
from reluscope.reproduce import (
    PAPERS, Claim, ClaimResult, PaperResult, RunContext, Scale, Verdict, run_paper, run_reproduce,
)

CLAIM = Claim("acc", "the similarity is at least as good as the network", "0.80 vs 0.79")


def _fake_module(name, run):
    mod = types.ModuleType(name)
    mod.run = run
    mod.TITLE = "Fake paper"
    sys.modules[name] = mod
    return mod


@pytest.fixture
def fake_papers(monkeypatch):
    def good(ctx: RunContext) -> PaperResult:
        from reluscope.viz._common import report_figure

        fig, ax = report_figure()
        ax.plot([0, 1], [0, 1])
        rel = ctx.save_figure(fig, "line")
        return PaperResult(
            paper=ctx.paper, title="Fake paper", citation="Doe 2024", scale=ctx.scale,
            claims=(ClaimResult(CLAIM, "0.81 vs 0.79", "reproduced", figures=(rel,), values={"ours": 0.81}),
                    ClaimResult(Claim("b", "<b>folds</b>", "yes"), "no", Verdict.NOT_REPRODUCED, notes="why")),
            settings={"n": 3, "scale": ctx.scale},
        )

    def bad(ctx):
        raise RuntimeError("boom in the runner")

    _fake_module("_fake_good_runner", good)
    _fake_module("_fake_bad_runner", bad)
    monkeypatch.setitem(PAPERS, "tangent", "_fake_good_runner")
    monkeypatch.setitem(PAPERS, "folding", "_fake_bad_runner")
    monkeypatch.setitem(PAPERS, "hulls", "_no_such_runner_module")
    yield
    for name in ("_fake_good_runner", "_fake_bad_runner"):
        sys.modules.pop(name, None)


def test_verdict_values_are_the_four_of_the_issue():
    assert [v.value for v in Verdict] == ["reproduced", "partly", "not reproduced", "untestable"]
    assert Scale("quick") is Scale.QUICK and Scale("paper") is Scale.PAPER


def test_claim_result_parses_verdict_and_refuses_a_non_claim():
    r = ClaimResult(CLAIM, "x", "partly", figures=["a.png"])
    assert r.verdict is Verdict.PARTLY and r.figures == ("a.png",)
    with pytest.raises(ValueError):
        ClaimResult(CLAIM, "x", "maybe")
    with pytest.raises(TypeError, match="claim"):
        ClaimResult("text", "x", "partly")


def test_run_paper_writes_results_and_report(fake_papers, tmp_path):
    res = run_paper("tangent", out=tmp_path)
    folder = tmp_path / "tangent"
    data = json.loads((folder / "results.json").read_text())
    assert data["paper"] == "tangent" and data["scale"] == "quick" and data["error"] is None
    assert data["verdicts"] == {"reproduced": 1, "partly": 0, "not reproduced": 1, "untestable": 0}
    assert data["claims"][0]["claim"]["paper_figure"] == "0.80 vs 0.79"
    assert data["claims"][0]["figures"] == ["figures/line.png"] and (folder / "figures/line.png").is_file()
    page = (folder / "report.html").read_text()
    assert "data:image/png;base64," in page and "&lt;b&gt;folds&lt;/b&gt;" in page  # embedded, escaped
    assert res.seconds >= 0 and not list(folder.glob(".*"))  # no temporary files left


def test_a_failing_runner_gets_a_report_and_the_others_still_run(fake_papers, tmp_path):
    results = run_reproduce(["folding", "tangent", "hulls"], out=tmp_path)
    err = {r.paper: r.error for r in results}
    assert "boom in the runner" in err["folding"] and err["tangent"] is None and "no runner" in err["hulls"]
    assert "boom in the runner" in (tmp_path / "folding" / "report.html").read_text()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["papers"]) == {"folding", "tangent", "hulls"}


def test_unknown_paper_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match="paper: expected one of tangent, folding, hulls, topology"):
        run_reproduce(["tangent", "nope"], out=tmp_path)
    assert not any(tmp_path.iterdir())


def test_context_map_runs_the_sweep_engine_in_order(tmp_path):
    from reluscope.testing.sweep import flaky

    ctx = RunContext("tangent", Scale.QUICK, tmp_path, workers=0)  # in this process: no Ray start-up
    assert ctx.map(flaky, [{"seed": 3}, {"seed": 1}, {"seed": 2}], desc="a b") == [{"seed": 3}, {"seed": 1}, {"seed": 2}]
    assert (tmp_path / "sweep" / "a-b" / "sweep.jsonl").exists()
    with pytest.raises(RuntimeError, match=r"1 of 2 tasks failed, the first with ValueError: seed 2: failing"):
        ctx.map(flaky, [{"seed": 1}, {"seed": 2, "fail": True}])
    assert ctx.generator_seed("a") == RunContext("tangent", Scale.QUICK, tmp_path / "x").generator_seed("a")
    assert ctx.generator_seed("a") != ctx.generator_seed("b")


def test_cli_reproduce_exit_codes(fake_papers, tmp_path):
    runner = CliRunner()
    ok = runner.invoke(app, ["reproduce", "tangent", "--out", str(tmp_path)])
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "tangent" / "report.html").is_file()
    failed = runner.invoke(app, ["reproduce", "folding", "--out", str(tmp_path)])
    assert failed.exit_code == 1
    bad = runner.invoke(app, ["reproduce", "tangent", "--scale", "huge", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "--scale: expected quick or paper" in bad.output


def test_src_cites_docs_methods_never_papers_md():
    """Users do not have PAPERS.md: the code and the README point to docs/methods.md, which ships."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    offenders = [str(p.relative_to(root)) for p in (root / "src").rglob("*.py") if "PAPERS.md" in p.read_text()]
    assert offenders == []
    assert "PAPERS.md" not in (root / "README.md").read_text()
    methods = (root / "docs" / "methods.md").read_text()
    for section in ("Space folding", "CantorNet", "Linear regions", "Convex hulls", "Gradient representations"):
        assert section in methods


# ----------------------------------------------------------------------------- the papers' verdict rules


def _trend(rho, p):
    from reluscope.experiments.folding_study import Trend

    return Trend(20, rho, p, rho - 0.2, rho + 0.2)


def test_folding_depth_verdict_puts_phi_first():
    from reluscope.reproduce.folding import depth_verdict

    flat = {k: _trend(0.1, 0.5) for k in ("phi_exact", "chi_mean_exact", "share_folded_exact")}
    assert depth_verdict({**flat, "phi_exact": _trend(0.5, 0.01)})[0] is Verdict.REPRODUCED
    verdict, why = depth_verdict({**flat, "chi_mean_exact": _trend(0.6, 0.001)})
    assert verdict is Verdict.PARTLY and "chi_mean_exact" in why
    assert depth_verdict(flat)[0] is Verdict.NOT_REPRODUCED
    assert depth_verdict({**flat, "phi_exact": _trend(-0.5, 0.01)})[0] is Verdict.NOT_REPRODUCED
    assert depth_verdict({**flat, "phi_exact": _trend(float("nan"), float("nan"))})[0] is Verdict.UNTESTABLE


def test_folding_error_verdict():
    from reluscope.reproduce.folding import error_verdict

    assert error_verdict({3: _trend(-0.5, 0.01), 4: _trend(-0.4, 0.02)})[0] is Verdict.REPRODUCED
    assert error_verdict({3: _trend(-0.5, 0.01), 4: _trend(-0.1, 0.6), 5: _trend(-0.2, 0.3)})[0] is Verdict.PARTLY
    assert error_verdict({3: _trend(-0.5, 0.01), 4: _trend(0.6, 0.01)})[0] is Verdict.NOT_REPRODUCED
    assert error_verdict({3: _trend(float("nan"), float("nan"))})[0] is Verdict.UNTESTABLE


def test_spearman_trend_bootstrap_brackets_rho():
    import numpy as np

    from reluscope.experiments.folding_study import spearman_trend

    rng = np.random.default_rng(0)
    x = np.repeat([3, 4, 5, 6], 10)
    t = spearman_trend(x, x + rng.normal(0, 1.5, x.size), boot=300)
    assert 0 < t.ci_low <= t.rho <= t.ci_high and t.p_value < 0.05 and t.n == 40
    assert np.isnan(spearman_trend([1, 1, 1], [1, 2, 3]).rho)


def test_tangent_verdicts_use_one_standard_error():
    from reluscope.reproduce.tangent import as_good_verdict, sparse_verdict

    row = {"dataset": "mnist", "network": 0.95, "n": 1000}
    assert as_good_verdict([{**row, "similarity": 0.945}])[0] is Verdict.REPRODUCED  # within 1 SE (~0.0097)
    assert as_good_verdict([{**row, "similarity": 0.90}])[0] is Verdict.NOT_REPRODUCED
    assert as_good_verdict([{**row, "similarity": 0.96}, {**row, "dataset": "f", "similarity": 0.5}])[0] is Verdict.PARTLY
    assert sparse_verdict([{"sparse": 0.8, "dense": 0.7}])[0] is Verdict.REPRODUCED
    assert sparse_verdict([{"sparse": 0.6, "dense": 0.7}])[0] is Verdict.NOT_REPRODUCED


def test_folding_net_task_snapshots_levels_and_end():
    from reluscope.experiments.folding_study import FoldingNetConfig, folding_net_task

    cfg = FoldingNetConfig(depth=2, width=8, seed=0, n_train=600, n_val=200, pairs=6, epochs=2, check_every=5,
                           levels=(0.3, 0.5), target=0.5)
    row = folding_net_task(cfg)
    stages = [s.stage for s in row.snapshots]
    assert stages[-1] == "end" and row.walks_exact and row.walk_tolerance is None
    for s in row.snapshots:
        assert 0 <= s.phi_exact <= 1 and 0 <= s.share_folded_grid <= 1 and 0 <= s.test_error <= 1
        if s.level is not None:
            assert s.val_accuracy >= s.level
    assert row.reached_target == (row.at_target() is not None)
    assert folding_net_task(cfg).snapshots == row.snapshots  # a pure seeded task


def test_markdown_table_escapes_pipes():
    r = PaperResult("p", "t", "", Scale.QUICK, (ClaimResult(Claim("k", "a | b", "1"), "2", "partly"),))
    lines = r.to_markdown().splitlines()
    assert lines[0].startswith("| claim |") and lines[2] == "| a \\| b | 1 | 2 | partly |"


def test_verdict_counts_are_a_dataclass_that_reads_as_the_old_mapping():
    from reluscope.io_utils import to_jsonable
    from reluscope.reproduce import VerdictCounts

    counts = VerdictCounts.of([Verdict.PARTLY, "not reproduced", Verdict.PARTLY])
    assert (counts.reproduced, counts.partly, counts.not_reproduced, counts.untestable) == (0, 2, 1, 0)
    assert counts["partly"] == counts[Verdict.PARTLY] == 2
    assert to_jsonable(counts) == {"reproduced": 0, "partly": 2, "not reproduced": 1, "untestable": 0} == counts
    with pytest.raises(KeyError):
        counts["maybe"]
