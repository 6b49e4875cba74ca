"""`reluscope reproduce`: each paper's claims checked by its own protocol, with a verdict per claim.

One runner module per paper (`reluscope.reproduce.<paper>`, listed in `PAPERS`) exposes
`run(ctx: RunContext) -> PaperResult`. See docs/methods.md for the protocols and every choice the
papers leave open.
"""

from ._framework import (
    PAPERS,
    Claim,
    ClaimResult,
    PaperResult,
    RunContext,
    Scale,
    Verdict,
    VerdictCounts,
    paper_names,
    run_paper,
    run_reproduce,
    write_paper_report,
)

__all__ = [
    "PAPERS", "Claim", "ClaimResult", "PaperResult", "RunContext", "Scale", "Verdict", "VerdictCounts",
    "paper_names", "run_paper", "run_reproduce", "write_paper_report",
]
