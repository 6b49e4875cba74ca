"""regions_2d on graphs (residual additions, concatenation, BatchNorm after an addition) and with
max pooling: invariants, and areas against a grid keyed by the user's own forward."""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from reluscope.regions import Plane, regions_2d
from reluscope.testing import models as M
from reluscope.testing.regions import check_against_grid, check_areas_against_key, check_region_map


def _plane(shape, seed, spread):
    # three inputs near one another: a small slice keeps the maps (and the test) small
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(shape, dtype=torch.float64, generator=g)
    return Plane.through_points(*(base + spread * torch.randn(3, *shape, dtype=torch.float64, generator=g)))


def _check(model, plane=None, box=None, n=120):
    model = model.double().eval()
    rm = regions_2d(model, plane=plane, box=box)
    check_region_map(rm)
    seen = check_areas_against_key(rm, model, n=n)
    check_against_grid(rm, model, n=n // 2)
    return rm, seen


CASES = {
    "residual-mlp": (lambda: M.ResidualMLP(d=2, width=6), None),
    "resnet-basicblock": (lambda: M.tiny_resnet(width=2, in_channels=1), (1, 4, 4)),
    "resnet-bottleneck": (lambda: M.tiny_resnet(M.Bottleneck, width=1, in_channels=1), (1, 4, 4)),
    "vgg-maxpool": (lambda: M.tiny_vgg(widths=(2, "M", 2, "M"), in_channels=1), (1, 4, 4)),
    "lenet-functional": (lambda: M.LeNetFunctional(width=2, size=10), (1, 10, 10)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_graph_and_maxpool_models_match_the_independent_key(name):
    torch.manual_seed(0)
    make, shape = CASES[name]
    plane = None if shape is None else _plane(shape, 1, 0.5)
    rm, seen = _check(make(), plane)
    assert rm.n_regions >= seen > 1
    assert rm.patterns.shape[1] == rm.network.n_units()


def test_maxpool_of_plus_minus_coordinates_gives_the_four_triangles():
    # max(x, y, -x, -y) = max(|x|, |y|): four argmax cells, the triangles cut by the diagonals
    lin = nn.Linear(2, 4).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]]))
        lin.bias.zero_()
    net = nn.Sequential(lin, nn.Unflatten(1, (1, 2, 2)), nn.MaxPool2d(2), nn.Flatten())
    rm = regions_2d(net, box=(-1, 1, -1, 1))
    check_region_map(rm)
    assert rm.n_regions == 4 and rm.n_vertices == 5 and rm.n_edges == 8
    np.testing.assert_allclose(rm.areas, 1.0)
    np.testing.assert_allclose(np.sort(np.abs(rm.A).sum((1, 2))), 1.0)
    check_areas_against_key(rm, net, n=100)


def test_argmax_cells_reached_twice_are_merged():
    # entries x, 0.5 x + 0.1, 2 y: the cell of x is reached from entry 1 through two different
    # lines, the cut leaves it in two faces and the merge must join them (no equal neighbours)
    lin = nn.Linear(2, 4).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.2, 0.0], [1.0, 0.0], [0.5, 0.0], [0.0, 2.0]]))
        lin.bias.copy_(torch.tensor([0.5, 0.0, 0.1, 0.0]))
    net = nn.Sequential(lin, nn.Unflatten(1, (1, 2, 2)), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1, 1)).double()
    rm = regions_2d(net, box=(-2, 2, -2, 2))
    check_region_map(rm)
    check_areas_against_key(rm, net, n=100)
    deg = np.bincount(rm.edges.ravel(), minlength=rm.n_vertices)
    assert (deg[4:] >= 3).all()  # no vertex left in the middle of a straight side


@pytest.mark.parametrize("engine", ["numba", "numpy", "torch", "switch"])
def test_engines_agree_on_a_residual_cnn_with_maxpool(engine, monkeypatch):
    import reluscope.regions.partition as partition

    model = M.tiny_resnet(width=2, in_channels=1).double()
    plane = _plane((1, 4, 4), 2, 0.4)
    monkeypatch.setattr(partition, "_COMPILED_ON_CPU", False)
    ref = regions_2d(model, plane=plane)
    monkeypatch.setattr(partition, "_COMPILED_ON_CPU", engine == "numba")
    monkeypatch.setattr(partition, "_NUMPY_ON_CPU", engine != "torch")
    monkeypatch.setattr(partition, "_NUMPY_MAX_EDGES", 100 if engine == "switch" else 10**9)
    rm = regions_2d(model, plane=plane)
    check_region_map(rm)
    assert (rm.n_regions, rm.n_vertices, rm.n_edges) == (ref.n_regions, ref.n_vertices, ref.n_edges)
    np.testing.assert_allclose(np.sort(rm.areas), np.sort(ref.areas), rtol=1e-9, atol=1e-12)


def test_pushed_maps_equal_the_fitted_maps_on_graphs():
    # thin faces get the pushed (pattern-driven) map instead of the fit: it must handle additions,
    # concatenation and max-pool selection
    from reluscope.regions._complex import pushed_affine_maps

    model = M.tiny_resnet(width=2, in_channels=1).double()
    rm = regions_2d(model, plane=_plane((1, 4, 4), 3, 0.4))
    A, c = pushed_affine_maps(rm.network, rm.plane, torch.as_tensor(rm.patterns), "cpu")
    wide = rm.areas > 1e-6 * rm.box_area
    scale = max(1.0, np.abs(rm.c).max())
    np.testing.assert_allclose(A[wide], rm.A[wide], atol=1e-7 * scale)
    np.testing.assert_allclose(c[wide], rm.c[wide], atol=1e-7 * scale)


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    width=st.integers(1, 4),
    depth=st.integers(1, 3),
    slope=st.sampled_from([0.0, 0.1]),
    scale=st.floats(-2, 2, allow_nan=False),
    pool=st.booleans(),
)
def test_random_residual_mlps_match_the_key(seed, width, depth, slope, scale, pool):
    torch.manual_seed(seed)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = nn.Linear(2, 2 * width)
            self.blocks = nn.ModuleList(nn.Linear(2 * width, 2 * width) for _ in range(depth))
            self.out = nn.Linear(2 * width if pool else 4 * width, 2)

        def forward(self, x):
            h = self.inp(x) + torch.cat([x] * width, 1)
            for block in self.blocks:
                h = h + scale * F.leaky_relu(block(h), slope)
            if pool:  # windows of 2 across pairs of units
                h = F.max_pool2d(h.view(h.size(0), 1, 1, -1), (1, 2)).view(h.size(0), -1)
            return self.out(torch.cat([F.relu(h), h], 1))

    model = Net().double().eval()
    rm = regions_2d(model, box=(-2, 1.5, -1, 2))
    check_region_map(rm)
    check_areas_against_key(rm, model, n=80)


def test_cli_regions_on_a_saved_residual_model(tmp_path):
    import json

    import typer
    from typer.testing import CliRunner

    from reluscope.cli.regions import register
    from reluscope.network.io import save_model

    app, experiment = typer.Typer(), typer.Typer()
    app.add_typer(experiment, name="experiment")
    register(app, experiment)
    torch.manual_seed(0)
    model = M.ResidualMLP(d=2, width=6).eval()
    save_model(model, tmp_path / "res")
    res = CliRunner().invoke(app, ["regions", str(tmp_path / "res"), "--out", str(tmp_path / "r.json"), "--box", "-2,2,-2,2",
                                        "--no-fiedler"])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "r.json").read_text())
    assert summary["n_regions"] == regions_2d(model.double(), box=(-2, 2, -2, 2)).n_regions > 1
