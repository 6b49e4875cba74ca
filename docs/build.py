"""Build the documentation site offline: `make docs` (or `python docs/build.py --out site`).

The site is made from this folder plus two generated pages: the home page is the README, and the
gallery runs every script in `examples/` (with `--small` when asked) and shows its docstring, its
code and the figure it wrote. API pages (`docs/api/*.md`) are rendered from the docstrings by
mkdocstrings. Nothing is fetched: the theme is mkdocs' built-in `readthedocs`.
"""

from __future__ import annotations

import argparse
import ast
import re
import runpy
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"

API_PAGES = [
    ("Networks", "network"), ("Activation patterns", "patterns"), ("Exact traversal", "traversal"),
    ("Space folding", "folding"), ("Regions of 2-D slices", "regions"), ("Convex hulls", "hull"),
    ("Tangent similarity", "tangent"), ("Data and training", "data"), ("Plotting", "viz"), ("Explorer", "explore"),
    ("Reproducing the papers", "reproduce"), ("Sweeps", "sweep"),
    ("Saving results", "results"),
]


def example_scripts() -> list[Path]:
    return sorted(p for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))


def _run_example(script: Path, figure: Path, small: bool) -> None:
    import matplotlib

    matplotlib.use("Agg")
    argv, path = sys.argv, list(sys.path)
    sys.argv = [str(script), "--out", str(figure)] + (["--small"] if small else [])
    sys.path.insert(0, str(EXAMPLES))
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv, sys.path[:] = argv, path
        import matplotlib.pyplot as plt

        plt.close("all")


def write_gallery(src: Path, *, run: bool, small: bool) -> Path:
    """`src/gallery.md` (and `src/gallery/*.png` when `run`): one section per example."""
    parts = ["# Gallery\n\nShort scripts in `examples/`, each writing one figure "
             "(`python examples/NAME.py --out fig.png`; the test suite runs them with `--small`).\n"]
    (src / "gallery").mkdir(exist_ok=True)
    for script in example_scripts():
        code = script.read_text()
        doc = ast.get_docstring(ast.parse(code)) or script.stem
        title, _, rest = doc.partition("\n")
        parts.append(f"## {title.strip()}\n\n{rest.strip()}\n")
        if run:
            figure = src / "gallery" / f"{script.stem}.png"
            _run_example(script, figure, small)
            parts.append(f"![{script.stem}](gallery/{script.stem}.png)\n")
        parts.append(f"`examples/{script.name}`:\n\n```python\n{code.strip()}\n```\n")
    page = src / "gallery.md"
    page.write_text("\n".join(parts))
    return page


def write_home(src: Path) -> Path:
    """The README as the home page, with its links into docs/ made relative to the site."""
    text = (ROOT / "README.md").read_text()
    text = re.sub(r"\]\(docs/", "](", text)
    page = src / "index.md"
    page.write_text(text)
    return page


def build(out: Path, *, run_examples: bool = True, small: bool = False, strict: bool = True) -> Path:
    """Assemble the sources in a temporary folder and build the site into `out`."""
    import yaml
    from mkdocs.commands.build import build as mkdocs_build
    from mkdocs.config import load_config

    with tempfile.TemporaryDirectory(prefix="reluscope-docs-") as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(DOCS, src, ignore=shutil.ignore_patterns("build.py", "__pycache__"))
        write_home(src)
        write_gallery(src, run=run_examples, small=small)
        nav = [{"Home": "index.md"}]
        if (src / "methods.md").exists():
            nav.append({"Methods": "methods.md"})
        nav += [{"Gallery": "gallery.md"}, {"API": [{title: f"api/{name}.md"} for title, name in API_PAGES]}]
        config = {
            "site_name": "reluscope", "docs_dir": str(src), "site_dir": str(Path(out).resolve()),
            "theme": {"name": "readthedocs"}, "nav": nav, "strict": strict,
            "plugins": ["search", {"mkdocstrings": {"handlers": {"python": {
                "paths": [str(ROOT / "src")],
                "options": {"docstring_style": None, "show_source": False, "show_root_heading": True,
                            "members_order": "source", "filters": ["!^_"], "show_submodules": False},
            }}}}],
        }
        cfg_path = Path(tmp) / "mkdocs.yml"
        cfg_path.write_text(yaml.safe_dump(config, sort_keys=False))
        mkdocs_build(load_config(str(cfg_path)))
    return Path(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "site")
    ap.add_argument("--small", action="store_true", help="run the examples at the test suite's sizes")
    ap.add_argument("--no-examples", action="store_true", help="do not run the examples (gallery without figures)")
    args = ap.parse_args()
    site = build(args.out, run_examples=not args.no_examples, small=args.small)
    print(f"wrote {site / 'index.html'}")


if __name__ == "__main__":
    main()
