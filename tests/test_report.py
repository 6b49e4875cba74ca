import base64
import json
import re
import sys
import types

import pytest
import torch

from reluscope.data import make_toy
from reluscope.report import DemoContext, Section, build_report, figure_html, run_demo, table_html
from reluscope.report import demo as demo_module
from reluscope.train import mlp, train_classifier

PNG = b"\x89PNG\r\n\x1a\n"


def _png_payloads(html):
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]


def test_figure_html_embeds_a_png_and_closes_pyplot_figures():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    html = figure_html(fig, caption="a <b> c")
    assert not plt.fignum_exists(fig.number)
    assert _png_payloads(html)[0].startswith(PNG)
    assert "a &lt;b&gt; c" in html and "<figcaption>" in html
    plain = Figure()
    plain.add_subplot().bar([0], [1])
    assert _png_payloads(figure_html(plain))[0].startswith(PNG)


def test_table_html():
    html = table_html([{"a": 1.234567, "b": "<x>"}, {"a": 2, "b": "y"}])
    assert "<th>a</th>" in html and "1.235" in html and "&lt;x&gt;" in html
    assert "no rows" in table_html([])


def test_build_report_writes_html_figures_and_summary(tmp_path):
    from matplotlib.figure import Figure

    fig = Figure()
    fig.add_subplot().plot([1, 2])
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "users-own-1.png").write_bytes(b"mine")  # not ours: must survive
    sections = {
        "good": Section("Good part", "<p>fine</p>" + figure_html(fig) + figure_html(fig), {"x": 1.5}),
        "bad": Section("Bad part", "", {}, error="Traceback: boom <here>"),
    }
    report, summary = build_report(sections, tmp_path, meta={"seed": 3})
    html = report.read_text()
    assert '<a href="#good">Good part</a>' in html and 'id="bad"' in html
    assert "boom &lt;here&gt;" in html and "(failed)" in html
    names = sorted(p.name for p in (tmp_path / "figures").iterdir())
    assert names == [".reluscope-figures.json", "good-1.png", "good-2.png", "users-own-1.png"]
    assert (tmp_path / "figures" / "good-1.png").read_bytes().startswith(PNG)
    doc = json.loads(summary.read_text())
    assert doc["seed"] == 3 and doc["sections"]["good"]["summary"] == {"x": 1.5}
    assert doc["sections"]["bad"]["error"].startswith("Traceback") and doc["sections"]["good"]["figures"] == 2
    with pytest.raises(TypeError, match="expected a reluscope.report.Section"):
        build_report({"x": "not a section"}, tmp_path)
    # a sequence of sections gets keys from the titles
    build_report([Section("Same", ""), Section("Same", "")], tmp_path / "seq")
    assert set(json.loads((tmp_path / "seq" / "summary.json").read_text())["sections"]) == {"same", "same-2"}


@pytest.fixture(scope="module")
def tiny_context(tmp_path_factory):
    """A DemoContext with small networks and stand-in data of the right shapes (no MNIST needed)."""
    tmp_path = tmp_path_factory.mktemp("demo")
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(300, 784, generator=gen)
    y = torch.arange(300) % 10  # contains digits 1 and 4
    mnist_model = mlp(784, [16, 16], 10, seed=0).eval()
    toy_x, toy_y = make_toy("moons", 200, seed=0)
    toy = train_classifier(mlp(2, [16, 16], 2, seed=0), toy_x, toy_y, epochs=5, lr=5e-2, batch_size=100)
    return DemoContext(tmp_path, 0, mnist_model, (x, y), (x, y), toy.model, (toy_x, toy_y), quick=True)


def test_foundation_section_on_small_networks(tiny_context):
    from reluscope.report import foundation

    section = foundation.section(tiny_context)
    assert isinstance(section, Section) and section.error is None
    assert len(_png_payloads(section.html)) == 4
    for key, n_segments in (("mnist", 8), ("moons", 5)):
        s = section.summary[key]
        assert s["midpoint_mismatches"] == 0  # every traversed piece has the pattern it claims
        assert s["traversal"]["n_segments"] == n_segments
        assert s["traversal"]["regions_mean"] >= s["regions_seen_by_11_samples_mean"] >= 1
        assert s["patterns"]["n_units"] == 32 and 1 <= s["patterns"]["distinct_patterns"] <= s["patterns"]["n_inputs"]
    json.dumps(section.summary)  # JSON-able as promised


def test_run_demo_reports_failing_sections_and_continues(tiny_context, tmp_path, monkeypatch):
    ctx = tiny_context
    monkeypatch.setattr(demo_module, "train_demo_models", lambda out, **kw: (ctx, {"mnist": {"test_accuracy": 0.5}, "moons": {"validation_accuracy": 0.9}}))
    ok = types.ModuleType("reluscope.report.fake_ok")
    ok.section = lambda c: Section("Fine", "<p>ok</p>", {"seed": c.seed})
    bad = types.ModuleType("reluscope.report.fake_bad")

    def explode(c):
        raise RuntimeError("section exploded")

    bad.section = explode
    monkeypatch.setitem(sys.modules, "reluscope.report.fake_ok", ok)
    monkeypatch.setitem(sys.modules, "reluscope.report.fake_bad", bad)
    monkeypatch.setattr(demo_module, "_SECTIONS", ("fake_bad", "fake_ok"))
    result = run_demo(tmp_path / "out", seed=0, quick=True)
    assert result.failed == ("fake_bad",)
    html = result.report.read_text()
    assert "section exploded" in html and "<p>ok</p>" in html
    doc = json.loads(result.summary.read_text())
    assert doc["failed_sections"] == ["fake_bad"] and doc["sections"]["fake_ok"]["summary"] == {"seed": 0}
    only = run_demo(tmp_path / "only", topics=["fake_ok"])
    assert only.failed == () and list(json.loads(only.summary.read_text())["sections"]) == ["fake_ok"]
    with pytest.raises(ValueError, match="unknown sections \\['nope'\\]; available: fake_bad, fake_ok"):
        run_demo(tmp_path / "x", topics=["nope"])


def test_context_generators_are_stable_and_distinct(tmp_path):
    ctx = DemoContext(tmp_path, 1, None, None, None, None, None)
    a = torch.rand(3, generator=ctx.generator("a"))
    assert torch.equal(a, torch.rand(3, generator=ctx.generator("a")))
    assert not torch.equal(a, torch.rand(3, generator=ctx.generator("b")))
