"""What a traversal returns: `Traversal` (one segment) and `Traversals` (many, ragged).

`traverse_many` walks thousands of segments at once; building one `Traversal` per segment (a
`cat` and a few slices each) cost more host time than the walk itself on a GPU. `Traversals`
keeps the batch flat: every piece of every segment in one pattern matrix, segment i's pieces at
rows offsets[i]:offsets[i + 1], and its breakpoints at t[offsets[i] + i : offsets[i + 1] + i + 1]
(each segment has one breakpoint more than pieces). It is a read-only sequence: `len`, indexing
and iteration give `Traversal` views (slices, no copies), built only when asked for.

Patterns are stored packed, eight bits to a byte (`packed`, a `PackedPatterns`), and `patterns`
unpacks them when read: one segment of the tangent paper's CNN at width 64 has ~20,000 pieces of
~97,000 bits each, 1.9 GiB as bool and 240 MiB packed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from ..patterns.bits import PackedPatterns, _check_bits, pack_patterns, unpack_patterns
from ..results import Result

__all__ = ["Traversal", "Traversals", "TOLERANCE"]

TOLERANCE = 1e-12  # default resolution in t (segments have length 1), see traverse(tolerance=)


def _packed(patterns, packed) -> PackedPatterns:
    """The packed patterns from either constructor argument (bool patterns are packed)."""
    if (patterns is None) == (packed is None):
        raise TypeError("expected exactly one of patterns (bool [n, units]) and packed (PackedPatterns)")
    if packed is not None:
        if not isinstance(packed, PackedPatterns):
            raise TypeError(f"packed: expected PackedPatterns, got {type(packed).__name__}")
        return packed
    if isinstance(patterns, PackedPatterns):
        return patterns
    return pack_patterns(_check_bits(patterns, "patterns"))  # the error names the argument given


@dataclass(frozen=True, eq=False, init=False)
class Traversal(Result):
    """The regions met along a segment x0 -> x1, in order.

    t: float64 [n + 1], t[0] = 0, t[-1] = 1, strictly increasing; piece i is the open interval
    (t[i], t[i+1]) of gamma(t) = x0 + t (x1 - x0) and lies in one linear region.
    patterns: bool [n, units]; consecutive rows differ (unpacked from `packed` when read: keep
    the result of one read rather than reading it again for a large traversal).
    packed: the same patterns as `PackedPatterns` (eight bits to a byte), as stored.
    dtype: the precision the model was analysed in ("float64" unless dtype="model" was asked).
    tolerance: the resolution in t (pieces shorter than this are not resolved).
    uncertain: bool [n] or None: pieces on which some unit stayed within rounding of zero (or a
    max-pool window within rounding of a tie) over the whole piece, so its bit follows rounding.
    """

    t: torch.Tensor
    packed: PackedPatterns
    dtype: str = "float64"
    tolerance: float = TOLERANCE
    uncertain: torch.Tensor | None = None

    def __init__(self, t: torch.Tensor, patterns: torch.Tensor | PackedPatterns | None = None, dtype: str = "float64",
                 tolerance: float = TOLERANCE, uncertain: torch.Tensor | None = None, *,
                 packed: PackedPatterns | None = None):
        for name, value in (("t", t), ("packed", _packed(patterns, packed)), ("dtype", dtype),
                            ("tolerance", tolerance), ("uncertain", uncertain)):
            object.__setattr__(self, name, value)

    @property
    def patterns(self) -> torch.Tensor:
        """bool [n, units], unpacked from `packed` (a new tensor at every read)."""
        return unpack_patterns(self.packed)

    @property
    def n_uncertain(self) -> int:
        """How many pieces had a decision within rounding (see `uncertain`)."""
        return 0 if self.uncertain is None else int(self.uncertain.sum())

    @property
    def n_pieces(self) -> int:
        return self.packed.words.shape[0]

    @property
    def n_units(self) -> int:
        """Bits per pattern."""
        return self.packed.n_units

    def __len__(self) -> int:
        return self.n_pieces

    @property
    def lengths(self) -> torch.Tensor:
        """float64 [n]: the length of each piece in t."""
        return self.t[1:] - self.t[:-1]

    @property
    def midpoints(self) -> torch.Tensor:
        """float64 [n]: the middle of each piece in t."""
        return (self.t[1:] + self.t[:-1]) / 2


@dataclass(frozen=True, eq=False, init=False)
class Traversals(Result, Sequence):
    """The traversals of many segments in one ragged layout (see the module docstring).

    t: float64 [P + S], the breakpoints of the S segments one after the other;
    patterns: bool [P, units], the P pieces of all segments in order (unpacked from `packed`,
    the `PackedPatterns` as stored, when read);
    offsets: int64 [S + 1] on the CPU, segment i's pieces are rows offsets[i]:offsets[i + 1];
    uncertain: bool [P] (see `Traversal.uncertain`); dtype, tolerance: as in `Traversal`.
    `len`, `[i]` and iteration give per-segment `Traversal` views; `[a:b]` a list of them.
    """

    t: torch.Tensor
    packed: PackedPatterns
    offsets: torch.Tensor
    dtype: str = "float64"
    tolerance: float = TOLERANCE
    uncertain: torch.Tensor | None = None

    def __init__(self, t: torch.Tensor, patterns: torch.Tensor | PackedPatterns | None = None,
                 offsets: torch.Tensor | None = None, dtype: str = "float64", tolerance: float = TOLERANCE,
                 uncertain: torch.Tensor | None = None, *, packed: PackedPatterns | None = None):
        if offsets is None:
            raise TypeError("offsets: expected int64 [S + 1], the first piece of each segment and the end")
        for name, value in (("t", t), ("packed", _packed(patterns, packed)), ("offsets", offsets),
                            ("dtype", dtype), ("tolerance", tolerance), ("uncertain", uncertain)):
            object.__setattr__(self, name, value)

    @property
    def patterns(self) -> torch.Tensor:
        """bool [P, units], unpacked from `packed` (a new tensor at every read)."""
        return unpack_patterns(self.packed)

    def __len__(self) -> int:
        return self.offsets.shape[0] - 1

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        n = len(self)
        if isinstance(i, bool) or not isinstance(i, int) and not hasattr(i, "__index__"):
            raise TypeError(f"index: expected an int or a slice, got {type(i).__name__}")
        i = int(i)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for {n} traversals")
        i %= n
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        unc = None if self.uncertain is None else self.uncertain[a:b]
        return Traversal(self.t[a + i : b + i + 1], None, self.dtype, self.tolerance, unc,
                         packed=PackedPatterns(self.packed.words[a:b], self.packed.n_units))

    def __iter__(self) -> Iterator[Traversal]:
        return (self[i] for i in range(len(self)))

    @property
    def n_pieces(self) -> torch.Tensor:
        """int64 [S] (CPU): pieces per segment."""
        return self.offsets[1:] - self.offsets[:-1]

    @property
    def segment(self) -> torch.Tensor:
        """int64 [P] on the patterns' device: the segment of each piece."""
        device = self.packed.words.device
        return torch.repeat_interleave(torch.arange(len(self), device=device), self.n_pieces.to(device))

    @property
    def n_uncertain(self) -> torch.Tensor:
        """int64 [S] (CPU): pieces per segment whose decision was within rounding."""
        if self.uncertain is None:
            return torch.zeros(len(self), dtype=torch.int64)
        per = torch.zeros(len(self), dtype=torch.int64, device=self.uncertain.device)
        per.index_add_(0, self.segment, self.uncertain.to(torch.int64))
        return per.cpu()

    @classmethod
    def concat(cls, parts: Sequence[Traversals]) -> Traversals:
        """One `Traversals` of the segments of `parts`, in order."""
        if len(parts) == 1:
            return parts[0]
        if not parts:
            raise ValueError("parts: expected at least one Traversals to concatenate")
        units = {p.packed.n_units for p in parts}
        if len(units) > 1:  # packed rows of 10 and 12 units are both 2 bytes: cat would mix them silently
            raise ValueError(f"parts: expected traversals of one network, got patterns of {sorted(units)} units")
        shift = torch.cumsum(torch.tensor([0] + [int(p.offsets[-1]) for p in parts[:-1]]), 0)
        offsets = torch.cat([parts[0].offsets[:1]] + [p.offsets[1:] + s for p, s in zip(parts, shift.tolist())])
        unc = None if any(p.uncertain is None for p in parts) else torch.cat([p.uncertain for p in parts])
        words = torch.cat([p.packed.words for p in parts])
        return cls(torch.cat([p.t for p in parts]), None, offsets, parts[0].dtype, parts[0].tolerance, unc,
                   packed=PackedPatterns(words, parts[0].packed.n_units))

    @classmethod
    def from_pieces(cls, seg: torch.Tensor, ta: torch.Tensor, tb: torch.Tensor,
                    patterns: torch.Tensor | PackedPatterns, uncertain: torch.Tensor | None, n_segments: int,
                    dtype: str, tolerance: float) -> Traversals:
        """From pieces sorted by (segment, t): seg [P], their ends ta, tb [P], patterns [P, units]
        (bool or packed)."""
        counts = torch.bincount(seg, minlength=n_segments)
        offsets = torch.zeros(n_segments + 1, dtype=torch.int64, device=seg.device)
        torch.cumsum(counts, 0, out=offsets[1:])
        p = seg.shape[0]
        rows = torch.arange(p, device=seg.device)
        t = torch.empty(p + n_segments, dtype=ta.dtype, device=ta.device)
        t.index_copy_(0, rows + seg, ta)  # piece r of segment s starts at r + s
        t.index_copy_(0, offsets[1:] + torch.arange(n_segments, device=seg.device), tb.index_select(0, offsets[1:] - 1))
        return cls(t, patterns, offsets.cpu(), dtype, tolerance, uncertain)
