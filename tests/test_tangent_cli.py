"""CLI, report section, experiment and viz of reluscope.tangent (small, fast configurations)."""

import json

import numpy as np
import pytest
import torch
import torch.nn as nn
import typer
from typer.testing import CliRunner

from reluscope.cli.tangent import register
from reluscope.report.base import DemoContext, Section


@pytest.fixture
def cli():
    app, experiment = typer.Typer(), typer.Typer()
    app.add_typer(experiment, name="experiment")
    register(app, experiment)
    return app


def test_tangent_command_on_digits(cli, tmp_path):
    from reluscope.network.io import save_model

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 12), nn.ReLU(), nn.Linear(12, 10)).eval()
    save_model(model, tmp_path / "m")
    out = tmp_path / "t.json"
    res = CliRunner().invoke(cli, ["tangent", str(tmp_path / "m"), "--out", str(out), "--data", "digits",
                                   "--per-class", "3", "--landmarks-per-class", "3", "--metric", "sparse",
                                   "--threshold", "0.5", "--plot", str(tmp_path / "g.png")])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["n_inputs"] == 30 and 0 <= data["landmark_accuracy"] <= 1 and 0 < data["sparse_fraction_kept"] <= 1
    assert (tmp_path / "g.png").stat().st_size > 0
    bad = CliRunner().invoke(cli, ["tangent", str(tmp_path / "m"), "--out", str(out), "--data", "digits",
                                   "--metric", "sparse", "--threshold", "-1", "--per-class", "2", "--landmarks-per-class", "2"])
    assert bad.exit_code == 2 and "threshold" in bad.output


def test_commands_have_help(cli):
    for args in (["tangent", "--help"], ["experiment", "tangent", "--help"]):
        res = CliRunner().invoke(cli, args)
        assert res.exit_code == 0 and "Usage" in res.output


def test_experiment_small(tmp_path, cli):
    from reluscope.experiments.tangent import TangentConfig, tangent_cnn

    assert sum(p.numel() for p in tangent_cnn((3, 32, 32)).parameters()) == 247_434  # the authors' count
    with pytest.raises(ValueError, match="datasets"):
        TangentConfig(datasets=("cifar",))
    res = CliRunner().invoke(cli, ["experiment", "tangent", "--out", str(tmp_path / "e"), "--datasets", "mnist",
                                   "--width", "4", "--n-train", "200", "--epochs", "1", "--per-class", "2",
                                   "--landmarks-per-class", "3", "--n-heldout", "40", "--workers", "0"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "e" / "tangent_gaps.png").stat().st_size > 0
    r = json.loads((tmp_path / "e" / "tangent.json").read_text())["datasets"]["mnist"]
    assert set(r["gaps"]) == {"block", "sparse", "euclidean", "hidden"}
    assert 0 <= r["network_accuracy"] <= 1 and isinstance(r["at_least_as_good"], bool)
    assert set(r["classifier_accuracy"]) == {f"{m}/{c}" for m in ("block", "sparse", "hidden")
                                             for c in ("landmark", "linear")} | {"block/linear-heldout"}
    assert set(r["variant_accuracy"]) == {"summed", "per_input_minmax", "per_parameter_minmax"}
    assert set(r["share_good"]) == {"block", "sparse", "euclidean", "hidden"}
    # the results save and load (.npz, no pickle): the sweep's row rebuilt as the task's result type
    from reluscope.experiments.tangent import TangentDatasetResult, TangentExperimentResult
    from reluscope.sweep import read_sweep
    from reluscope.sweep._decode import decode

    ds = decode(TangentDatasetResult, read_sweep(tmp_path / "e" / "sweep")[0]["result"])
    exp = TangentExperimentResult(TangentConfig.quick(), (ds,))
    assert TangentExperimentResult.load(exp.save(tmp_path / "t")).to_dict() == exp.to_dict()


def test_report_section(tmp_path):
    from reluscope.report.tangent import section

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10)).eval()
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(300, 784, generator=g), torch.arange(300) % 10
    ctx = DemoContext(tmp_path, 0, model, (x, y), (x, y), None, None, quick=True)
    s = section(ctx)
    assert isinstance(s, Section) and "<img" in s.html
    assert {r["metric"] for r in s.summary["metrics"]} == {"block", "sparse", "full", "hidden"}
    json.dumps(s.summary)


def test_viz_returns_axes():
    import matplotlib

    matplotlib.use("Agg")
    from reluscope.tangent import goodness_curve
    from reluscope.viz.tangent import plot_gap_histograms, plot_goodness_curves

    ax = plot_gap_histograms({"a": np.array([0.1, 0.2, -0.1]), "b": [np.nan, 1.0]})
    assert ax.get_legend() is not None
    s = torch.tensor([[1.0, 0.5], [0.5, 1.0]])
    ax = plot_goodness_curves({"x": goodness_curve(torch.eye(3) + s.new_zeros(3, 3), torch.tensor([0, 0, 1]))})
    assert len(ax.lines) == 1
