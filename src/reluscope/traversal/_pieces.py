"""Exact traversal's bookkeeping of intervals: the pieces of every segment (`_Pieces`), their
pattern bits (`_Bits`), splitting them at roots, the (Leaky)ReLU sign split and its rounding
check, and merging adjacent pieces with equal patterns (see `exact`'s module docstring)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..patterns.bits import PackedPatterns, pack_patterns, unpack_patterns


@dataclass
class _Pieces:
    """All current intervals of a batch of segments, in order (segment, then t).

    `vals` holds the live node values of the graph: vals[j] = (h, dh), node j's output (j = -1:
    the network input) at each interval's midpoint and its derivative in t. A chain holds one
    value at a time; a residual block also holds its shortcut until the addition reads it."""

    seg: torch.Tensor  # long [I]
    ta: torch.Tensor  # float64 [I]
    tb: torch.Tensor  # float64 [I]
    vals: dict  # node index -> (h [I, ...], dh [I, ...])
    bits: _Bits  # the pattern bits of every activation node so far
    uncertain: torch.Tensor  # bool [I]: some decision so far was within rounding

    @property
    def tm(self) -> torch.Tensor:
        return (self.ta + self.tb) / 2

@dataclass(frozen=True)
class _PackedTable:
    """A layer's patterns packed as `pack_patterns` packs them, one row per distinct moment
    (the sparse front's tables, `_front`), with a hash per row: rows whose hashes differ differ."""

    words: torch.Tensor  # uint8 [R, ceil(units / 8)]
    n_units: int
    hashes: torch.Tensor  # int64 [R]

    @property
    def shape(self) -> tuple[int, int]:
        return self.words.shape[0], self.n_units


class _Bits:
    """The pattern bits of every activation layer so far: each layer's bits are stored once, as
    computed (a table [R, units_l]: bool, or a `_PackedTable`), with the table row of every
    current piece (None: row i). Splitting a piece copies one index per layer, not its bits (97k
    bits per piece on the tangent CNN at width 64), and adjacent pieces that share a row need no
    comparison."""

    def __init__(self, parts=()):
        self.parts = list(parts)

    def append(self, bits: torch.Tensor) -> None:
        self.parts.append((bits, None))

    def __len__(self) -> int:
        return len(self.parts)

    def index_select(self, rows: torch.Tensor) -> _Bits:
        return _Bits([(t, rows if i is None else i.index_select(0, rows)) for t, i in self.parts])

    @staticmethod
    def _rows_of(t, i, rows: torch.Tensor) -> torch.Tensor:
        idx = rows if i is None else i.index_select(0, rows)
        if isinstance(t, _PackedTable):
            return unpack_patterns(PackedPatterns(t.words.index_select(0, idx), t.n_units))
        return t.index_select(0, idx)

    def rows(self, rows: torch.Tensor) -> torch.Tensor:
        """bool [len(rows), units]: the patterns of the pieces `rows`."""
        if not self.parts:
            return torch.zeros(rows.shape[0], 0, dtype=torch.bool, device=rows.device)
        return torch.cat([self._rows_of(t, i, rows) for t, i in self.parts], 1)

    @property
    def byte_aligned(self) -> bool:
        """Every part but the last fills whole bytes: packed rows are the parts' bytes side by side."""
        return bool(self.parts) and not any(t.shape[1] % 8 for t, _ in self.parts[:-1])

    def packed_rows(self, rows: torch.Tensor) -> PackedPatterns:
        """The patterns of the pieces `rows`, packed. Packed tables are copied as bytes and bool
        ones packed on their own, when every part but the last fills whole bytes; otherwise
        the bool rows are packed together."""
        units = sum(t.shape[1] for t, _ in self.parts)
        if not self.byte_aligned:
            return pack_patterns(self.rows(rows))
        words = []
        for t, i in self.parts:
            idx = rows if i is None else i.index_select(0, rows)
            words.append(t.words.index_select(0, idx) if isinstance(t, _PackedTable)
                         else pack_patterns(t.index_select(0, idx)).words)
        return PackedPatterns(torch.cat(words, 1), units)

    def same_as_previous(self, n: int, device) -> torch.Tensor:
        """bool [n - 1]: piece j has the pattern of piece j - 1."""
        same = torch.ones(max(n - 1, 0), dtype=torch.bool, device=device)
        for t, i in self.parts:
            if i is None:
                same &= (t[1:] == t[:-1]).all(dim=1)
                continue
            differ = (i[1:] != i[:-1]).nonzero().squeeze(1)
            rows = t
            if isinstance(t, _PackedTable):  # different hashes: different rows, no look needed
                rows = t.words
                hashed = t.hashes.index_select(0, i.index_select(0, differ + 1)) == t.hashes.index_select(
                    0, i.index_select(0, differ))
                same.index_fill_(0, differ.masked_select(~hashed), False)
                differ = differ.masked_select(hashed)
            if differ.numel():
                a, b = i.index_select(0, differ + 1), i.index_select(0, differ)
                equal = (rows.index_select(0, a) == rows.index_select(0, b)).all(dim=1)
                same.index_copy_(0, differ, same.index_select(0, differ) & equal)
        return same

# Indexing goes through index_select / masked_select / index_copy_ only: on CPU, advanced
# indexing (x[idx], x[mask], x[idx] = v) is up to 20x slower for these 1-D arrays.


def _flat_nonzero(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, flat index) of the True entries of a 2-D mask, row-major."""
    flat = mask.reshape(-1).nonzero().squeeze(1)
    return torch.div(flat, mask.shape[1], rounding_mode="floor"), flat


def _split_at(ta: torch.Tensor, tb: torch.Tensor, row: torch.Tensor, v: torch.Tensor, tol: float):
    """Split interval row[j] at v[j] (any order; ends and near-duplicates are dropped)."""
    inside = (v > ta.index_select(0, row) + tol) & (v < tb.index_select(0, row) - tol)
    row, v = row.masked_select(inside), v.masked_select(inside)
    if row.numel() == 0:
        return None
    order = torch.argsort(v)
    row = row.index_select(0, order)
    by_row = torch.argsort(row, stable=True)  # now by interval, then by t
    row, v = row.index_select(0, by_row), v.index_select(0, order.index_select(0, by_row))
    keep = torch.ones_like(row, dtype=torch.bool)
    keep[1:] = (row[1:] != row[:-1]) | (v[1:] - v[:-1] > tol)  # ties: one breakpoint
    row, v = row.masked_select(keep), v.masked_select(keep)
    n = ta.shape[0]
    k = torch.bincount(row, minlength=n)
    pieces = k + 1
    parent = torch.repeat_interleave(torch.arange(n, device=ta.device), pieces)
    first = torch.cumsum(pieces, 0) - pieces
    left = torch.empty(parent.shape[0], dtype=ta.dtype, device=ta.device)
    right = torch.empty_like(left)
    left.index_copy_(0, first, ta)
    right.index_copy_(0, first + k, tb)
    rank = torch.arange(row.shape[0], device=ta.device) - (torch.cumsum(k, 0) - k).index_select(0, row)
    pos = first.index_select(0, row) + rank
    right.index_copy_(0, pos, v)
    left.index_copy_(0, pos + 1, v)
    return parent, left, right


def _apply_split(p: _Pieces, split) -> _Pieces:
    """The pieces after a split: every live value is moved to its new piece's midpoint (exact,
    each value is affine in t on its piece), not only the one being split on."""
    parent, left, right = split
    shift = (left + right) / 2 - p.tm.index_select(0, parent)
    vals = {}
    for j, (h, dh) in p.vals.items():
        dh = dh.index_select(0, parent)
        h = h.index_select(0, parent)
        h.addcmul_(dh, shift.to(h.dtype).reshape((-1,) + (1,) * (dh.dim() - 1)))
        vals[j] = (h, dh)
    return _Pieces(p.seg.index_select(0, parent), left, right, vals, p.bits.index_select(parent),
                   p.uncertain.index_select(0, parent))


def _sign_split(p: _Pieces, z: torch.Tensor, dz: torch.Tensor, tol: float):
    """Where to split at the zeros of every unit of z (a live value): (parent, left, right) or
    None (applied in chunks by `_descend` when the new pieces would not fit in memory at once).
    A zero t* = tm - z/dz lies within half-width w of the midpoint iff |z| < w |dz|: that test
    needs no division over all units (dz = 0 never splits), and the roots are computed for the
    few candidates only."""
    z, dz = z.reshape(z.shape[0], -1), dz.reshape(z.shape[0], -1)
    w = (p.tb - p.ta) / 2 - tol
    row, flat = _flat_nonzero(torch.lt(z.abs(), dz.abs().mul_(w[:, None].to(dz.dtype))))
    roots = p.tm.index_select(0, row) - z.reshape(-1).index_select(0, flat) / dz.reshape(-1).index_select(0, flat)
    return _split_at(p.ta, p.tb, row, roots, tol)


def _select(p: _Pieces, rows: torch.Tensor) -> _Pieces:
    vals = {j: (h.index_select(0, rows), dh.index_select(0, rows)) for j, (h, dh) in p.vals.items()}
    return _Pieces(p.seg.index_select(0, rows), p.ta.index_select(0, rows), p.tb.index_select(0, rows),
                   vals, p.bits.index_select(rows), p.uncertain.index_select(0, rows))


def _near_zero(z: torch.Tensor, dz: torch.Tensor, half: torch.Tensor, dtol: float) -> torch.Tensor:
    """bool [I]: some unit stays within dtol of its layer's scale over the whole piece (so its
    sign is decided by rounding). z, dz [I, n] at the midpoint, half [I] the half-widths.

    A unit exactly 0 with derivative exactly 0 is not counted: its bit 0 is the definition's
    answer for a unit that is zero on the piece (dead rows, zero biases after an all-off layer,
    exact cancellation of representable values); float64 rounding leaves +-1e-17, not 0, when it
    decides."""
    reach = z.abs().to(torch.float64) + dz.abs().to(torch.float64) * half[:, None]
    scale = reach.amax(1, keepdim=True)
    return ((reach <= dtol * scale) & (reach > 0)).any(1)


def _merge_equal(seg, ta, tb, bits, uncertain):
    """Merge adjacent pieces of one segment whose patterns are equal. `bits`: `_Bits` (the merged
    pieces' patterns come back packed, `PackedPatterns`) or a bool tensor [n, units] (bool rows)."""
    if isinstance(bits, _Bits):
        same = (seg[1:] == seg[:-1]) & bits.same_as_previous(seg.shape[0], seg.device)
    else:
        same = (seg[1:] == seg[:-1]) & (bits[1:] == bits[:-1]).all(dim=1)
    start = torch.ones_like(seg, dtype=torch.bool)
    start[1:] = ~same
    end = torch.ones_like(start)
    end[:-1] = start[1:]
    first, last = start.nonzero().squeeze(1), end.nonzero().squeeze(1)
    group = torch.cumsum(start, 0) - 1  # merged piece of each piece
    merged = torch.zeros(first.shape[0], dtype=torch.bool, device=seg.device)
    merged.index_put_((group,), uncertain, accumulate=True)
    rows = _pack_rows(bits, first) if isinstance(bits, _Bits) else bits.index_select(0, first)
    return seg.index_select(0, first), ta.index_select(0, first), tb.index_select(0, last), rows, merged


# Two values (or lines) within this many ulps of their size are equal up to rounding: the sparse
# front's argmax ties (`_sparse_nb._same_line`) and the max-pool crossings (`_maxpool`) use it.
LINE_ULPS = 4
LINE_TOL64 = LINE_ULPS * 2.0 ** -52  # the same in float64, for the compiled kernels

_PACK_CHUNK = 1 << 25  # bool bytes unpacked at once while packing (~4 copies of it live)


def _pack_rows(bits: _Bits, rows: torch.Tensor) -> PackedPatterns:
    """The patterns of pieces `rows`, packed a few thousand rows at a time, so the bool patterns
    of a whole segment (1.9 GiB for the tangent CNN at width 64) never exist at once."""
    units = sum(t.shape[1] for t, _ in bits.parts)
    words = torch.empty(rows.shape[0], (units + 7) // 8, dtype=torch.uint8, device=rows.device)
    # bytes a row takes while packing: packed tables are copied as they are (an eighth)
    row_bytes = (sum(t.shape[1] // 8 if isinstance(t, _PackedTable) else t.shape[1] for t, _ in bits.parts)
                 if bits.byte_aligned else units)
    step = max(1, _PACK_CHUNK // max(row_bytes, 1))
    for a in range(0, rows.shape[0], step):
        words[a:a + step] = bits.packed_rows(rows[a:a + step]).words
    return PackedPatterns(words, units)


def _join_leaves(leaves: list):
    """The finished chunks (seg, ta, tb, packed patterns, uncertain), each merged within itself,
    in order, as one: merged across chunk ends (only a chunk's first piece can have the pattern
    of the piece before it) and copied once, each chunk freed as soon as it is copied."""
    if len(leaves) == 1:
        return leaves.pop()
    starts, last = [0] * len(leaves), (0, leaves[0][0].shape[0] - 1)  # last kept piece: (leaf, row)
    for i in range(1, len(leaves)):
        seg, ta, tb, pat, unc = leaves[i]
        if seg.shape[0] == 0:
            continue
        j, r = last
        pseg, _, ptb, ppat, punc = leaves[j]
        if r >= 0 and bool(pseg[r] == seg[0]) and torch.equal(ppat.words[r], pat.words[0]):
            ptb[r] = tb[0]
            punc[r] |= unc[0]
            starts[i] = 1
        if seg.shape[0] > starts[i]:
            last = (i, seg.shape[0] - 1)
    out = [torch.cat([leaf[k][a:] for leaf, a in zip(leaves, starts)]) for k in (0, 1, 2, 4)]
    first = leaves[0][3]
    words = first.words.new_empty((int(out[0].shape[0]), first.words.shape[1]))
    row = 0
    for i, a in enumerate(starts):
        w = leaves[i][3].words[a:]
        words[row:row + w.shape[0]] = w
        row += w.shape[0]
        leaves[i] = None  # free the chunk's patterns once copied
    return out[0], out[1], out[2], PackedPatterns(words, first.n_units), out[3]
