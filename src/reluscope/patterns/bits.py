"""Activation patterns: one bit per hidden unit, and Hamming distances between patterns.

The pattern of an input x is `Network.bits(x)`: bit = f(z) > 0 (z > 0 for every elementwise
activation reluscope supports), one-hot argmax bits for MaxPool2d, hidden layers in order, and with
`include_output` the sign bits of the output units appended. Patterns are bool tensors [N, units];
`pack_patterns` stores them eight to a byte for large sets, and `pairwise_hamming` compares
thousands against thousands block by block, never building an [N, M, units] cube.
"""

from __future__ import annotations

import enum
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm.auto import tqdm

from .._checks import (
    DEFAULT_MEMORY_BUDGET, MemoryBudgetError, as_enum, as_float_tensor, check_batch, check_int, check_memory_budget,
    rows_within_budget,
)
from ..network import Network, to_network
from ..results import Result

if TYPE_CHECKING:
    from collections.abc import Sequence
    from .._types import ArrayLike
    from .._types import ModelLike

__all__ = [
    "activation_patterns",
    "pattern_layout",
    "PackedPatterns",
    "pack_patterns",
    "unpack_patterns",
    "hamming",
    "pairwise_hamming",
    "HammingMethod",
    "prepare_network",
]

def prepare_network(model: ModelLike, x: torch.Tensor, name: str = "x", *, dtype: torch.dtype | None = None) -> tuple[Network, torch.Tensor]:
    """Convert `model`, check the batch `x` against its input shape, and put both on x's device.

    The network is evaluated in `dtype` (default: x's floating dtype), so float64 inputs give
    float64 patterns even for a float32 model.
    """
    x = as_float_tensor(x, name)
    net = to_network(model)
    if net.input_shape is None:
        if x.dim() < 2:
            raise ValueError(f"{name}: expected a batch [N, ...] of inputs, got shape {list(x.shape)}")
        net = net.with_input_shape(x.shape[1:])
    check_batch(x, name, net.input_shape)
    dtype = dtype or x.dtype
    if net.dtype != dtype or net.device != x.device:
        net = net.to(dtype=dtype, device=x.device)
    return net, x.to(dtype)


def _bytes_per_row(net: Network, x: torch.Tensor, include_output: bool) -> int:
    """Working memory of one input: its two widest intermediate tensors plus its pattern bits."""
    sizes = [x[0].numel()]
    with torch.no_grad():
        for v in net.values(x[:1]):
            sizes.append(v[0].numel())
    widest = sorted(sizes)[-2:]
    return sum(widest) * x.element_size() + net.n_units(include_output=include_output)


def activation_patterns(
    model: ModelLike,
    x: ArrayLike,
    *,
    include_output: bool = False,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: bool = False,
    layers: str | Sequence[str] | None = None,
) -> torch.Tensor:
    """bool [N, units]: the activation pattern of each row of `x`, on x's device.

    `model` is a torch.nn.Module (converted with `to_network`) or a `Network`; `x` is a batch
    [N, *input_shape]. Evaluated in x's dtype, in chunks of as many rows as fit in `memory_budget`
    bytes of intermediate tensors. Works for smooth activations too (bit z > 0). `progress` shows a
    bar over the chunks. Units follow the graph's topological order; `layers` (a name or a list:
    activation modules, or graph nodes such as a functional "relu") keeps only those layers' bits,
    and `pattern_layout` says which bits are which layer.
    """
    net, x = prepare_network(model, x)
    nodes = None if layers is None else net.find(layers, what="layers", activations_only=True)
    rows = rows_within_budget(_bytes_per_row(net, x, include_output), memory_budget, what="input", total=x.shape[0])
    with torch.no_grad():
        parts = [
            net.bits(chunk, include_output=include_output, nodes=nodes)
            for chunk in tqdm(x.split(rows), disable=not progress, desc="patterns", unit="chunk")
        ]
    return torch.cat(parts) if len(parts) > 1 else parts[0]


def pattern_layout(model: ModelLike, x: ArrayLike, *, include_output: bool = False, layers: str | Sequence[str] | None = None):
    """Which bits of `activation_patterns(model, x, ...)` belong to which layer: a tuple of
    `LayerUnits(name, kind, start, stop, node)`, in the patterns' order."""
    net, x = prepare_network(model, x)
    nodes = None if layers is None else net.find(layers, what="layers", activations_only=True)
    return net.unit_layout(include_output=include_output, nodes=nodes)


# ---------------------------------------------------------------- packed storage


@dataclass(frozen=True, eq=False)
class PackedPatterns(Result):
    """Patterns stored eight bits to a byte: `words` uint8 [N, ceil(units / 8)], little-endian bits.

    Bit u of row i is `(words[i, u // 8] >> (u % 8)) & 1`; padding bits of the last byte are 0, so
    XOR and popcount of whole bytes give Hamming distances directly.
    """

    words: torch.Tensor
    n_units: int

    def __post_init__(self):
        if self.words.dtype != torch.uint8 or self.words.dim() != 2:
            raise TypeError(f"words: expected a uint8 tensor [N, bytes], got {self.words.dtype} {list(self.words.shape)}")
        if self.words.shape[1] != (self.n_units + 7) // 8:
            raise ValueError(
                f"words: expected {(self.n_units + 7) // 8} bytes per row for {self.n_units} units, "
                f"got {self.words.shape[1]}"
            )

    def __len__(self) -> int:
        return self.words.shape[0]

    @property
    def shape(self) -> tuple[int, int]:
        return (self.words.shape[0], self.n_units)

    def __getitem__(self, index) -> "PackedPatterns":
        words = self.words[index]
        return PackedPatterns(words.unsqueeze(0) if words.dim() == 1 else words, self.n_units)

    def unpack(self) -> torch.Tensor:
        return unpack_patterns(self)


def _bit_weights(device) -> torch.Tensor:
    return torch.tensor([1, 2, 4, 8, 16, 32, 64, 128], dtype=torch.uint8, device=device)


def _check_bits(bits, name: str) -> torch.Tensor:
    if not isinstance(bits, torch.Tensor):
        raise TypeError(f"{name}: expected a bool tensor [N, units] or PackedPatterns, got {type(bits).__name__}")
    if bits.dtype != torch.bool or bits.dim() != 2:
        raise TypeError(f"{name}: expected a bool tensor [N, units], got {bits.dtype} of shape {list(bits.shape)}")
    return bits


def pack_patterns(bits: torch.Tensor) -> PackedPatterns:
    """Pack bool [N, units] into `PackedPatterns` (1/8 of the memory)."""
    bits = _check_bits(bits, "bits")
    n, units = bits.shape
    if bits.device.type == "cpu":  # numpy's packbits: one C pass (the torch route below makes four copies)
        words = np.packbits(bits.numpy(), axis=1, bitorder="little")
        return PackedPatterns(torch.from_numpy(words).reshape(n, (units + 7) // 8), units)
    pad = (-units) % 8
    padded = torch.nn.functional.pad(bits.to(torch.uint8), (0, pad)).reshape(n, (units + pad) // 8, 8)
    words = (padded * _bit_weights(bits.device)).sum(dim=2, dtype=torch.uint8)
    return PackedPatterns(words, units)


def unpack_patterns(packed: PackedPatterns) -> torch.Tensor:
    """bool [N, units] back from `PackedPatterns`."""
    if not isinstance(packed, PackedPatterns):
        raise TypeError(f"packed: expected PackedPatterns, got {type(packed).__name__}")
    w = packed.words
    if w.device.type == "cpu":
        bits = np.unpackbits(w.numpy(), axis=1, count=packed.n_units, bitorder="little")
        return torch.from_numpy(bits.view(np.bool_)).reshape(w.shape[0], packed.n_units)
    bits = (w.unsqueeze(2) & _bit_weights(w.device)) != 0
    return bits.reshape(w.shape[0], w.shape[1] * 8)[:, : packed.n_units]


def _as_packed(p, name: str) -> PackedPatterns:
    return p if isinstance(p, PackedPatterns) else pack_patterns(_check_bits(p, name))


def _as_bits(p, name: str) -> torch.Tensor:
    return unpack_patterns(p) if isinstance(p, PackedPatterns) else _check_bits(p, name)


def _to_words64(words: torch.Tensor) -> torch.Tensor:
    """uint8 [N, nb] -> int64 [N, ceil(nb / 8)] (zero padded), for 64-bit XOR/popcount."""
    pad = (-words.shape[1]) % 8
    if pad:
        words = torch.nn.functional.pad(words, (0, pad))
    return words.contiguous().view(torch.int64) if words.numel() else words.new_zeros(words.shape[0], words.shape[1] // 8, dtype=torch.int64)


_M1, _M2, _M4, _H01 = 0x5555555555555555, 0x3333333333333333, 0x0F0F0F0F0F0F0F0F, 0x0101010101010101


def _popcount64(x: torch.Tensor) -> torch.Tensor:
    """Bits set in each int64 (SWAR). Arithmetic shifts are harmless: every mask clears bit 63."""
    x = x - ((x >> 1) & _M1)
    x = (x & _M2) + ((x >> 2) & _M2)
    x = (x + (x >> 4)) & _M4
    # the top byte of x * 0x0101.. sums the eight byte counts (wrap-around of the product is
    # intended; the sum <= 64 never reaches the sign bit)
    return ((x * _H01) >> 56) & 0xFF


def hamming(a: torch.Tensor | PackedPatterns, b: torch.Tensor | PackedPatterns) -> torch.Tensor:
    """int64 [N]: Hamming distance between row i of `a` and row i of `b` (bool or packed).

    A single row [1, units] is broadcast against the other set.
    """
    pa, pb = _as_packed(a, "a"), _as_packed(b, "b")
    if pa.n_units != pb.n_units:
        raise ValueError(f"b: expected patterns of {pa.n_units} units like a, got {pb.n_units}")
    if len(pa) != len(pb) and 1 not in (len(pa), len(pb)):
        raise ValueError(f"b: expected {len(pa)} rows like a (or one row), got {len(pb)}")
    x = _to_words64(pa.words) ^ _to_words64(pb.words)
    return _popcount64(x).sum(dim=1)


class HammingMethod(str, enum.Enum):
    """How `pairwise_hamming` computes an [N, M] block.

    * PACKED: XOR of 64-bit words and a SWAR popcount; memory per block is N_b * M * units / 64
      words. Exact for any number of units, works on any device without floating point.
    * MATMUL: d(p, q) = |p| + |q| - 2 p.q with a float32 matrix product of unpacked 0/1 blocks.
      Exact while units < 2**24 (float32 integers), and BLAS makes it the fastest on CPU and GPU
      for patterns of hundreds of units or more, hence the default.
    """

    PACKED = "packed"
    MATMUL = "matmul"


_BLOCK_ROWS = 1024  # rows of a per block at most: past this BLAS gains nothing and the budget is spent


def hamming_dtype(n_units: int) -> torch.dtype:
    """The smallest signed integer type that holds distances up to `n_units`.

    int16 below 32,768 units: 2 bytes like uint16, but torch's uint16 lacks subtraction and max
    on CPU, and a distance matrix is meant to be computed with.
    """
    return torch.int16 if n_units <= torch.iinfo(torch.int16).max else torch.int32


def pairwise_hamming(
    a: torch.Tensor | PackedPatterns,
    b: torch.Tensor | PackedPatterns | None = None,
    *,
    method: HammingMethod | str = HammingMethod.MATMUL,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    block: int | None = None,
) -> torch.Tensor:
    """[N, M] Hamming distances between every row of `a` and every row of `b` (default a).

    The dtype is the smallest that holds the number of units (`hamming_dtype`: int16 below 32,768
    units, else int32). Computed in blocks of rows of `a` (at most 1,024) into the preallocated
    result, never materialising an [N, M, units] cube. The result must fit in `memory_budget`
    bytes (refused up front with its size otherwise) and the blocks' working memory stays within
    it too. `a` and `b` may be bool [N, units] or `PackedPatterns`. `block` (rows) is deprecated:
    the blocks follow `memory_budget`.
    """
    method = as_enum(method, HammingMethod, "method")
    if block is None:
        block = _BLOCK_ROWS
    else:
        warnings.warn("pairwise_hamming(block=) is deprecated; the blocks follow memory_budget= (bytes)",
                      DeprecationWarning, stacklevel=2)
        block = check_int(block, "block")
    budget = check_memory_budget(memory_budget)
    b = a if b is None else b
    n_a = a.n_units if isinstance(a, PackedPatterns) else _check_bits(a, "a").shape[1]
    n_b = b.n_units if isinstance(b, PackedPatterns) else _check_bits(b, "b").shape[1]
    if n_a != n_b:
        raise ValueError(f"b: expected patterns of {n_a} units like a, got {n_b}")
    rows_a = a.words.shape[0] if isinstance(a, PackedPatterns) else a.shape[0]
    rows_b = b.words.shape[0] if isinstance(b, PackedPatterns) else b.shape[0]
    dtype = hamming_dtype(n_a)
    need = rows_a * rows_b * dtype.itemsize
    if need > budget:
        raise MemoryBudgetError(
            f"pairwise_hamming: the result [{rows_a}, {rows_b}] ({dtype}) needs {need / 2**20:.0f} MiB, "
            f"over memory_budget={budget} bytes; pass fewer rows (compare in blocks of a) or a larger "
            "memory_budget"
        )
    left = max(1, budget - need)  # what the blocks may use beside the result
    if method is HammingMethod.MATMUL:
        if n_a >= 1 << 24:
            raise ValueError(f"method: matmul is exact below 2**24 units, got {n_a}; use 'packed'")
        fa, fb = _as_bits(a, "a"), _as_bits(b, "b")
        out = torch.empty(rows_a, rows_b, dtype=dtype, device=fa.device)
        qb = fb.to(torch.float32)
        nb = qb.sum(dim=1)
        # per row of a: its float copy, and two float32 rows of M (the product and the sum)
        rows = min(block, rows_within_budget(4 * (n_a + 2 * rows_b), left, what="row of a", total=rows_a))
        for start in range(0, rows_a, rows):
            qa = fa[start : start + rows].to(torch.float32)
            d = (qa @ qb.T).mul_(-2.0).add_(qa.sum(dim=1, keepdim=True)).add_(nb)
            out[start : start + rows] = d.round_()
        return out
    wa, wb = _to_words64(_as_packed(a, "a").words), _to_words64(_as_packed(b, "b").words)
    out = torch.empty(rows_a, rows_b, dtype=dtype, device=wa.device)
    # keep each XOR block near 4M words (32 MB) whatever `block` says, and within the budget
    per_row = 3 * 8 * max(1, wb.shape[0] * wb.shape[1])
    rows = max(1, min(block, (1 << 22) // max(1, wb.shape[0] * wb.shape[1])))
    rows = min(rows, rows_within_budget(per_row, left, what="row of a", total=rows_a))
    for s in range(0, wa.shape[0], rows):
        out[s : s + rows] = _popcount64(wa[s : s + rows, None, :] ^ wb[None, :, :]).sum(dim=2)
    return out
