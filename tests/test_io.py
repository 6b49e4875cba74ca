import json
import math
import os

import numpy as np
import pytest
import torch
import torch.nn as nn

from reluscope.io_utils import atomic_path, to_jsonable, write_bytes_atomic, write_json_atomic
from reluscope.network.io import load_model, load_state_dict_file, save_model

# ---------------------------------------------------------------- atomic writes


def test_json_is_strict_and_converts_arrays(tmp_path):
    path = write_json_atomic(tmp_path / "a" / "s.json", {
        "np": np.arange(3), "scalar": np.float32(1.5), "t": torch.tensor([[1, 2]]), "nan": math.nan,
        "inf": [float("inf")], "path": tmp_path, "tuple": (1, 2),
    })
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"np": [0, 1, 2], "scalar": 1.5, "t": [[1, 2]], "nan": None, "inf": [None],
                                "path": str(tmp_path), "tuple": [1, 2]}
    with pytest.raises(TypeError, match="cannot write a value of type object"):
        to_jsonable(object())


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "f.bin"
    write_bytes_atomic(target, b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("crash")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.bin"]
    with pytest.raises(TypeError, match="expected bytes"):
        write_bytes_atomic(target, "text")
    mask = os.umask(0o022)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's private 0600


# ---------------------------------------------------------------- model save/load


def _cnn():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.LeakyReLU(0.1), nn.MaxPool2d(2),
        nn.Conv2d(4, 4, (3, 2), stride=(1, 2), bias=False), nn.GELU(), nn.AvgPool2d(2),
        nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Identity()), nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2),
    )
    with torch.no_grad():  # non-trivial running statistics, so BatchNorm state must round-trip
        model[1].running_mean.uniform_(-1, 1)
        model[1].running_var.uniform_(0.5, 2)
    return model.eval()


def _mlp():
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 7), nn.SiLU(), nn.Linear(7, 2, bias=False), nn.Sigmoid())


@pytest.mark.parametrize("make, shape", [(_cnn, (3, 1, 8, 8)), (_mlp, (4, 5))])
def test_round_trip_gives_the_same_function(make, shape, tmp_path):
    model = make()
    weights, arch = save_model(model, tmp_path / "net", metadata={"note": "x"})
    assert weights.name == "net.safetensors" and arch.name == "net.json"
    loaded = load_model(tmp_path / "net.json")  # either file name works
    assert not loaded.training
    x = torch.randn(shape)
    assert torch.equal(model.eval()(x), loaded(x))
    assert json.loads(arch.read_text())["metadata"] == {"note": "x"}
    assert str(loaded) == str(model)


def test_unsupported_models_are_refused(tmp_path):
    with pytest.raises(TypeError, match=r"module '1' of type Softplus is not supported"):
        save_model(nn.Sequential(nn.Linear(2, 2), nn.Softplus()), tmp_path / "m")

    assert not list(tmp_path.iterdir())


def _saved(tmp_path):
    save_model(_mlp(), tmp_path / "m")
    return tmp_path / "m.json", json.loads((tmp_path / "m.json").read_text())


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d["architecture"]["layers"].__setitem__(1, {"type": "Exec"}), r"layers\[1\]\.type: expected one of Sequential"),
        (lambda d: d["architecture"]["layers"][0].__setitem__("out_features", "7"), r"layers\[0\]\.out_features: expected int, got '7'"),
        (lambda d: d["architecture"]["layers"][0].__setitem__("bias", 1), r"layers\[0\]\.bias: expected bool"),
        (lambda d: d["architecture"]["layers"][0].__setitem__("__class__", "os.system"), "unknown Linear parameters"),
        (lambda d: d.__setitem__("format", "other/9"), "expected format 'reluscope.model/1'"),
        (lambda d: d.__setitem__("architecture", [1, 2]), "expected {'type': 'Sequential', 'layers': \\[...\\]} or {'type': 'Graph'"),
        (lambda d: d["architecture"]["layers"][0].__setitem__("out_features", 8), r"0\.weight has shape \[7, 5\], the architecture needs \[8, 5\]"),
    ],
)
def test_tampered_json_gives_a_clear_error(edit, message, tmp_path):
    path, doc = _saved(tmp_path)
    edit(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=message):
        load_model(tmp_path / "m")


def test_shape_mismatch_is_named_when_no_checksum(tmp_path):
    path, doc = _saved(tmp_path)
    doc["architecture"]["layers"][2]["in_features"] = 6
    del doc["weights"]["sha256"]
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"2\.weight has shape \[7, 7\], the architecture needs \[7, 6\]"):
        load_model(tmp_path / "m")


def test_missing_or_broken_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no architecture file"):
        load_model(tmp_path / "nothing")
    path, _ = _saved(tmp_path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_model(tmp_path / "m")
    _saved(tmp_path / "b")
    (tmp_path / "b" / "m.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="no weights file"):
        load_model(tmp_path / "b" / "m")
    # weights of another save under the same name: the checksum catches the mix-up
    _saved(tmp_path / "c")
    save_model(nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 7), nn.SiLU(), nn.Linear(7, 2, bias=False), nn.Sigmoid()), tmp_path / "d" / "m")
    os.replace(tmp_path / "d" / "m.safetensors", tmp_path / "c" / "m.safetensors")
    with pytest.raises(ValueError, match="SHA-256 does not match"):
        load_model(tmp_path / "c" / "m")


def test_plain_state_dicts_load_without_unpickling(tmp_path):
    model = _mlp()
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    state = load_state_dict_file(tmp_path / "sd.pt")
    assert state.keys() == model.state_dict().keys()
    torch.save({"state_dict": model.state_dict(), "epoch": 3}, tmp_path / "ckpt.pt")
    assert load_state_dict_file(tmp_path / "ckpt.pt").keys() == state.keys()
    save_model(model, tmp_path / "m")
    assert torch.equal(load_state_dict_file(tmp_path / "m.safetensors")["0.weight"], model[0].weight.detach())


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch evil-was-here",))


def test_a_malicious_pickle_is_refused_and_not_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"w": torch.zeros(1), "x": _Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="weights_only=True"):
        load_state_dict_file(tmp_path / "evil.pt")
    assert not (tmp_path / "evil-was-here").exists()
    with pytest.raises(FileNotFoundError):
        load_state_dict_file(tmp_path / "none.pt")


# ---------------------------------------------------------------- graphs, whitelist, safety (issues 10.5, 16)


def test_io_and_conversion_share_one_whitelist(tmp_path):
    from reluscope.network import WHITELIST
    from reluscope.network.architecture import _LAYERS

    assert set(_LAYERS) == {cls.__name__ for cls in WHITELIST}
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout1d(0.1), nn.AlphaDropout(0.1), nn.ReLU(),
                          nn.Unflatten(1, (1, 2, 2)), nn.Dropout2d(0.2), nn.AdaptiveAvgPool2d((None, 1)), nn.Flatten()).eval()
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    x = torch.randn(3, 4)
    assert torch.equal(loaded(x), model(x)) and str(loaded) == str(model)


def _graph_models():
    from reluscope.testing.models import BasicBlock, LeNetFunctional, ResidualMLP, randomise_batchnorm, tiny_resnet, tiny_vgg

    return {
        "resnet": (lambda: tiny_resnet(BasicBlock, layers=(2, 1)), (2, 3, 8, 8)),
        "vgg": (lambda: tiny_vgg(), (2, 3, 8, 8)),
        "lenet-functional": (lambda: LeNetFunctional().eval(), (2, 1, 12, 12)),
        "residual-mlp": (lambda: randomise_batchnorm(ResidualMLP()).eval(), (4, 3)),
    }


@pytest.mark.parametrize("name", ["resnet", "vgg", "lenet-functional", "residual-mlp"])
def test_graph_models_round_trip(name, tmp_path):
    from reluscope.network import to_network

    make, shape = _graph_models()[name]
    model = make()
    save_model(model, tmp_path / "g")
    doc = json.loads((tmp_path / "g.json").read_text())
    assert doc["architecture"]["type"] == "Graph"
    loaded = load_model(tmp_path / "g")
    assert isinstance(loaded, torch.fx.GraphModule) and not loaded.training
    assert all(p.requires_grad for p in loaded.parameters())
    x = torch.randn(shape)
    assert torch.equal(loaded(x), model(x))
    assert set(loaded.state_dict()) <= set(model.state_dict())
    a, b = to_network(loaded, input_shape=shape[1:]), to_network(model, input_shape=shape[1:])
    assert [n.name for n in a.nodes] == [n.name for n in b.nodes] and [n.inputs for n in a.nodes] == [n.inputs for n in b.nodes]
    save_model(loaded, tmp_path / "again")  # what was loaded saves again
    assert torch.equal(load_model(tmp_path / "again")(x), model(x))


@pytest.mark.parametrize("edit, message", [
    (lambda g: g["nodes"][2].__setitem__("target", "os.system"), "function 'os.system' is not one reluscope supports"),
    (lambda g: g["nodes"][1]["args"].__setitem__(0, {"node": 5}), "not a reference to an earlier node"),
    (lambda g: g["nodes"][1].__setitem__("target", "nowhere"), "module 'nowhere' is not among"),
    (lambda g: g["modules"].__setitem__("a..b", {"type": "ReLU"}), "is not a module path"),
    (lambda g: g["nodes"].pop(), "must start with its one input and end with its output"),
    (lambda g: g["nodes"][2].update(op="method", target="__reduce__"), "method '__reduce__' is not one"),
])
def test_tampered_graph_files_are_refused(edit, message, tmp_path):
    from reluscope.testing.models import ResidualMLP

    save_model(ResidualMLP().eval(), tmp_path / "g")
    doc = json.loads((tmp_path / "g.json").read_text())
    edit(doc["architecture"])
    (tmp_path / "g.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=message):
        load_model(tmp_path / "g")


def test_unsupported_graph_model_is_refused_naming_the_node(tmp_path):
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)

        def forward(self, x):
            return torch.exp(self.fc(x))

    with pytest.raises(TypeError, match="node 'exp'"):
        save_model(Custom(), tmp_path / "m")
    assert not list(tmp_path.iterdir())


def test_a_huge_declared_layer_is_refused_before_any_allocation(tmp_path):
    import resource

    path, doc = _saved(tmp_path)
    doc["architecture"]["layers"][0].update(in_features=60000, out_features=60000)  # 14 GB in float32
    del doc["weights"]["sha256"]
    path.write_text(json.dumps(doc))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as f:
        in_use = int(f.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (in_use + 2 * 2**30, hard))
    try:
        with pytest.raises(ValueError, match=r"0\.weight has shape \[7, 5\], the architecture needs \[60000, 60000\]"):
            load_model(tmp_path / "m")
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def test_deep_nesting_is_refused_without_recursion_error(tmp_path):
    path, doc = _saved(tmp_path)
    text = json.dumps(doc)
    for depth, message in [(100, "nested more than 64 deep"), (900, "nested too deeply|nested more than 64 deep")]:
        arch = '{"type": "Sequential", "layers": [' * depth + '{"type": "ReLU"}' + "]}" * depth
        path.write_text(text.replace(json.dumps(doc["architecture"]), arch))
        with pytest.raises(ValueError, match=message):
            load_model(tmp_path / "m")


@pytest.mark.parametrize("corrupt", [
    lambda b: b[:5],
    lambda b: (10**9).to_bytes(8, "little") + b[8:],
    lambda b: b[:8] + b"{" * (len(b) - 8),
    lambda b: b[: len(b) // 2],
])
def test_corrupt_safetensors_give_a_clear_error(corrupt, tmp_path):
    path, doc = _saved(tmp_path)
    del doc["weights"]["sha256"]
    path.write_text(json.dumps(doc))
    weights = tmp_path / "m.safetensors"
    weights.write_bytes(corrupt(weights.read_bytes()))
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        load_model(tmp_path / "m")
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        load_state_dict_file(weights)


def test_model_class_with_a_state_dict(tmp_path, monkeypatch):
    (tmp_path / "mine_pkg").mkdir()
    (tmp_path / "mine_pkg" / "__init__.py").write_text("")
    (tmp_path / "mine_pkg" / "nets.py").write_text(
        "import torch.nn as nn, torch.nn.functional as F\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.a, self.b = nn.Linear(3, 4), nn.Linear(4, 2)\n"
        "    def forward(self, x):\n"
        "        return self.b(F.relu(self.a(x))) + x[:, :2]\n"
        "class NeedsArgs(nn.Module):\n"
        "    def __init__(self, width):\n"
        "        super().__init__()\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    from mine_pkg.nets import Net

    torch.manual_seed(0)
    model = Net()
    torch.save(model.state_dict(), tmp_path / "w.pt")
    loaded = load_model(tmp_path / "w.pt", model_class="mine_pkg.nets:Net")
    x = torch.randn(5, 3)
    assert torch.equal(loaded(x), model(x)) and not loaded.training
    for spec, message in [("mine_pkg.nets", "expected 'package.module:Class'"), ("no_such_pkg:Net", "cannot import"),
                          ("mine_pkg.nets:Nope", "is not a torch.nn.Module class"),
                          ("mine_pkg.nets:NeedsArgs", "constructible without arguments")]:
        with pytest.raises(ValueError, match=message):
            load_model(tmp_path / "w.pt", model_class=spec)


def test_cli_model_class_with_a_state_dict(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from reluscope.cli import app

    (tmp_path / "cli_pkg.py").write_text(
        "import torch, torch.nn as nn, torch.nn.functional as F\n"
        "class Res(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 2)\n"
        "    def forward(self, x):\n"
        "        return self.b(x + F.relu(self.a(x)))\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    from cli_pkg import Res

    torch.manual_seed(0)
    model = Res()
    from safetensors.torch import save_file

    save_file(model.state_dict(), tmp_path / "w.safetensors")
    x = np.random.default_rng(0).normal(size=(9, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    res = CliRunner().invoke(app, ["--model-class", "cli_pkg:Res", "patterns", str(tmp_path / "w.safetensors"),
                                   "--input", str(tmp_path / "x.npy"), "--out", str(tmp_path / "p.npz")])
    assert res.exit_code == 0, res.output
    from reluscope import activation_patterns, unpack_patterns
    from reluscope.patterns import PackedPatterns

    data = np.load(tmp_path / "p.npz")
    bits = unpack_patterns(PackedPatterns(torch.from_numpy(data["words"]), int(data["n_units"])))
    assert torch.equal(bits, activation_patterns(model.eval(), torch.from_numpy(x)))
    res = CliRunner().invoke(app, ["--model-class", "cli_pkg", "patterns", str(tmp_path / "w.safetensors"),
                                   "--input", str(tmp_path / "x.npy"), "--out", str(tmp_path / "p.npz")])
    assert res.exit_code == 2 and "expected 'package.module:Class'" in res.output


def test_model_paths_names_the_pair_whatever_the_suffix():
    from pathlib import Path

    from reluscope.network.io import model_paths

    pair = (Path("run/net.safetensors"), Path("run/net.json"))
    assert model_paths("run/net") == model_paths("run/net.json") == model_paths("run/net.safetensors") == pair
