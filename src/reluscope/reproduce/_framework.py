"""The per-paper reproduction framework: claims, verdicts, one runner per paper, atomic reports.

A paper's runner is a function `run(ctx: RunContext) -> PaperResult` in the module named in
`PAPERS`. It runs the paper's protocol at `ctx.scale`, saves the figures behind its claims with
`ctx.save_figure`, and returns one `ClaimResult` per claim. `run_paper` then writes
`<out>/<paper>/results.json` and `<out>/<paper>/report.html` atomically.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import importlib
import importlib.util
import io
import json
import os
import platform
import sys
import time
import traceback
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path

from ..io_utils import to_jsonable, write_bytes_atomic, write_json_atomic, write_text_atomic
from ..sweep import ray_session, result_type, run_sweep

__all__ = [
    "Verdict", "VerdictCounts", "Scale", "Claim", "ClaimResult", "PaperResult", "RunContext", "PAPERS",
    "run_paper", "run_reproduce", "write_paper_report", "paper_names",
]


class Verdict(str, Enum):
    """What our run says about one claim of a paper.

    - ``REPRODUCED``: our number supports the claim as stated.
    - ``PARTLY``: supported under some of the paper's readings or settings, not all (the notes say
      which), or in direction but not in size.
    - ``NOT_REPRODUCED``: our number contradicts the claim, or the effect is not there; the notes
      give the reason we found. A result, not a failure of the run.
    - ``UNTESTABLE``: the claim cannot be checked at this scale or with what the paper publishes.
    """

    REPRODUCED = "reproduced"
    PARTLY = "partly"
    NOT_REPRODUCED = "not reproduced"
    UNTESTABLE = "untestable"


class Scale(str, Enum):
    """How big a reproduction runs.

    - ``QUICK`` (default): every paper in a few minutes on a 2-core CPU, so `reluscope reproduce
      all` finishes in under 15 minutes; smaller than the papers' own protocol, and each report
      says by how much.
    - ``PAPER``: the papers' own sizes (nets, seeds, images); hours on a CPU, meant for the sweep
      engine (`--address`, `--workers`) on many cores, a GPU or a cluster.
    """

    QUICK = "quick"
    PAPER = "paper"


@dataclass(frozen=True)
class Claim:
    """A claim of a paper as the paper states it, and the figure the paper gives for it."""

    key: str
    claim: str
    paper_figure: str


@dataclass(frozen=True, eq=False)
class VerdictCounts(Mapping):
    """How many claims of a paper got each verdict.

    Also reads as a read-only mapping verdict value -> count (`counts["not reproduced"]`,
    `dict(counts)`), which is its JSON form in results.json and summary.json; it compares equal
    to any mapping with the same items."""

    reproduced: int = 0
    partly: int = 0
    not_reproduced: int = 0
    untestable: int = 0

    @classmethod
    def of(cls, verdicts: Iterable[Verdict]) -> "VerdictCounts":
        """Count `verdicts`."""
        verdicts = [Verdict(v) for v in verdicts]
        return cls(*(sum(v is w for v in verdicts) for w in Verdict))

    def __getitem__(self, verdict: Verdict | str) -> int:
        try:
            return getattr(self, Verdict(verdict).name.lower())
        except ValueError:
            raise KeyError(verdict) from None

    def __iter__(self) -> Iterator[str]:
        return iter(v.value for v in Verdict)

    def __len__(self) -> int:
        return len(Verdict)


@dataclass(frozen=True)
class ClaimResult:
    """Our check of one claim: our figure, the verdict, the figures behind it and why.

    `figures` are paths relative to the paper's report folder; `values` holds the numbers behind
    `ours` (JSON-able) so that other tools need not parse text.
    """

    claim: Claim
    ours: str
    verdict: Verdict
    figures: tuple[str, ...] = ()
    notes: str = ""
    values: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.claim, Claim):
            raise TypeError(f"claim: expected a Claim, got {type(self.claim).__name__}")
        object.__setattr__(self, "verdict", Verdict(self.verdict))
        object.__setattr__(self, "figures", tuple(str(f) for f in self.figures))


@dataclass(frozen=True)
class PaperResult:
    """One paper's reproduction: its claims checked, the settings used and the run's context."""

    paper: str
    title: str
    citation: str
    scale: Scale
    claims: tuple[ClaimResult, ...]
    settings: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    error: str | None = None
    cpu_seconds: float | None = None  # this process and the sweep tasks (on Ray workers too), see run_paper
    load_average: tuple[float, ...] = ()  # the machine's 1-minute load at the start and at the end

    def verdicts(self) -> VerdictCounts:
        """How many claims got each verdict."""
        return VerdictCounts.of(c.verdict for c in self.claims)

    def to_dict(self) -> dict:
        return to_jsonable(self)

    def to_markdown(self) -> str:
        """The claim table as Markdown (claim | paper's figure | ours | verdict), e.g. for a README."""
        def cell(text: str) -> str:
            return str(text).replace("|", "\\|").replace("\n", " ")

        lines = ["| claim | paper's figure | ours | verdict |", "|---|---|---|---|"]
        lines += [f"| {cell(c.claim.claim)} | {cell(c.claim.paper_figure)} | {cell(c.ours)} | {c.verdict.value} |"
                  for c in self.claims]
        return "\n".join(lines)


@dataclass(frozen=True)
class RunContext:
    """What a paper's runner gets: the scale, its own output folder, seeds and sweep resources.

    `address` / `workers` are passed to the sweep engine (`reluscope.sweep.run_sweep`) by `map`;
    `workers=0` runs the tasks in this process, without Ray.
    """

    paper: str
    scale: Scale
    out: Path
    seed: int = 0
    address: str | None = None
    workers: int | None = None
    progress: bool = False
    # CPU seconds of the sweep tasks that ran outside this process (summed by `map`)
    task_cpu: dict = field(default_factory=lambda: {"seconds": 0.0}, repr=False, compare=False)

    @property
    def quick(self) -> bool:
        return self.scale is Scale.QUICK

    def generator_seed(self, name: str) -> int:
        """A seed derived from the run seed and `name`, stable across runs and runner order."""
        return (self.seed * 1_000_003 + zlib.crc32(f"{self.paper}/{name}".encode())) % 2**31

    def save_figure(self, fig, name: str) -> str:
        """Save a matplotlib figure as figures/<name>.png (atomically); returns the relative path."""
        buf = io.BytesIO()
        try:
            fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        finally:
            pyplot = sys.modules.get("matplotlib.pyplot")
            if pyplot is not None:
                pyplot.close(fig)
        rel = f"figures/{name}.png"
        write_bytes_atomic(self.out / rel, buf.getvalue())
        return rel

    def map(self, task: Callable, configs: Sequence, *, desc: str = "") -> list:
        """Results of `task(c)` for every config, in order, through the sweep engine (`reluscope.sweep`).

        Tasks are pure seeded top-level functions config -> result; configs are dataclasses or dicts.
        Results come back rebuilt as the task's annotated return dataclass (else as their JSON
        form), the same whether they ran here, on Ray, or in an earlier run. Rows are kept in
        `out/sweep/<desc>/sweep.jsonl`: at paper scale a rerun resumes from them, at quick scale
        they are recomputed. With no `address` / `workers`, tasks run on an embedded local Ray when
        Ray is installed, else one after another in this process (`workers=0` asks for that).
        A failed task raises once the others have finished; its traceback is in the table.
        """
        workers = self.workers
        if workers is None and self.address is None and self.quick and importlib.util.find_spec("ray") is None:
            workers = 0
        folder = self.out / "sweep" / ("".join(ch if ch.isalnum() else "-" for ch in desc) or "tasks")
        if self.quick:
            (folder / "sweep.jsonl").unlink(missing_ok=True)
        summary = run_sweep(task, list(configs), out=folder, address=self.address, workers=workers,
                            retry_failed=True, progress=self.progress).check(desc or "tasks")
        if summary.workers:  # in this process (workers=0) the tasks' CPU is already the process's
            self.task_cpu["seconds"] += summary.cpu_seconds
        return summary.results(result_type(task))


# ----------------------------------------------------------------------------- registry

# paper -> module with `run(ctx) -> PaperResult` (and TITLE, CITATION, CLAIMS). Listed explicitly:
# a paper without a runner is reported as such instead of silently missing.
PAPERS: dict[str, str] = {
    "tangent": "reluscope.reproduce.tangent",
    "folding": "reluscope.reproduce.folding",
    "hulls": "reluscope.reproduce.hulls",
    "topology": "reluscope.reproduce.topology",
}


def paper_names() -> tuple[str, ...]:
    return tuple(PAPERS)


def _runner(paper: str):
    _runner_name_check(paper)
    name = PAPERS[paper]
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name != name:
            raise
        return None


def run_paper(
    paper: str,
    *,
    scale: Scale | str = Scale.QUICK,
    out: str | Path = "reproduce",
    seed: int = 0,
    address: str | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> PaperResult:
    """Run one paper's protocol and write `out/<paper>/results.json` and `report.html`.

    A runner that raises still gets a report (with the traceback in `error`), so one failing paper
    does not hide the others' results. The result records its wall time, its CPU time (this
    process's, plus the CPU time of the sweep tasks that ran in Ray workers; Ray's own daemons are
    not counted) and the machine's load average, so a time measured on a busy machine can be read.
    """
    scale = Scale(scale)
    folder = Path(out) / paper
    ctx = RunContext(paper=paper, scale=scale, out=folder, seed=seed, address=address, workers=workers,
                     progress=progress)
    module = _runner(paper)
    load0 = _load()
    start, cpu = time.perf_counter(), time.process_time()
    if module is None:
        result = PaperResult(paper=paper, title=paper, citation="", scale=scale, claims=(),
                             error=f"no runner for {paper!r} yet ({PAPERS[paper]} is missing)")
    else:
        try:
            result = module.run(ctx)
            if not isinstance(result, PaperResult):
                raise TypeError(f"{PAPERS[paper]}.run: expected a PaperResult, got {type(result).__name__}")
        except Exception:  # noqa: BLE001 - reported in the paper's report and the exit code
            result = PaperResult(
                paper=paper, title=getattr(module, "TITLE", paper), citation=getattr(module, "CITATION", ""),
                scale=scale, claims=(), error=traceback.format_exc(),
            )
    result = replace(result, seconds=time.perf_counter() - start,
                     cpu_seconds=time.process_time() - cpu + ctx.task_cpu["seconds"], load_average=(load0, _load()))
    write_paper_report(result, folder)
    return result


def _load() -> float:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # not on every platform
        return float("nan")


def run_reproduce(
    papers: Iterable[str] | str = "all",
    *,
    scale: Scale | str = Scale.QUICK,
    out: str | Path = "reproduce",
    seed: int = 0,
    address: str | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> tuple[PaperResult, ...]:
    """Run several papers (`"all"` = every paper in `PAPERS`) and write `out/summary.json`."""
    names = list(PAPERS) if papers == "all" else ([papers] if isinstance(papers, str) else list(papers))
    for p in names:
        _runner_name_check(p)
    with ray_session():  # the papers' sweeps share one Ray start-up
        results = tuple(
            run_paper(p, scale=scale, out=out, seed=seed, address=address, workers=workers, progress=progress)
            for p in names
        )
    write_json_atomic(Path(out) / "summary.json", {
        "scale": Scale(scale), "seed": seed,
        "seconds": sum(r.seconds for r in results), "cpu_seconds": sum(r.cpu_seconds or 0.0 for r in results),
        "papers": {r.paper: {"verdicts": r.verdicts(), "seconds": r.seconds, "cpu_seconds": r.cpu_seconds,
                             "load_average": r.load_average, "error": r.error,
                             "claims": [{"claim": c.claim.claim, "verdict": c.verdict, "ours": c.ours}
                                        for c in r.claims]}
                   for r in results},
    })
    return results


def _runner_name_check(paper: str) -> None:
    if paper not in PAPERS:
        raise ValueError(f"paper: expected one of {', '.join(PAPERS)} or 'all', got {paper!r}")


# ----------------------------------------------------------------------------- report

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
.meta{color:#666;font-size:.9em} section{border-top:1px solid #ddd;margin-top:2em;padding-top:.5em}
figure{margin:1em 0} figure img{max-width:100%} figcaption{color:#555;font-size:.9em}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em} td,th{border:1px solid #ccc;padding:.3em .6em;vertical-align:top;text-align:left}
th{background:#f3f3f3} .error{background:#fee;border:1px solid #c33;padding:.6em;white-space:pre-wrap;font-family:monospace;font-size:.85em}
.v-reproduced{background:#e6f4e6} .v-partly{background:#fff6d9} .v-not-reproduced{background:#fde4e4} .v-untestable{background:#eee}
details pre{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:.8em}
"""


def _esc(v) -> str:
    return html.escape(str(v))


def _img(folder: Path, rel: str) -> str:
    path = folder / rel
    if not path.is_file():
        return f"<p><em>(figure {_esc(rel)} missing)</em></p>"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<figure><img alt="{_esc(rel)}" src="data:image/png;base64,{data}"><figcaption>{_esc(rel)}</figcaption></figure>'


def _html(result: PaperResult, folder: Path) -> str:
    created = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    rows = []
    for i, c in enumerate(result.claims, 1):
        cls = "v-" + c.verdict.value.replace(" ", "-")
        rows.append(
            f"<tr><td><a href='#claim-{i}'>{i}</a></td><td>{_esc(c.claim.claim)}</td><td>{_esc(c.claim.paper_figure)}</td>"
            f"<td>{_esc(c.ours)}</td><td class='{cls}'>{_esc(c.verdict.value)}</td></tr>"
        )
    table = ("<table><thead><tr><th>#</th><th>claim</th><th>paper's figure</th><th>ours</th><th>verdict</th></tr></thead>"
             f"<tbody>{''.join(rows)}</tbody></table>") if rows else "<p><em>(no claims checked)</em></p>"
    sections = []
    for i, c in enumerate(result.claims, 1):
        values = _esc(json.dumps(to_jsonable(c.values), indent=2))
        sections.append(
            f"<section id='claim-{i}'><h2>{i}. {_esc(c.claim.claim)}</h2>"
            f"<p><strong>Paper:</strong> {_esc(c.claim.paper_figure)}<br><strong>Ours:</strong> {_esc(c.ours)}<br>"
            f"<strong>Verdict:</strong> {_esc(c.verdict.value)}</p>"
            f"<p>{_esc(c.notes)}</p>{''.join(_img(folder, f) for f in c.figures)}"
            f"<details><summary>numbers (JSON)</summary><pre>{values}</pre></details></section>"
        )
    error = f"<div class='error'>{_esc(result.error)}</div>" if result.error else ""
    notes = "".join(f"<li>{_esc(n)}</li>" for n in result.notes)
    settings = _esc(json.dumps(to_jsonable(result.settings), indent=2))
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_esc(result.title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>Reproduction: {_esc(result.title)}</h1>"
        f"<p class='meta'>{_esc(result.citation)}<br>scale {_esc(result.scale.value)} · {result.seconds:.0f} s wall"
        f"{'' if result.cpu_seconds is None else f' · {result.cpu_seconds:.0f} s CPU'} · "
        f"created {created} · python {platform.python_version()}</p>{error}{table}"
        f"{'<h2>Notes</h2><ul>' + notes + '</ul>' if notes else ''}"
        f"<details><summary>settings (JSON)</summary><pre>{settings}</pre></details>"
        f"{''.join(sections)}<p class='meta'>Methods and every choice the papers leave open: docs/methods.md.</p>"
        "</body></html>\n"
    )


def write_paper_report(result: PaperResult, folder: str | Path) -> tuple[Path, Path]:
    """Write `folder/results.json` and `folder/report.html` (figures embedded) atomically."""
    folder = Path(folder)
    created = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    js = write_json_atomic(folder / "results.json", {"created": created, **result.to_dict(),
                                                      "verdicts": result.verdicts()})
    page = write_text_atomic(folder / "report.html", _html(result, folder))
    return page, js
