"""Bad inputs a careful user would try (issue 10): each case asserts the exact error type and a
message fragment, or the correct result. Every case here failed (or was silently wrong) before.

CLI cases live in test_bad_inputs_cli.py, memory-budget cases in test_bad_inputs_memory.py.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from reluscope.data import read_point_file
from reluscope.hull import (
    NearestConvexHull,
    class_geometry,
    crucial_share,
    hull_distance,
    in_hull,
    revised_greedy_expansion,
)
from reluscope.regions import Plane, regions_2d
from reluscope.report import Section, build_report


def _mlp(*widths, seed=0):
    torch.manual_seed(seed)
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1]).double().eval()


# ------------------------------------------------------------------ 10.2 demo keeps the user's files


def _png_section():
    from matplotlib.figure import Figure

    from reluscope.report import figure_html

    fig = Figure()
    fig.add_subplot().plot([0, 1])
    return Section("Part", figure_html(fig))


def test_report_deletes_only_the_figures_it_wrote(tmp_path):
    figures = tmp_path / "figures"
    figures.mkdir()
    (figures / "holiday.png").write_bytes(b"mine")
    build_report({"part": _png_section(), "other": _png_section()}, tmp_path)
    assert (figures / "other-1.png").exists()
    build_report({"part": _png_section()}, tmp_path)  # "other" gone: its old figure is ours to delete
    assert sorted(p.name for p in figures.iterdir()) == [".reluscope-figures.json", "holiday.png", "part-1.png"]
    assert (figures / "holiday.png").read_bytes() == b"mine"


def test_report_refuses_to_overwrite_a_file_it_did_not_write(tmp_path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "part-1.png").write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="reluscope did not write"):
        build_report({"part": _png_section()}, tmp_path)
    assert (tmp_path / "figures" / "part-1.png").read_bytes() == b"mine"
    assert not (tmp_path / "report.html").exists()


def test_tampered_manifest_cannot_delete_outside_figures(tmp_path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "keep.png").write_bytes(b"mine")
    (tmp_path / "figures" / ".reluscope-figures.json").write_text(json.dumps({"figures": ["../keep.png", "x-1.png"]}))
    build_report({"part": _png_section()}, tmp_path)
    assert (tmp_path / "keep.png").read_bytes() == b"mine"


def test_demo_refuses_a_clashing_folder_before_training(tmp_path):
    from reluscope.report.base import check_report_dir
    from reluscope.report.demo import run_demo

    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "foundation-1.png").write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="foundation-1.png"):
        run_demo(tmp_path, quick=True, topics=["foundation"])  # raises at once: no MNIST, no training
    assert not (tmp_path / "models").exists()
    with pytest.raises(FileExistsError, match="not a folder"):
        (tmp_path / "f").mkdir()
        (tmp_path / "f" / "figures").write_text("")
        check_report_dir(tmp_path / "f")


# ------------------------------------------------------------------ 10.3 the hull point-file reader

_POINT_FILES = [
    # (name, text, expected fragment)
    ("duplicate id", "3 2\n0 1 2\n1 3 4\n1 5 6\n", "line 4: id 1 appears twice"),
    ("negative id", "3 2\n0 1 2\n-1 3 4\n2 5 6\n", "line 3: expected an integer id in 0..2, got '-1'"),
    ("fractional id", "3 2\n0 1 2\n1.5 3 4\n2 5 6\n", "line 3: expected an integer id in 0..2, got '1.5'"),
    ("id out of range", "3 2\n0 1 2\n1 3 4\n7 5 6\n", "line 4: id 7 is out of range"),
    ("too few lines", "3 2\n0 1 2\n", "declares 3 points, the file has 1"),
    ("too many lines", "1 2\n0 1 2\n1 3 4\n", "declares 1 points, the file has 2"),
    ("short row", "2 2\n0 1 2\n1 3\n", "line 3: expected 'id v1 ... v2' (3 numbers), got 2"),
    ("non-numeric value", "2 2\n0 1 2\n1 3 x\n", "line 3: expected 2 numbers after the id"),
    ("nan value", "2 2\n0 1 2\n1 3 nan\n", "line 3: expected finite coordinates"),
    ("bad header", "3\n0 1 2\n", "line 1: expected 'N D'"),
    ("fractional header", "2.5 2\n0 1 2\n", "line 1: expected two integers"),
    ("zero points", "0 2\n", "expected N >= 1"),
    ("empty file", "", "an empty file"),
]


@pytest.mark.parametrize("name,text,fragment", _POINT_FILES, ids=[c[0] for c in _POINT_FILES])
def test_point_file_reader_refuses(tmp_path, name, text, fragment):
    path = tmp_path / "points.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        read_point_file(path)


def test_point_file_reader_places_rows_by_id(tmp_path):
    path = tmp_path / "points.txt"
    path.write_text("3 2\n2 5 6\n\n0 1 2\n1 3 4\n")  # ids in any order; blank lines ignored
    np.testing.assert_array_equal(read_point_file(path), [[1, 2], [3, 4], [5, 6]])


# ------------------------------------------------------------------ 10.9 Plane.through_points


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_through_points_refuses_collinear_points_of_any_precision(dtype):
    a = torch.randn(784, generator=torch.Generator().manual_seed(0)).to(dtype)
    with pytest.raises(ValueError, match="collinear"):
        Plane.through_points(a, 2 * a, 3 * a)


def test_through_points_accepts_a_genuine_float32_plane():
    g = torch.Generator().manual_seed(1)
    a, b, c = (torch.randn(784, generator=g) for _ in range(3))
    plane = Plane.through_points(a, b, c)
    assert abs(float(plane.u @ plane.v)) < 1e-12


# ------------------------------------------------------------------ 16.3 default box of a plane


def test_regions_2d_default_box_contains_the_planes_anchors():
    net = _mlp(6, 8, 2)
    g = torch.Generator().manual_seed(2)
    a, b, c = (5 * torch.randn(6, generator=g, dtype=torch.float64) for _ in range(3))
    plane = Plane.through_points(a, b, c)
    rm = regions_2d(net, plane=plane)
    x0, x1, y0, y1 = rm.box
    s, t = plane.anchors[:, 0].numpy(), plane.anchors[:, 1].numpy()
    assert (x0 < s.min()) and (s.max() < x1) and (y0 < t.min()) and (t.max() < y1)
    assert x1 - x0 > (s.max() - s.min()) * 1.2  # a margin around them
    assert regions_2d(_mlp(2, 8, 2)).box == (-1.0, 1.0, -1.0, 1.0)  # 2-D inputs keep the unit box


# ------------------------------------------------------------------ 10.12 extreme values


@pytest.mark.parametrize("box,fragment", [
    ((-1e200, 1e200, -1e200, 1e200), "expected coordinates within"),
    ((0, 1e-100, 0, 1e-100), "too small to resolve"),
    ((1e9, 1e9 + 1e-3, 0, 1), "too small to resolve"),
])
def test_regions_2d_refuses_boxes_beyond_float64(box, fragment):
    with pytest.raises(ValueError, match=fragment):
        regions_2d(_mlp(2, 4, 2), box=box)


def test_regions_2d_large_box_has_finite_areas():
    rm = regions_2d(_mlp(2, 8, 8, 2), box=(-1e50, 1e50, -1e50, 1e50))
    assert np.isfinite(rm.areas).all() and rm.areas.sum() == pytest.approx(rm.box_area, rel=1e-9)


@pytest.mark.parametrize("scale", [1e-200, 1e-60, 1e-20, 1e20, 1e200])
def test_hull_distance_is_scale_relative(scale):
    g = np.random.default_rng(0)
    x = g.normal(size=(30, 3))
    q = g.normal(size=(5, 3)) * 3
    ref = hull_distance(x, q)
    assert (ref > 0).any()
    np.testing.assert_allclose(hull_distance(x * scale, q * scale), ref * scale, rtol=1e-6, atol=1e-6 * scale)
    np.testing.assert_array_equal(in_hull(x * scale, q * scale, inside_distance=1e-6 * scale), in_hull(x, q, inside_distance=1e-6))


# ------------------------------------------------------------------ 10.10 hull functions on autograd tensors


def test_hull_functions_accept_requires_grad_tensors():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 2, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.arange(40) % 2
    q = torch.randn(4, 2, generator=g, dtype=torch.float64, requires_grad=True)
    np.testing.assert_allclose(hull_distance(x, q), hull_distance(x.detach().numpy(), q.detach().numpy()))
    assert in_hull(x, q).shape == (4,)
    assert 0 < crucial_share(x) <= 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert revised_greedy_expansion(x, max_size=40).size >= 3
    assert class_geometry(x, y).classes.tolist() == [0, 1]
    nch = NearestConvexHull().fit(x, y)
    assert nch.predict(q).shape == (4,)


# ------------------------------------------------------------------ weak spots: RGE and NCH


def test_rge_warns_and_records_when_max_size_ends_it_before_stop():
    angle = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    x = np.stack([np.cos(angle), np.sin(angle)], 1)  # every point is a vertex of the hull
    with pytest.warns(RuntimeWarning, match="above stop=0.0"):
        res = revised_greedy_expansion(x, stop=0.0, inside_distance=1e-4, max_size=8)
    assert res.reached_stop is False and res.max_size == 8


def test_rge_records_reaching_stop():
    x = np.random.default_rng(0).normal(size=(200, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        res = revised_greedy_expansion(x, max_size=200)
    assert res.reached_stop is True


def test_nch_leave_one_out_drops_a_class_with_a_single_point():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    y = np.array([0, 0, 0, 1])
    nch = NearestConvexHull().fit(x, y)
    d = nch.decision_function(x, loo=True)
    assert d[3, 1] == np.inf  # its class has no other point: not at distance 0 from itself
    assert nch.predict_train()[3] == 0


# ------------------------------------------------------------------ weak spots: weights, idioms, labels


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(bad):
    from reluscope import activation_patterns, traverse
    from reluscope.tangent import tangent_features

    net = _mlp(2, 4, 2)
    with torch.no_grad():
        net[2].weight[0, 1] = bad
    with pytest.raises(ValueError, match=r"layer '2' has 1 NaN/inf entries in its weight"):
        traverse(net, torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="NaN/inf entries in its weight"):
        activation_patterns(net, torch.zeros(3, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="NaN/inf entries in its weight"):
        regions_2d(net)
    with pytest.raises(ValueError, match=r"parameter '2.weight' has 1 NaN/inf entries"):
        tangent_features(net, torch.zeros(3, 2, dtype=torch.float64))


def test_view_size_flatten_idiom_works():
    """x.view(x.size(0), -1) was refused with a message about "module 'size'"; it is traced now."""
    from reluscope import activation_patterns

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 3)
            self.fc = torch.nn.Linear(2 * 4 * 4, 3)

        def forward(self, x):
            x = torch.relu(self.conv(x))
            return self.fc(x.view(x.size(0), -1))

    torch.manual_seed(0)
    net, x = Net().eval(), torch.randn(5, 1, 6, 6)
    with torch.no_grad():
        expected = (net.conv(x) > 0).reshape(5, -1)
    assert torch.equal(activation_patterns(net, x), expected)


def test_bisection_walks_are_not_labelled_exact():
    from reluscope.folding import global_folding, path_folding

    torch.manual_seed(0)
    smooth = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.GELU(), torch.nn.Linear(8, 2)).double().eval()
    a, b = torch.tensor([-2.0, -1.0], dtype=torch.float64), torch.tensor([2.0, 1.5], dtype=torch.float64)
    res = path_folding(smooth, a, b)
    assert res.exact is False and res.tolerance == 1e-6
    relu = path_folding(_mlp(2, 8, 2), a, b)
    assert relu.exact is True and relu.tolerance is None
    x = torch.randn(20, 2, dtype=torch.float64)
    y = torch.arange(20) % 2
    assert global_folding(smooth, x, y, classes=(0, 1), budget=3).exact is False
    assert global_folding(_mlp(2, 8, 2), x, y, classes=(0, 1), budget=3).exact is True


@pytest.mark.parametrize("call", ["tangent_features", "tangent_similarity", "empirical_tangent_kernel", "tangent_scores"])
def test_tangent_input_shape_is_checked_against_the_first_layer(call):
    import reluscope.tangent as tangent

    net = _mlp(2, 4, 2)
    with pytest.raises(ValueError, match=r"x: the model cannot take inputs of shape \[64\] .*first layer Linear takes 2 features"):
        getattr(tangent, call)(net, torch.zeros(5, 64, dtype=torch.float64))


# a careful user's non-integer sizes: one integer check everywhere (shared's check_int)
_SIZES = [
    ("traverse_many batch_size", lambda: __import__("reluscope").traverse_many(_mlp(2, 4, 2), torch.zeros(2, 2), torch.ones(2, 2), batch_size=0.5), "batch_size: expected an integer"),
    ("pairwise_hamming block", lambda: __import__("reluscope").pairwise_hamming(torch.zeros(2, 3, dtype=torch.bool), block=2.5), "block: expected an integer"),
    ("tangent projection_dim", lambda: __import__("reluscope.tangent").tangent.tangent_features(_mlp(2, 4, 2), torch.zeros(2, 2, dtype=torch.float64), projection_dim=2.0), "projection_dim: expected an integer"),
    ("RGE max_size", lambda: revised_greedy_expansion(np.random.default_rng(0).normal(size=(30, 2)), max_size=3.5), "max_size: expected an integer"),
]


@pytest.mark.parametrize("name,call,fragment", _SIZES, ids=[c[0] for c in _SIZES])
def test_non_integer_sizes_are_refused(name, call, fragment):
    with pytest.raises(ValueError, match=fragment):
        call()


# empty data, degenerate segments, points exactly on boundaries
def test_empty_and_degenerate_inputs():
    from reluscope import activation_patterns, traverse

    net = _mlp(2, 4, 2)
    with pytest.raises(ValueError, match="at least one input"):
        activation_patterns(net, torch.zeros(0, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="at least 1 point"):
        hull_distance(np.zeros((0, 2)), np.zeros((1, 2)))
    x = torch.tensor([0.3, -0.2], dtype=torch.float64)
    same = traverse(net, x, x)  # a point is one region
    assert same.t.tolist() == [0.0, 1.0] and same.n_pieces == 1
    # a segment starting exactly on a unit's zero line: the first piece gets the open piece's bits
    w, b = net[0].weight[0].detach(), net[0].bias[0].detach()
    on = -b * w / (w @ w)  # z_0(on) = 0 exactly up to rounding
    tr = traverse(net, on, on + w)
    assert tr.patterns[0, 0].item() is True and tr.t[0] == 0 and tr.t[-1] == 1
