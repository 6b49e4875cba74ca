"""Folding commands, the depth experiment on a tiny synthetic task, and the folding plots."""

import json

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from reluscope.cli import folding as folding_cli
from reluscope.experiments.folding_depth import FoldingDepthConfig, depth_trend, run_folding_depth
from reluscope.folding import path_folding_many
from reluscope.network.io import save_model
from reluscope.train import mlp


@pytest.fixture()
def cli():
    app, experiment = typer.Typer(), typer.Typer()
    app.add_typer(experiment, name="experiment")
    folding_cli.register(app, experiment)
    return app


def test_every_command_has_help(cli):
    runner = CliRunner()
    for args in (["fold"], ["cantornet"], ["experiment", "folding-depth"], ["experiment", "folding-training"],
                 ["experiment", "folding-regulariser"], ["experiment", "folding-adversarial"]):
        res = runner.invoke(cli, [*args, "--help"])
        assert res.exit_code == 0 and len(res.output) > 100


def test_fold_command(cli, tmp_path):
    model = mlp(2, [8, 8], 3, seed=0).eval()
    save_model(model, tmp_path / "m")
    out = tmp_path / "fold.json"
    res = CliRunner().invoke(cli, ["fold", str(tmp_path / "m"), "--out", str(out), "--data", "blobs",
                                   "--classes", "0,2", "--budget", "20", "--plot", str(tmp_path / "h.png")])
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert doc["n_segments"] == 20 and len(doc["chi"]) == 20 and doc["exact"] is True
    assert (tmp_path / "h.png").stat().st_size > 1000
    bad = CliRunner().invoke(cli, ["fold", str(tmp_path / "m"), "--out", str(out), "--data", "blobs", "--classes", "0,9"])
    assert bad.exit_code == 2 and "does not occur" in bad.output


def test_cantornet_command(cli, tmp_path):
    out = tmp_path / "c.json"
    res = CliRunner().invoke(cli, ["cantornet", "--out", str(out), "--k-max", "2", "--plot", str(tmp_path / "c.png")])
    assert res.exit_code == 0, res.output
    rows = json.loads(out.read_text())["rows"]
    assert [(r["k"], r["representation"]) for r in rows] == [(k, r) for k in (1, 2) for r in "ABC"]
    assert rows[0]["chi_exact"] == pytest.approx(0.5)
    assert (tmp_path / "c.png").exists()


def _tiny_task():
    g = torch.Generator().manual_seed(0)
    centers = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.5]])
    y = torch.arange(300) % 3
    x = centers[y] + 0.6 * torch.randn(300, 2, generator=g)
    return (x[:200], y[:200]), (x[200:250], y[200:250]), (x[250:], y[250:])


def test_depth_experiment_on_a_tiny_task():
    config = FoldingDepthConfig(depths=(1, 2), widths=(4,), seeds=2, pairs=15, classes=(0, 1),
                                target_accuracy=0.8, max_epochs=5)
    data = _tiny_task()
    res = run_folding_depth(config, data=data)
    assert len(res.runs) == 4 and res.pairs.shape == (15, 2)
    # the recorded chi is that of the net on exactly these segments: retrain one and compare
    from reluscope.train import train_classifier

    run = res.runs[0]
    (x, y), (xv, yv), (xt, yt) = data
    seed = config.seed * 100_003 + run.seed * 1009 + run.depth * 31 + run.width
    model = mlp(2, [run.width] * run.depth, 3, seed=seed)
    train_classifier(model, x, y, x_val=xv, y_val=yv, epochs=config.max_epochs,
                     target_accuracy=config.target_accuracy, lr=config.lr, batch_size=config.batch_size, seed=seed)
    chi = [r.chi for r in path_folding_many(model, xt[res.pairs[:, 0]], xt[res.pairs[:, 1]])]
    assert run.chi_mean == pytest.approx(float(np.mean(chi)))
    trend = depth_trend(res, reached_only=False)
    assert trend["nets"] == 4 and set(trend["mean_chi_by_depth"]) == {1, 2}
    summary = res.summary(reached_only=False)
    assert [s["nets"] for s in summary] == [2, 2]


def test_depth_config_validation():
    with pytest.raises(ValueError, match="seeds"):
        FoldingDepthConfig(seeds=0)
    with pytest.raises(ValueError, match="depths"):
        FoldingDepthConfig(depths=())
    assert FoldingDepthConfig.full().seeds == 100


def test_report_section_runs_on_a_small_context(tmp_path):
    from reluscope.report.base import DemoContext
    from reluscope.report.folding import section

    g = torch.Generator().manual_seed(0)
    x = torch.rand(120, 784, generator=g)
    y = torch.arange(120) % 10
    ctx = DemoContext(tmp_path, 0, mlp(784, [8, 8], 10, seed=0).eval(), (x, y), (x, y),
                      mlp(2, [4], 2, seed=0).eval(), (torch.rand(10, 2), torch.arange(10) % 2), quick=True)
    sec = section(ctx)
    assert sec.title == "Space folding" and sec.html.count("<img") == 2
    assert sec.summary["cantornet_A_folds_more_than_B_and_C"] is True
    assert len(sec.summary["cantornet"]) == 12
    json.dumps(sec.summary)


def _ten_blobs():
    g = torch.Generator().manual_seed(1)
    centers = torch.randn(10, 4, generator=g) * 3
    y = torch.arange(400) % 10
    x = centers[y] + 0.5 * torch.randn(400, 4, generator=g)
    return (x[:300], y[:300]), (x[300:350], y[300:350]), (x[350:], y[350:])


def test_training_experiments_on_a_tiny_task():
    from reluscope.experiments.folding_training import (
        fgsm,
        run_fgsm_interaction,
        run_folding_regulariser,
        run_folding_training,
    )

    data = _ten_blobs()
    curve = run_folding_training((6, 6), epochs=2, every=2, pairs=10, data=data)
    assert curve.steps[0] == 0 and len(curve.steps) == len(curve.chi_mean) == len(curve.val_error) > 2
    assert ((curve.chi_mean >= 0) & (curve.chi_mean <= 1)).all()
    runs = run_folding_regulariser((0.0, 0.1), hidden=(6, 6), seeds=1, epochs=1, pairs=10, data=data)
    assert [r.lam for r in runs] == [0.0, 0.1]
    model = mlp(4, [6], 10, seed=0)
    (x, y), _, _ = data
    adv = fgsm(model, x[:5], y[:5], 0.3)
    assert torch.allclose((adv - x[:5]).abs(), torch.full_like(adv, 0.3))
    res = run_fgsm_interaction(model, eps=0.3, pairs=5, data=data)
    assert res.chi_clean.shape == res.interaction_adv.shape == (5,)
