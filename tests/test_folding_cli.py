"""Folding commands, the depth experiment on a tiny synthetic task, and the folding plots."""

import json
from dataclasses import fields

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from reluscope.cli import folding as folding_cli
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


def _tiny_study(**changes):
    from reluscope.experiments.folding_study import FoldingStudyConfig

    return FoldingStudyConfig(**{**dict(depths=(1, 2), widths=(6,), seeds=2, n_train=500, n_val=200, pairs=6,
                                        epochs=1, check_every=5, levels=(0.3, 0.5), target=0.5), **changes})


def test_folding_study_is_a_sweep_of_net_tasks_and_resumes(tmp_path):
    from reluscope.experiments.folding_study import (
        MEASURES, folding_net_task, run_folding_study, write_folding_study)
    from reluscope.sweep import read_sweep

    config = _tiny_study()
    res = run_folding_study(config, out=tmp_path / "sweep", workers=0)
    assert [r.config for r in res.rows] == config.nets() and len(res.rows) == 4
    # each row is the pure task's row for its config (seconds aside)
    again = folding_net_task(config.nets()[3])
    assert again.snapshots == res.rows[3].snapshots and again.reached_target == res.rows[3].reached_target
    # a rerun into the same folder reuses the rows: same results, timings included, nothing appended
    assert run_folding_study(config, out=tmp_path / "sweep", workers=0).rows == res.rows
    assert len(read_sweep(tmp_path / "sweep")) == 4
    trends = res.depth_trends()
    assert [f.name for f in fields(trends)] == [m for m, _ in MEASURES] and {t.depth for t in res.error_trends()} == {1, 2}
    assert all(trends[m].n == len(res.at_target()) for m, _ in MEASURES)
    assert [s.trained for s in res.summary()] == [2, 2]
    assert type(res).load(res.save(tmp_path / "study")).to_dict() == res.to_dict()
    files = write_folding_study(res, tmp_path)
    doc = json.loads(files["json"].read_text())
    assert doc["nets"] == 4 and list(doc["depth_trends"]) == [m for m, _ in MEASURES]
    assert files["csv"].read_text().count("\n") == 5 and files["depth"].stat().st_size > 1000
    with pytest.raises(ValueError, match="seeds"):
        _tiny_study(seeds=0)
    with pytest.raises(ValueError, match="depths"):
        _tiny_study(depths=())
    from reluscope.experiments.folding_study import FoldingStudyConfig

    with pytest.raises(ValueError, match=r"widths: expected an integer >= 1 \(each entry\), got True"):
        FoldingStudyConfig(widths=(4, True))
    assert FoldingStudyConfig(depths=(np.int64(2),)).depths == (2,)  # numpy ints as plain ints

    assert len(FoldingStudyConfig.paper().nets()) == 2000


def test_folding_depth_command_runs_the_study(cli, tmp_path):
    args = ["experiment", "folding-depth", "--out", str(tmp_path), "--workers", "0", "--depths", "1", "--widths", "5",
            "--seeds", "2", "--n-train", "400", "--epochs", "1", "--pairs", "4"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "folding_study.json").read_text())
    assert doc["nets"] == 2 and (tmp_path / "folding_vs_error.png").exists()
    assert len((tmp_path / "sweep" / "sweep.jsonl").read_text().splitlines()) == 2
    bad = CliRunner().invoke(cli, args[:4] + ["--workers", "-1"])
    assert bad.exit_code == 2 and "--workers" in bad.output


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


def test_training_experiments_on_a_tiny_task(tmp_path):
    from reluscope.experiments.folding_training import (
        FgsmConfig,
        FoldingRegulariserConfig,
        FoldingTrainingConfig,
        fgsm,
        run_fgsm_interaction,
        run_folding_regulariser,
        run_folding_training,
        write_fgsm_interaction,
        write_folding_regulariser,
        write_folding_training,
    )

    data = _ten_blobs()
    curve = run_folding_training(FoldingTrainingConfig((6, 6), epochs=2, every=2, pairs=10), data=data)
    assert curve.steps[0] == 0 and len(curve.steps) == len(curve.chi_mean) == len(curve.val_error) > 2
    assert ((curve.chi_mean >= 0) & (curve.chi_mean <= 1)).all()
    runs = run_folding_regulariser(FoldingRegulariserConfig((0.0, 0.1), hidden=(6, 6), seeds=1, epochs=1, pairs=10),
                                   data=data).runs
    assert [r.lam for r in runs] == [0.0, 0.1]
    model = mlp(4, [6], 10, seed=0)
    (x, y), _, _ = data
    adv = fgsm(model, x[:5], y[:5], 0.3)
    assert torch.allclose((adv - x[:5]).abs(), torch.full_like(adv, 0.3))
    res = run_fgsm_interaction(FgsmConfig(attack_size=0.3, pairs=5), model=model, data=data)
    assert res.chi_clean.shape == res.interaction_adv.shape == (5,)
    # results save and load (.npz, no pickle)
    for result in (curve, res, reg_result := run_folding_regulariser(
            FoldingRegulariserConfig((0.0,), hidden=(6,), seeds=1, epochs=1, pairs=5), data=data)):
        back = type(result).load(result.save(tmp_path / type(result).__name__))
        assert back.to_dict() == result.to_dict() and type(back) is type(result)
    assert reg_result.runs[0].config.hidden == (6,) and reg_result.by_lambda()[0].lam == 0.0
    # run_ computes, write_ writes: the CLI's files from the results alone
    files = write_folding_training(curve, tmp_path / "t")
    assert json.loads(files["json"].read_text())["steps"] == curve.steps.tolist() and files["png"].stat().st_size
    reg = run_folding_regulariser(FoldingRegulariserConfig((0.0,), hidden=(6,), seeds=1, epochs=1, pairs=5), data=data)
    assert set(json.loads(write_folding_regulariser(reg, tmp_path / "r.json").read_text())["by_lambda"]) == {"0.0"}
    assert json.loads(write_fgsm_interaction(res, tmp_path / "f.json").read_text())["attack_size"] == 0.3
    with pytest.raises(ValueError, match="epochs: expected an integer >= 1"):
        FoldingTrainingConfig(epochs=2.0)


def test_old_experiment_names_are_deprecated_aliases():
    import reluscope.experiments.folding_study as study
    import reluscope.experiments.folding_training as training
    import reluscope.experiments.hulls as hulls

    for module, old, new in ((training, "TrainingCurve", "FoldingTrainingResult"),
                             (training, "RegulariserResult", "FoldingRegulariserResult"),
                             (training, "RegulariserRun", "RegulariserRow"),
                             (training, "FgsmInteraction", "FgsmInteractionResult"),
                             (hulls, "HullsExperiment", "HullsResult")):
        with pytest.warns(DeprecationWarning, match=new):
            assert getattr(module, old) is getattr(module, new)
    with pytest.warns(DeprecationWarning, match="moved to reluscope.experiments.folding_training"):
        assert study.regulariser_task is training.regulariser_task
    with pytest.raises(AttributeError):
        study.no_such_name
