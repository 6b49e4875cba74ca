"""The command line under bad inputs (issue 10.4, 10.7, 10.8): one `error: ...` line, a documented
exit code, no traceback, and outputs checked before any work."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from reluscope.cli import app
from reluscope.cli._common import EXIT_CODES, exit_code_for
from reluscope.network.io import save_model

runner = CliRunner()
SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 6), torch.nn.ReLU(), torch.nn.Linear(6, 2)).eval()
    path = tmp_path_factory.mktemp("bad-cli") / "moons"
    save_model(net, path)
    return path


def _run(args):
    result = runner.invoke(app, [str(a) for a in args])
    lines = [l for l in result.stderr.splitlines() if l.strip()]
    return result, lines


def _assert_one_error(result, lines, code, fragment):
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    errors = [l for l in lines if l.startswith("error: ")]
    assert len(errors) == 1, lines
    assert re.search(fragment, errors[0]), errors[0]


# (name, args with {tmp}/{model}/{file}, expected exit code, fragment of the error line)
_CASES = [
    # option parse errors name the option and are one line (2)
    ("non-integer option", ["train", "--epochs", "x", "--out", "{tmp}/m"], 2, r"Invalid value for '--epochs'"),
    ("unknown option", ["train", "--oot", "x"], 2, r"No such option: --oot"),
    ("missing option", ["traverse", "{model}"], 2, r"Missing option '--out'"),
    ("unknown command", ["trian"], 2, r"No such command 'trian'"),
    ("bad choice", ["train", "--data", "nope", "--out", "{tmp}/m"], 2, r"'--data'"),
    # outputs checked before the work (4)
    ("train --out under a file", ["train", "--data", "moons", "--out", "{file}/m"], 4, r"is a file, not a folder"),
    ("traverse --out a folder", ["traverse", "{model}", "--data", "moons", "--out", "{tmp}"], 4, r"is a folder; give a file path"),
    ("patterns --out a folder", ["patterns", "{model}", "--data", "moons", "--out", "{tmp}"], 4, r"is a folder"),
    ("patterns --stats under a file", ["patterns", "{model}", "--data", "moons", "--out", "{tmp}/p.npz", "--stats", "{file}/s.json"], 4, r"is a file"),
    ("demo --out is a file", ["demo", "--out", "{file}"], 4, r"exists and is not a folder"),
    ("hull --plot under a file", ["hull", "{points}", "--out", "{tmp}/h.json", "--plot", "{file}/h.png"], 4, r"is a file"),
    # the figure suffix is checked before the computation, even before the model is read (2)
    ("regions figure suffix", ["regions", "{tmp}/no-model", "--out", "{tmp}/r.json", "--figure", "{tmp}/r.gif"], 2, r"figure: expected a \.png, \.svg or \.pdf"),
    ("hull plot suffix", ["hull", "{points}", "--out", "{tmp}/h.json", "--plot", "{tmp}/h.jpeg"], 2, r"figure: expected"),
    # inputs missing or corrupt (3)
    ("missing model", ["traverse", "{tmp}/no-model", "--data", "moons", "--out", "{tmp}/t.json"], 3, r"no architecture file"),
    ("missing point file", ["hull", "{tmp}/none.txt", "--out", "{tmp}/h.json"], 3, r"no such file"),
    ("corrupt .npy", ["patterns", "{model}", "--input", "{bad_npy}", "--out", "{tmp}/p.npz"], 3, r"--input: .* is not a numeric \.npy file"),
    ("empty .npy", ["patterns", "{model}", "--input", "{tmp}/a-file", "--out", "{tmp}/p.npz"], 3, r"--input: .*a-file is not a numeric \.npy file"),
    # values (2)
    ("duplicate point id", ["hull", "{dup_points}", "--out", "{tmp}/h.json"], 2, r"line 3: id 0 appears twice"),
    ("stats equals out", ["patterns", "{model}", "--data", "moons", "--out", "{tmp}/p.json"], 2, r"--stats: expected a file other than --out"),
]


@pytest.mark.parametrize("name,args,code,fragment", _CASES, ids=[c[0] for c in _CASES])
def test_cli_errors_are_one_line_with_their_exit_code(name, args, code, fragment, model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY garbage")
    (tmp_path / "points.txt").write_text("3 2\n0 0 0\n1 1 0\n2 0 1\n")
    (tmp_path / "dup.txt").write_text("2 2\n0 0 0\n0 1 0\n")
    subs = {"tmp": tmp_path, "model": model, "file": tmp_path / "a-file", "bad_npy": tmp_path / "bad.npy",
            "points": tmp_path / "points.txt", "dup_points": tmp_path / "dup.txt"}
    result, lines = _run([a.format(**subs) for a in args])
    _assert_one_error(result, lines, code, fragment)


def test_train_into_an_unwritable_place_fails_before_training(tmp_path):
    (tmp_path / "a-file").write_text("")
    t0 = time.perf_counter()
    result, lines = _run(["train", "--data", "moons", "--epochs", "500", "--out", tmp_path / "a-file" / "m"])
    _assert_one_error(result, lines, EXIT_CODES["output"], "is a file")
    assert "training" not in result.stderr and time.perf_counter() - t0 < 20  # 500 epochs would take minutes


def test_exit_codes_are_distinct_and_documented():
    from reluscope.regions import RegionBudgetError

    codes = {
        "usage": exit_code_for(ValueError("x")), "input": exit_code_for(FileNotFoundError("x")),
        "output": exit_code_for(PermissionError("x")), "memory": exit_code_for(RegionBudgetError("x")),
        "runtime": exit_code_for(RuntimeError("mat1 and mat2 shapes cannot be multiplied")),
        "dependency": exit_code_for(ImportError("x")), "internal": exit_code_for(ZeroDivisionError()),
    }
    assert codes == {k: EXIT_CODES[k] for k in codes}
    assert len(set(EXIT_CODES.values())) == len(EXIT_CODES)
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for code in EXIT_CODES.values():
        assert re.search(rf"\| {code} \|", readme), f"exit code {code} is not in the README's table"


def test_runtime_errors_become_one_line(model, tmp_path, monkeypatch):
    import reluscope.traversal

    def boom(*args, **kwargs):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied (1x3 and 2x6)\nmore torch detail")

    monkeypatch.setattr(reluscope.traversal, "traverse", boom)
    result, lines = _run(["traverse", model, "--data", "moons", "--out", tmp_path / "t.json"])
    _assert_one_error(result, lines, EXIT_CODES["runtime"], r"RuntimeError: mat1 and mat2 .* more torch detail")


@pytest.mark.parametrize("err", [
    MemoryError(),
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),  # a RuntimeError (would be 6)
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you tried to allocate 8e10 bytes"),
], ids=["MemoryError", "torch.OutOfMemoryError", "cpu-allocator"])
def test_out_of_memory_exits_with_the_memory_code(model, tmp_path, monkeypatch, err):
    # exit_code_for's out-of-memory branch (`_checks.out_of_memory`): without it these give 70 or 6
    import reluscope.traversal

    def boom(*args, **kwargs):
        raise err

    assert exit_code_for(err) == EXIT_CODES["memory"]
    monkeypatch.setattr(reluscope.traversal, "traverse", boom)
    result, lines = _run(["traverse", model, "--data", "moons", "--out", tmp_path / "t.json"])
    _assert_one_error(result, lines, EXIT_CODES["memory"], type(err).__name__)


# ------------------------------------------------------------------ data cache (10.4)


def test_a_zero_byte_cache_is_rebuilt_not_aborted(tmp_path, monkeypatch):
    from reluscope.data import mnist

    monkeypatch.setenv("RELUSCOPE_CACHE", str(tmp_path))
    (tmp_path / "mnist.npz").write_bytes(b"")
    with pytest.warns(UserWarning, match="ignoring the damaged cache"):
        assert mnist._read_cache(mnist._MNIST) is None  # was: EOFError, which click shows as "Aborted."


def test_corrupt_fashion_gz_is_one_line(tmp_path, monkeypatch):
    from reluscope.data.mnist import IDX_FILES

    monkeypatch.setenv("RELUSCOPE_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "fashion"
    src.mkdir()
    for name in IDX_FILES:
        (src / f"{name}.gz").write_bytes(b"\x1f\x8b garbage")
    result, lines = _run(["data", "fashion-mnist", "--source", src])
    _assert_one_error(result, lines, EXIT_CODES["input"], r"is not a valid gzip file")


def test_unwritable_cache_fails_before_reading(tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("RELUSCOPE_CACHE", str(tmp_path / "a-file" / "cache"))
    result, lines = _run(["data", "fashion-mnist"])
    _assert_one_error(result, lines, EXIT_CODES["output"], r"is a file, not a folder")


def test_sigterm_removes_temporary_files(tmp_path):
    """A SIGTERM while an output is being written leaves no hidden temporary file behind."""
    script = (
        "import sys, time, signal, numpy as np\n"
        "from reluscope.cli import _terminate\n"
        "from reluscope.io_utils import atomic_path\n"
        "signal.signal(signal.SIGTERM, _terminate)\n"
        f"with atomic_path({str(tmp_path / 'cache.npz')!r}) as tmp:\n"
        "    tmp.write_bytes(bytes(1000))\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env, text=True)
    assert proc.stdout.readline().strip() == "writing"
    assert any(p.name.startswith(".cache.npz.") for p in tmp_path.iterdir())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    proc.stdout.close()
    assert list(tmp_path.iterdir()) == []


def test_the_cli_entry_point_installs_the_sigterm_handler(monkeypatch):
    import reluscope.cli as cli

    monkeypatch.setattr(cli, "app", lambda: None)
    before = signal.getsignal(signal.SIGTERM)
    try:
        cli.main()
        assert signal.getsignal(signal.SIGTERM) is cli._terminate
    finally:
        signal.signal(signal.SIGTERM, before)


# ------------------------------------------------------------------ pairs written as a unit (10.8)


def test_pair_waits_for_the_folder_lock_and_lands_together(tmp_path):
    from reluscope.io_utils import folder_lock, write_together

    done = threading.Event()

    def writer():
        with write_together(tmp_path / "p.npz", tmp_path / "p.json") as (a, b):
            a.write_text("run-2")
            b.write_text("run-2")
        done.set()

    (tmp_path / "p.npz").write_text("run-1")
    (tmp_path / "p.json").write_text("run-1")
    with folder_lock(tmp_path):  # another run is moving its pair into place
        thread = threading.Thread(target=writer)
        thread.start()
        assert not done.wait(0.5)
        assert (tmp_path / "p.npz").read_text() == (tmp_path / "p.json").read_text() == "run-1"
    thread.join(10)
    assert done.is_set()
    assert (tmp_path / "p.npz").read_text() == (tmp_path / "p.json").read_text() == "run-2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json", "p.npz"]  # no staging folder left


def test_pair_is_not_replaced_when_the_run_fails(tmp_path):
    from reluscope.io_utils import write_together

    (tmp_path / "p.npz").write_text("old")
    with pytest.raises(ZeroDivisionError):
        with write_together(tmp_path / "p.npz", tmp_path / "p.json") as (a, b):
            a.write_text("new")
            1 / 0
    assert (tmp_path / "p.npz").read_text() == "old" and not (tmp_path / "p.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.npz"]


def test_concurrent_patterns_runs_leave_a_matching_pair(model, tmp_path):
    """Two processes writing the same --out: the .npz and .json come from the same run."""
    rng = np.random.default_rng(0)
    for i, n in enumerate((7, 11)):
        np.save(tmp_path / f"x{i}.npy", rng.normal(size=(n, 2)).astype(np.float32))
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    procs = [
        subprocess.Popen([sys.executable, "-m", "reluscope.cli", "patterns", str(model), "--input", str(tmp_path / f"x{i}.npy"),
                          "--out", str(tmp_path / "p.npz")], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for i in range(2)
    ]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    with np.load(tmp_path / "p.npz") as npz:
        n_rows = npz["words"].shape[0]
    assert json.loads((tmp_path / "p.json").read_text())["n_inputs"] == n_rows


def _commands(group, prefix=()):
    for name, cmd in sorted(group.commands.items()):
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, prefix + (name,))
        else:
            yield prefix + (name,), cmd


def test_every_command_checks_its_outputs_as_what_they_are():
    """Commands whose --out is a folder must say so to the output check (else exit 4 on a folder)."""
    import typer

    for path, cmd in _commands(typer.main.get_command(app)):
        out = next((p for p in cmd.params if p.name == "out"), None)
        if out is None:
            continue
        f, kind = cmd.callback, None
        while f is not None and kind is None:
            kind, f = getattr(f, "output_kind", None), getattr(f, "__wrapped__", None)
        assert kind is not None, f"reluscope {' '.join(path)}: decorate it with @user_errors"
        folder = (out.help or "").startswith("Output folder")
        assert (kind == "folder") == folder, f"reluscope {' '.join(path)}: --out is {'a folder' if folder else 'not a folder'}, checked as {kind}"
