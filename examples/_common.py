"""Shared argument handling for the examples: `--out` for the figure, `--small` for the tests."""

from __future__ import annotations

import argparse
from pathlib import Path


def parse(doc: str, default_out: str):
    ap = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("out/examples") / default_out, help="figure to write (.png)")
    ap.add_argument("--small", action="store_true", help="tiny sizes (what the test suite runs)")
    args = ap.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    return args


def save(fig, path: Path) -> None:
    """Write the figure atomically (the library's writer) and say where."""
    import io

    from reluscope.io_utils import write_bytes_atomic

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    write_bytes_atomic(path, buf.getvalue())
    print(f"wrote {path}")
