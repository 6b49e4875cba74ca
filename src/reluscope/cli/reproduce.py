"""`reluscope reproduce PAPER`: run a paper's protocol and write its report with a verdict per claim."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from .._checks import check_int
from ..reproduce import Scale, run_reproduce
from ._common import address_option, emit_json, user_errors

__all__ = ["register", "reproduce"]


class PaperName(str, enum.Enum):
    tangent = "tangent"
    folding = "folding"
    hulls = "hulls"
    topology = "topology"
    all = "all"


@user_errors(out="folder")
def reproduce(
    paper: Annotated[PaperName, typer.Argument(help="Which paper: tangent, folding, hulls, topology or all.")],
    scale: Annotated[str, typer.Option(help="quick (default: all four papers in under 15 minutes on 2 CPU cores) or paper (the papers' own sizes, for the sweep engine).")] = "quick",
    out: Annotated[Path, typer.Option(help="Output folder: OUT/<paper>/report.html and results.json, OUT/summary.json.")] = Path("reproduce"),
    seed: Annotated[int, typer.Option(help="Seed of every random choice (data, initialisation, pairs).")] = 0,
    address: address_option("studies' tasks") = None,
    workers: Annotated[Optional[int], typer.Option(help="Most tasks in flight at once (default: one per CPU).")] = None,
):
    """Reproduce a paper's claims: OUT/<paper>/report.html and results.json with a table claim /
    paper's figure / ours / verdict (reproduced, partly, not reproduced, untestable)."""
    try:
        scale_ = Scale(scale)
    except ValueError:
        raise ValueError(f"--scale: expected quick or paper, got {scale!r}") from None
    if workers is not None:
        check_int(workers, "--workers")
    results = run_reproduce(paper.value, scale=scale_, out=out, seed=seed, address=address, workers=workers,
                            progress=True)
    for r in results:
        typer.echo(f"{r.paper}: " + (f"FAILED ({r.error.strip().splitlines()[-1]})" if r.error else ", ".join(
            f"{c.claim.key} {c.verdict.value}" for c in r.claims)) + f" [{r.seconds:.0f} s wall, {r.cpu_seconds or 0:.0f} s CPU] -> {out / r.paper / 'report.html'}",
            err=True)
    emit_json({r.paper: {"verdicts": r.verdicts(), "error": r.error,
                         "claims": {c.claim.key: {"ours": c.ours, "verdict": c.verdict} for c in r.claims}}
               for r in results})
    if any(r.error for r in results):
        raise typer.Exit(1)


def register(app: typer.Typer, experiment: typer.Typer) -> None:
    """Add `reluscope reproduce`."""
    app.command("reproduce")(reproduce)
