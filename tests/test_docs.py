"""The documentation: every concept has an API page, every public class and function a docstring,
and the site builds offline with mkdocs in strict mode (any broken link or reference fails)."""

import importlib
import inspect
import pkgutil
import re
import sys
from pathlib import Path

import pytest

import reluscope

ROOT = Path(__file__).resolve().parents[1]
API = ROOT / "docs" / "api"
NOT_API = {"cli", "report", "testing", "experiments", "io_utils"}  # the CLI, the demo, test references, studies


def _documented_modules() -> set[str]:
    return {m for page in API.glob("*.md") for m in re.findall(r"^::: (\S+)", page.read_text(), re.M)}


def test_every_concept_has_an_api_page():
    concepts = {m.name for m in pkgutil.iter_modules(reluscope.__path__) if not m.name.startswith("_")} - NOT_API
    documented = {m.split(".")[1] for m in _documented_modules() if m.count(".") >= 1}
    assert concepts - documented == set(), "add a page under docs/api/ and to API_PAGES in docs/build.py"


def test_api_pages_are_built():
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        build = importlib.import_module("build")
    finally:
        sys.path.pop(0)
    assert {f"{name}.md" for _, name in build.API_PAGES} == {p.name for p in API.glob("*.md")}


@pytest.mark.parametrize("name", [n for n in reluscope.__all__ if n != "__version__"])
def test_public_names_have_docstrings(name):
    obj = getattr(reluscope, name)
    if inspect.isclass(obj) or inspect.isfunction(obj):
        doc = (obj.__doc__ or "").strip()
        assert doc and not doc.startswith(f"{obj.__name__}("), f"reluscope.{name} has no docstring of its own"


def test_site_builds_offline_in_strict_mode(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs need the 'docs' extra (mkdocs, mkdocstrings-python)")
    pytest.importorskip("mkdocstrings_handlers.python")
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        build = importlib.import_module("build")
    finally:
        sys.path.pop(0)
    site = build.build(tmp_path / "site", run_examples=False)
    assert (site / "index.html").is_file() and (site / "api" / "folding" / "index.html").is_file()
    page = (site / "api" / "folding" / "index.html").read_text()
    assert "path_folding" in page and "Aggregator" in page
    gallery = (site / "gallery" / "index.html").read_text()
    assert "examples/folding_two_classes.py" in gallery
