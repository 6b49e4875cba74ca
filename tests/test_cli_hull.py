"""`reluscope hull` through typer's CliRunner on a fresh app."""

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

import reluscope.data
from reluscope.cli.hull import load_points, register

TOY = Path(reluscope.data.__file__).parent / "hull_toy"


@pytest.fixture
def app():
    app, experiment = typer.Typer(), typer.Typer()
    app.add_typer(experiment, name="experiment")
    register(app, experiment)
    return app


def test_load_points_paper_format_and_npy(tmp_path):
    x = load_points(TOY / "Moons.txt")
    np.testing.assert_array_equal(x, np.loadtxt(TOY / "Moons.txt", skiprows=1)[:, 1:])
    np.save(tmp_path / "p.npy", x[:5])
    np.testing.assert_array_equal(load_points(tmp_path / "p.npy"), x[:5])
    (tmp_path / "bad.txt").write_text("3 2\n0 1 2\n")
    with pytest.raises(ValueError, match="declares 3 points, the file has 1"):
        load_points(tmp_path / "bad.txt")
    with pytest.raises(ValueError, match=".npy or .txt"):
        load_points(TOY / "README.md")


def test_hull_command_point_file(app, tmp_path):
    rng = np.random.default_rng(0)
    pts = np.vstack([rng.dirichlet(np.ones(3), size=80) @ np.array([[0, 0], [2, 0], [0, 2.0]]), [[0, 0], [2, 0], [0, 2.0]]])
    np.save(tmp_path / "pts.npy", pts)
    np.save(tmp_path / "q.npy", np.array([[0.5, 0.5], [3.0, 0.0]]))
    out = tmp_path / "out.json"
    res = CliRunner().invoke(app, ["hull", str(tmp_path / "pts.npy"), "--out", str(out), "--queries", str(tmp_path / "q.npy"), "--plot", str(tmp_path / "f.png")])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert sorted(data["indices"]) == [80, 81, 82]
    assert data["query_distances"][0] == pytest.approx(0, abs=1e-9)
    assert data["query_distances"][1] == pytest.approx(1.0)
    assert (tmp_path / "f.png").stat().st_size > 0


def test_hull_command_errors(app, tmp_path):
    res = CliRunner().invoke(app, ["hull", str(tmp_path / "missing.npy"), "--out", str(tmp_path / "o.json")])
    assert res.exit_code == 3 and "no such file" in res.output
    np.save(tmp_path / "p.npy", np.zeros((5, 2)))
    res = CliRunner().invoke(app, ["hull", str(tmp_path / "p.npy"), "--out", str(tmp_path / "o.json"), "--eps", "0"])
    assert res.exit_code == 2 and "--inside-distance" in res.output  # --eps is its old name


def test_hull_command_model_layer(app, tmp_path):
    from reluscope.network.io import save_model
    from reluscope.train import mlp

    save_model(mlp(784, [16], 10, seed=0), tmp_path / "m")
    out = tmp_path / "o.json"
    res = CliRunner().invoke(app, ["hull", str(tmp_path / "m"), "--layer", "1", "--per-class", "6", "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert 0 <= data["report"]["nch_test"] <= 1 and len(data["crucial_share"]) == 10
    res = CliRunner().invoke(app, ["hull", str(tmp_path / "m"), "--layer", "7", "--out", str(out)])
    assert res.exit_code == 2 and "'7' is not a layer that forward reaches" in res.output
