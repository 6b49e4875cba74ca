"""The pieces of the demo report: `Section`, `DemoContext`, `figure_html` and `build_report`.

Each capability contributes one `Section` (an HTML fragment plus a JSON-able summary) computed from
a shared `DemoContext` (the trained demo networks and their data). `build_report` assembles them
into one self-contained `report.html` (figures embedded as base64 PNG, a table of contents),
writes each figure again as a PNG file under `figures/`, and writes `summary.json`.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..io_utils import to_jsonable, write_bytes_atomic, write_json_atomic, write_text_atomic
from ..viz import figure_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Section", "DemoContext", "figure_html", "table_html", "build_report", "check_report_dir"]

# The figure files reluscope wrote into `figures/`, so that a rerun deletes those and nothing else:
# the folder may hold the user's own images.
MANIFEST = ".reluscope-figures.json"
_FIGURE_NAME = re.compile(r"^[A-Za-z0-9_.-]+-[0-9]+\.png$")


@dataclass(frozen=True)
class Section:
    """One part of the report: `html` fragment (no <html>/<body>), JSON-able `summary`.

    `error` is set by the demo driver when the section raised; the report then shows it prominently
    and the demo exits non-zero.
    """

    title: str
    html: str
    summary: dict = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True, eq=False)
class DemoContext:
    """What every report section gets: the trained demo networks and their data.

    mnist_model: MLP 784-64-64-10 (eval mode, CPU); mnist_train / mnist_test: (x [N, 784] float32,
    y int64). toy_model: MLP 2-16-16-2 trained on `toy_data` (moons, (x [N, 2], y)). `quick`: use
    smaller settings. Draw random numbers from `generator(name)` so sections stay reproducible and
    independent of each other's order.
    """

    out: Path
    seed: int
    mnist_model: torch.nn.Module
    mnist_train: tuple[torch.Tensor, torch.Tensor]
    mnist_test: tuple[torch.Tensor, torch.Tensor]
    toy_model: torch.nn.Module
    toy_data: tuple[torch.Tensor, torch.Tensor]
    quick: bool = False

    def generator(self, name: str) -> torch.Generator:
        """A torch.Generator seeded from the demo seed and `name` (stable across runs)."""
        return torch.Generator().manual_seed(self.seed * 1_000_003 + zlib.crc32(name.encode()))


_IMG = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def figure_html(fig: Figure, *, caption: str | None = None, alt: str | None = None, dpi: int = 100) -> str:
    """A `<figure>` with `fig` embedded as a base64 PNG; the figure is closed afterwards.

    Works with figures from pyplot or built as `matplotlib.figure.Figure()` directly.
    """
    data = base64.b64encode(figure_bytes(fig, "png", dpi=dpi)).decode("ascii")
    alt_text = html.escape(alt or caption or "figure", quote=True)
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{alt_text}" src="data:image/png;base64,{data}">{cap}</figure>'


def table_html(rows: Sequence[Mapping], *, columns: Sequence[str] | None = None, floatfmt: str = ".4g") -> str:
    """A plain HTML table of dict rows (column order from `columns` or the first row)."""
    if not rows:
        return "<p><em>(no rows)</em></p>"
    columns = list(columns or rows[0].keys())

    def cell(v):
        if isinstance(v, float):
            return format(v, floatfmt)
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(r.get(c, ''))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{margin-bottom:.2em} .meta{color:#666;font-size:.9em}
nav ol{columns:2} section{border-top:1px solid #ddd;margin-top:2em;padding-top:.5em}
figure{margin:1em 0} figure img{max-width:100%} figcaption{color:#555;font-size:.9em}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em} td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3} .error{background:#fee;border:1px solid #c33;padding:.6em;white-space:pre-wrap;font-family:monospace;font-size:.85em}
details pre{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:.8em}
"""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def build_report(
    sections: Mapping[str, Section] | Sequence[Section],
    out_dir: str | Path,
    *,
    title: str = "reluscope report",
    meta: Mapping | None = None,
) -> tuple[Path, Path]:
    """Write `out_dir/report.html`, `out_dir/summary.json` and `out_dir/figures/*.png`, atomically.

    Figures an earlier report wrote (listed in `figures/.reluscope-figures.json`) are removed
    first; any other file is left alone, and a file of ours would overwrite one reluscope did not
    write raises FileExistsError before anything is written.

    `sections`: a mapping key -> Section (keys name the sections in summary.json and the figure
    files) or a sequence (keys derived from the titles). `meta` goes to the top of summary.json.
    Returns (report path, summary path).
    """
    out = Path(out_dir)
    items = list(sections.items()) if isinstance(sections, Mapping) else [(_slug(s.title), s) for s in sections]
    seen: dict[str, int] = {}
    keyed = []
    for key, section in items:
        if not isinstance(section, Section):
            raise TypeError(f"sections[{key!r}]: expected a reluscope.report.Section, got {type(section).__name__}")
        n = seen.get(key, 0)
        seen[key] = n + 1
        keyed.append((key if n == 0 else f"{key}-{n + 1}", section))

    figures = out / "figures"
    names = [f"{key}-{i}.png" for key, section in keyed for i in range(1, len(_IMG.findall(section.html)) + 1)]
    previous = check_report_dir(out, names)
    for old in previous - set(names):  # figures of an earlier run would otherwise linger
        (figures / old).unlink(missing_ok=True)
    toc, body, summary_sections = [], [], {}
    for key, section in keyed:
        count = 0

        def save_png(match, key=key):
            nonlocal count
            count += 1
            write_bytes_atomic(out / "figures" / f"{key}-{count}.png", base64.b64decode(match.group(1)))
            return match.group(0)

        _IMG.sub(save_png, section.html)
        flag = " <strong>(failed)</strong>" if section.error else ""
        toc.append(f'<li><a href="#{key}">{html.escape(section.title)}</a>{flag}</li>')
        error = f'<div class="error">{html.escape(section.error)}</div>' if section.error else ""
        details = html.escape(json.dumps(to_jsonable(section.summary), indent=2))
        body.append(
            f'<section id="{key}"><h2>{html.escape(section.title)}</h2>{error}{section.html}'
            f"<details><summary>summary (JSON)</summary><pre>{details}</pre></details></section>"
        )
        summary_sections[key] = {"title": section.title, "error": section.error, "figures": count, "summary": section.summary}

    if names or previous:
        write_json_atomic(figures / MANIFEST, {"written_by": "reluscope", "figures": names})
    created = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    meta = dict(meta or {})
    meta_line = " · ".join(f"{html.escape(str(k))}: {html.escape(str(v))}" for k, v in meta.items() if not isinstance(v, (dict, list)))
    page = (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p class='meta'>created {created}{' · ' + meta_line if meta_line else ''}</p>"
        f"<nav><h2>Contents</h2><ol>{''.join(toc)}</ol></nav>{''.join(body)}</body></html>\n"
    )
    report = write_text_atomic(out / "report.html", page)
    summary = write_json_atomic(out / "summary.json", {"created": created, **meta, "sections": summary_sections})
    return report, summary


def _manifest(figures: Path) -> set[str]:
    """Names in the figure manifest; an unreadable manifest lists nothing (so nothing is deleted)."""
    try:
        names = json.loads((figures / MANIFEST).read_text())["figures"]
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    # only plain names of our own pattern: a tampered manifest must not reach outside figures/
    return {n for n in names if isinstance(n, str) and _FIGURE_NAME.match(n)} if isinstance(names, list) else set()


def check_report_dir(out_dir: str | Path, names: Sequence[str] | None = None, *, topics: Sequence[str] = ()) -> set[str]:
    """Refuse an output folder where our figure files would overwrite files reluscope did not write.

    `names`: the figure file names about to be written; `topics`: section keys whose figures
    (`KEY-N.png`) may be written. Returns the names of the previous manifest (ours to replace).
    Called by the demo before it trains, so the user learns this before waiting for the work.
    """
    figures = Path(out_dir) / "figures"
    if figures.exists() and not figures.is_dir():
        raise FileExistsError(f"out: {figures} exists and is not a folder; choose another --out")
    previous = _manifest(figures)
    if not figures.is_dir():
        return previous
    wanted = set(names or ())
    patterns = [re.compile(rf"^{re.escape(t)}-[0-9]+\.png$") for t in topics]
    clash = sorted(
        p.name for p in figures.iterdir()
        if p.name not in previous and (p.name in wanted or any(r.match(p.name) for r in patterns))
    )
    if clash:
        raise FileExistsError(
            f"out: {figures} holds {', '.join(clash[:5])}{' ...' if len(clash) > 5 else ''}, which "
            "reluscope did not write and would overwrite; move them or choose another --out"
        )
    return previous
