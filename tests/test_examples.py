"""Every script in examples/ runs at small sizes and writes its figure (examples are documentation
that must not rot: a library change that breaks one fails here)."""

import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(p for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))


def test_there_are_the_five_examples():
    assert {p.stem for p in SCRIPTS} >= {
        "own_cnn_patterns_traversal", "folding_two_classes", "plane_through_three_images", "hulls_nch", "tangent_similarity",
    }


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_example_runs_and_writes_its_figure(script, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    out = tmp_path / f"{script.stem}.png"
    monkeypatch.setattr(sys, "argv", [str(script), "--small", "--out", str(out)])
    monkeypatch.syspath_prepend(str(EXAMPLES))
    runpy.run_path(str(script), run_name="__main__")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.pyplot as plt

    plt.close("all")
