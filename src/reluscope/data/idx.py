"""The IDX format of the MNIST release: a big-endian header, then raw uint8 data.

Header: two zero bytes, a type code (0x08 = uint8), the number of dimensions, then one uint32 per
dimension. Images are `idx3` (magic 2051 = 0x00000803), labels `idx1` (magic 2049 = 0x00000801).
Only the uint8 type is needed for MNIST and Fashion-MNIST, so only it is supported.
"""

from __future__ import annotations

import hashlib
import struct

import numpy as np

__all__ = ["encode_idx", "decode_idx", "idx_md5"]

_UINT8 = 0x08


def _header(shape: tuple[int, ...]) -> bytes:
    return struct.pack(f">BBBB{len(shape)}I", 0, 0, _UINT8, len(shape), *shape)


def encode_idx(array: np.ndarray) -> bytes:
    """The IDX byte stream of a uint8 array (e.g. [60000, 28, 28] -> train-images-idx3-ubyte)."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise TypeError(f"array: expected dtype uint8, got {array.dtype}")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"array: expected 1 to 255 dimensions, got {array.ndim}")
    return _header(array.shape) + np.ascontiguousarray(array).tobytes()


def idx_md5(array: np.ndarray) -> str:
    """MD5 of `encode_idx(array)` without building the stream (no 47 MB copy for MNIST)."""
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8:
        raise TypeError(f"array: expected dtype uint8, got {array.dtype}")
    md5 = hashlib.md5(_header(array.shape))
    md5.update(memoryview(array).cast("B"))
    return md5.hexdigest()


def decode_idx(data: bytes, *, name: str = "data") -> np.ndarray:
    """A read-only uint8 array from an IDX byte stream, checking header and length."""
    data = bytes(data) if not isinstance(data, bytes) else data
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{name}: not an IDX stream (expected two zero bytes, got {data[:2]!r})")
    if data[2] != _UINT8:
        raise ValueError(f"{name}: expected IDX type code 0x08 (uint8), got 0x{data[2]:02x}")
    ndim = data[3]
    start = 4 + 4 * ndim
    if len(data) < start:
        raise ValueError(f"{name}: IDX header of {ndim} dimensions is truncated ({len(data)} bytes)")
    shape = struct.unpack(f">{ndim}I", data[4:start])
    expected = int(np.prod(shape, dtype=np.int64))
    if len(data) - start != expected:
        raise ValueError(
            f"{name}: IDX header says shape {list(shape)} ({expected} bytes), "
            f"but {len(data) - start} bytes follow"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=start).reshape(shape)
