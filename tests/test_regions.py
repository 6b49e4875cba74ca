"""Exact 2-D regions, their invariants, the grid reference; the regions CLI (dual graph and Fiedler: test_dual.py)."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from reluscope.regions import Plane, RegionBudgetError, regions_2d
from reluscope.regions.dual import decision_segments, positive_class_area
from reluscope.testing.regions import check_against_grid, check_region_map


def _mlp(widths, seed, act=nn.ReLU, dtype=torch.float64):
    torch.manual_seed(seed)
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), act()]
    return nn.Sequential(*layers[:-1]).to(dtype)


@settings(max_examples=25, deadline=None)
@given(
    widths=st.lists(st.integers(1, 8), min_size=1, max_size=3),
    out=st.integers(1, 3),
    seed=st.integers(0, 10_000),
    leaky=st.booleans(),
    box=st.tuples(st.floats(-3, 0.5), st.floats(0.1, 3), st.floats(-3, 0.5), st.floats(0.1, 3)),
)
def test_random_nets_satisfy_invariants_and_grid(widths, out, seed, leaky, box):
    act = (lambda: nn.LeakyReLU(0.2)) if leaky else nn.ReLU
    net = _mlp([2, *widths, out], seed, act)
    x0, w, y0, h = box
    rm = regions_2d(net, box=(x0, x0 + w, y0, y0 + h))
    check_region_map(rm)
    check_against_grid(rm, net, n=60)
    assert rm.patterns.shape == (rm.n_regions, sum(widths))
    assert rm.A.shape == (rm.n_regions, out, 2) and rm.c.shape == (rm.n_regions, out)


@pytest.mark.parametrize("engine", ["numba", "numpy", "torch", "switch"])
@pytest.mark.parametrize("seed", [0, 1])
def test_numpy_and_torch_sweeps_agree_with_the_grid(engine, seed, monkeypatch):
    # the CPU sweep runs compiled (numba, when installed) or in numpy, which hands over to torch
    # past _NUMPY_MAX_EDGES edges (mid-layer here with "switch"); every variant must give the
    # same complex, checked against the grid
    import reluscope.regions.partition as partition

    monkeypatch.setattr(partition, "_COMPILED_ON_CPU", engine == "numba")
    monkeypatch.setattr(partition, "_NUMPY_ON_CPU", engine != "torch")
    monkeypatch.setattr(partition, "_NUMPY_MAX_EDGES", 60 if engine == "switch" else 10**9)
    net = _mlp([2, 9, 7, 2], seed, nn.ReLU)
    rm = regions_2d(net, box=(-1.5, 1, -1, 2))
    check_region_map(rm)
    check_against_grid(rm, net, n=120)
    monkeypatch.setattr(partition, "_NUMPY_ON_CPU", False)
    ref = regions_2d(net, box=(-1.5, 1, -1, 2))
    assert (rm.n_regions, rm.n_vertices, rm.n_edges) == (ref.n_regions, ref.n_vertices, ref.n_edges)
    np.testing.assert_allclose(np.sort(rm.areas), np.sort(ref.areas), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("numpy_engine", [True, False])
def test_lines_through_corners_and_a_common_point(numpy_engine, monkeypatch):
    import reluscope.regions.partition as partition

    monkeypatch.setattr(partition, "_NUMPY_ON_CPU", numpy_engine)
    monkeypatch.setattr(partition, "_COMPILED_ON_CPU", False)  # numba's: tests/test_regions_compiled.py
    # z1 = x - y runs through two box corners; z2 = x + y through the other two; z3 = x:
    # three lines through the origin cut the square into 6 faces.
    lin = nn.Linear(2, 3).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, -1.0], [1.0, 1.0], [1.0, 0.0]]))
        lin.bias.zero_()
    net = nn.Sequential(lin, nn.ReLU(), nn.Linear(3, 1).double())
    rm = regions_2d(net, box=(-1, 1, -1, 1))
    check_region_map(rm)
    assert rm.n_regions == 6
    np.testing.assert_allclose(np.sort(rm.areas), [0.5, 0.5, 0.5, 0.5, 1.0, 1.0])
    assert rm.n_vertices == 4 + 3  # corners, the centre and the two ends of x = 0


def test_dead_unit_and_single_line():
    lin = nn.Linear(2, 2).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0]]))
        lin.bias.copy_(torch.tensor([0.0, -0.25]))
    rm = regions_2d(nn.Sequential(lin, nn.ReLU()), box=(-1, 1, 0, 2))
    check_region_map(rm)
    assert rm.n_regions == 2
    np.testing.assert_allclose(sorted(rm.areas), [1.5, 2.5])


def test_agrees_with_regioncam_count():
    regioncam = pytest.importorskip("regioncam")
    net = _mlp([2, 32, 32, 1], 3, dtype=torch.float32)
    rc = regioncam.Regioncam(size=1.0)
    rc.add(net)
    assert regions_2d(net, box=(-1, 1, -1, 1)).n_regions == rc.num_faces


def test_plane_through_points_and_conv_net():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 3, 3), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(3 * 3 * 3, 6), nn.LeakyReLU(0.1), nn.Linear(6, 2)
    ).double()
    a, b, c = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    plane = Plane.through_points(a, b, c)
    np.testing.assert_allclose(plane.to_input(plane.anchors).numpy(), torch.stack([a, b, c]).numpy(), atol=1e-12)
    np.testing.assert_allclose(plane.project(torch.stack([a, b, c])).numpy(), plane.anchors.numpy(), atol=1e-12)
    rm = regions_2d(net, plane=plane, box=None)
    check_region_map(rm)
    check_against_grid(rm, net, n=80)


def test_bad_input_is_refused_clearly():
    net = _mlp([2, 4, 1], 0)
    with pytest.raises(ValueError, match="positive area"):
        regions_2d(net, box=(1, 1, 0, 1))
    with pytest.raises(ValueError, match="positive area"):
        regions_2d(net, box=(0, 1, 2, -1))
    with pytest.raises(ValueError, match="four"):
        regions_2d(net, box=(0, 1, 2))
    with pytest.raises(ValueError, match="collinear"):
        Plane.through_points([0.0, 0, 0], [1.0, 1, 1], [2.0, 2, 2])
    with pytest.raises(ValueError, match="linearly independent"):
        Plane([0.0, 0, 0], [1.0, 0, 0], [2.0, 0, 0])
    with pytest.raises(ValueError, match="plane="):
        regions_2d(_mlp([3, 4, 1], 0))
    with pytest.raises(ValueError, match="shape"):
        regions_2d(net, plane=Plane.through_points(*torch.eye(3)))
    with pytest.raises(TypeError, match="piecewise-linear"):
        regions_2d(nn.Sequential(nn.Linear(2, 3), nn.GELU(), nn.Linear(3, 1)))
    with pytest.raises(RegionBudgetError, match="memory_budget"):
        regions_2d(_mlp([2, 64, 64, 1], 0), memory_budget=1e5)
    with pytest.raises(ValueError, match="rtol"):
        regions_2d(net, rtol=-1)


def test_points_exactly_on_boundaries_have_a_face_pattern():
    # grid points on the lines x = 0 and y = 0 (they are in the grid) must map to face patterns
    net = nn.Sequential(nn.Linear(2, 2).double(), nn.ReLU())
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(2))
        net[0].bias.zero_()
    rm = regions_2d(net, box=(-1, 1, -1, 1))
    assert rm.n_regions == 4
    check_against_grid(rm, net, n=21)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_model_is_said_to_be_analysed_in_float64(dtype):
    from reluscope.traversal import PrecisionWarning

    net = _mlp([2, 5, 1], 0, dtype=dtype)
    with pytest.warns(PrecisionWarning, match="analysed in float64"):
        rm = regions_2d(net)
    assert rm.dtype == "float64"
    check_region_map(rm)


def test_pattern_keys_are_stable():
    net = _mlp([2, 6, 6, 1], 1)
    a, b = regions_2d(net), regions_2d(net, box=(-0.5, 1, -1, 0.3))
    ka = dict(zip(map(bytes, np.packbits(a.patterns, 1)), a.pattern_keys()))
    for pat, key in zip(map(bytes, np.packbits(b.patterns, 1)), b.pattern_keys()):
        assert ka.get(pat, key) == key


# --------------------------------------------------------------------------- CLI


def test_cli_regions_writes_json_and_figures(tmp_path):
    import json

    import typer
    from typer.testing import CliRunner

    from reluscope.cli.regions import register
    from reluscope.network.io import save_model

    app, experiment = typer.Typer(), typer.Typer()
    app.add_typer(experiment, name="experiment")
    register(app, experiment)
    save_model(_mlp([2, 8, 8, 2], 0).float(), tmp_path / "m")
    runner = CliRunner()
    res = runner.invoke(app, ["regions", str(tmp_path / "m"), "--out", str(tmp_path / "r.json"), "--box", "-2,2,-2,2",
                              "--figure", str(tmp_path / "r.png"), "--figure", str(tmp_path / "r.svg"), "--topology"])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "r.json").read_text())
    assert summary["n_regions"] == regions_2d(_mlp([2, 8, 8, 2], 0), box=(-2, 2, -2, 2)).n_regions
    assert summary["euler"] == 1 and 0.5 <= summary["fiedler"]["agreement"] <= 1
    assert (tmp_path / "r.png").stat().st_size > 0 and (tmp_path / "r.svg").read_text().lstrip().startswith("<?xml")
    bad = runner.invoke(app, ["regions", str(tmp_path / "m"), "--out", str(tmp_path / "x.json"), "--box", "1,0,0,1"])
    assert bad.exit_code == 2 and "positive area" in bad.output
    for cmd in (["regions"], ["experiment", "topo-grok"], ["experiment", "topo-regression"]):
        assert runner.invoke(app, [*cmd, "--help"]).exit_code == 0


def test_report_section_runs_quick(tmp_path):
    from reluscope.report.base import DemoContext
    from reluscope.report.regions import section
    from reluscope.train import mlp

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(120, 2, generator=gen)
    y = (x[:, 0] * x[:, 1] > 0).long()
    xm = torch.rand(30, 784, generator=gen)
    ym = torch.arange(30) % 10
    ctx = DemoContext(out=tmp_path, seed=0, mnist_model=mlp(784, [16, 16], 10, seed=0).eval(), mnist_train=(xm, ym),
                      mnist_test=(xm, ym), toy_model=mlp(2, [8, 8], 2, seed=0).eval(), toy_data=(x, y), quick=True)
    sec = section(ctx)
    assert "<img" in sec.html and sec.summary["moons"]["euler"] == 1
    assert sec.summary["mnist_plane"]["faces"] >= 1 and len(sec.summary["training"]) >= 2


def test_decision_segments_lie_on_the_decision_boundary_once_per_crossed_face():
    from reluscope.regions.dual import decision_segments

    torch.manual_seed(2)  # a net whose decision boundary crosses the box in 10 faces
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2)).double()
    rm = regions_2d(model, box=(-2, 2, -2, 2))
    seg = decision_segments(rm)
    assert seg.shape[1:] == (2, 2) and len(seg) > 0
    with torch.no_grad():
        out = model(torch.from_numpy(seg.reshape(-1, 2))).numpy()
    g = out[:, 1] - out[:, 0]
    np.testing.assert_allclose(g, 0, atol=1e-9 * np.abs(out).max())
    pos = positive_class_area(rm)
    crossed = (pos > 1e-12 * rm.areas) & (pos < rm.areas * (1 - 1e-12))
    assert len(seg) == int(crossed.sum())
    three = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 3)).double()
    assert decision_segments(regions_2d(three, box=(-1, 1, -1, 1))).shape == (0, 2, 2)
