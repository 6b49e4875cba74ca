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
    with pytest.raises(TypeError, match=r"module '1' of type Softplus cannot be saved"):
        save_model(nn.Sequential(nn.Linear(2, 2), nn.Softplus()), tmp_path / "m")

    class Custom(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(TypeError, match="expected an nn.Sequential"):
        save_model(Custom(), tmp_path / "m")
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
        (lambda d: d.__setitem__("architecture", [1, 2]), "expected {'type': 'Sequential'"),
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
