"""What every experiment module shares: config checks, and the files a writer wrote."""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import torch

from .._checks import check_int
from ..folding import draw_pairs

__all__ = ["check_ints", "check_widths", "WrittenFiles", "segments", "csv_text"]


def check_ints(config: object, names: Iterable[str], *, minimum: int = 1) -> None:
    """Each named field of `config` an integer >= `minimum` (the message names the field)."""
    for name in names:
        check_int(getattr(config, name), name, minimum=minimum)


def check_widths(value: Iterable[int], name: str) -> tuple[int, ...]:
    """A non-empty sequence of integers >= 1 (layer widths, depths) as a tuple of ints."""
    widths = tuple(value)
    if not widths:
        raise ValueError(f"{name}: expected a non-empty sequence of ints >= 1, got {value!r}")
    return tuple(check_int(w, name, what="each entry") for w in widths)


def segments(test: tuple[torch.Tensor, torch.Tensor], classes: tuple[int, int], pairs: int,
             seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Endpoints (x0, x1) of `pairs` seeded segments between test inputs of `classes[0]` and `classes[1]`."""
    xt, yt = test
    idx = draw_pairs(yt, classes, budget=pairs, seed=seed)
    return xt[torch.as_tensor(idx[:, 0])], xt[torch.as_tensor(idx[:, 1])]


def csv_text(rows: Iterable[Mapping]) -> str:
    """`rows` as CSV text: a header of every key in order of first appearance, one line per row."""
    rows = list(rows)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


@dataclasses.dataclass(frozen=True)
class WrittenFiles(Mapping):
    """Base of the small frozen dataclasses `write_*` functions return: one `Path` field per file
    written, by role. Reads as a read-only mapping role -> path too (`files.json`,
    `files["json"]`, `set(files)`, `files.items()`), as the dicts writers returned before."""

    def __getitem__(self, role: str) -> Path:
        if role not in self._roles():
            raise KeyError(role)
        return getattr(self, role)

    def __iter__(self) -> Iterator[str]:
        return iter(self._roles())

    def __len__(self) -> int:
        return len(self._roles())

    def _roles(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is not None]
