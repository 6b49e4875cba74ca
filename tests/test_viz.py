import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from reluscope.network import LayerUnits  # noqa: E402
from reluscope.traversal import Traversal  # noqa: E402
from reluscope.viz import plot_hamming_along_path, plot_unit_activity  # noqa: E402


def _traversal():
    t = torch.tensor([0.0, 0.25, 0.5, 1.0], dtype=torch.float64)
    patterns = torch.tensor([[0, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1]], dtype=torch.bool)
    return Traversal(t, patterns)


def test_hamming_step_plot_draws_the_distances():
    ax = Figure().add_subplot()
    out = plot_hamming_along_path(_traversal(), ax=ax, label="path", color="k")
    assert out is ax
    (stairs,) = ax.patches
    values, edges, _ = stairs.get_data()
    np.testing.assert_array_equal(values, [0, 2, 2])  # (0000, 1100, 0011): distances to the start
    np.testing.assert_array_equal(edges, [0, 0.25, 0.5, 1.0])
    ax2 = plot_hamming_along_path(_traversal(), ax=Figure().add_subplot(), normalize=True)
    np.testing.assert_array_equal(ax2.patches[0].get_data()[0], [0, 0.5, 0.5])
    assert "fraction" in ax2.get_ylabel()


def test_hamming_plot_makes_its_own_axes_and_checks_input():
    import matplotlib.pyplot as plt

    ax = plot_hamming_along_path(_traversal())
    assert ax.figure is not None
    plt.close(ax.figure)
    with pytest.raises(TypeError, match="traversal: expected a Traversal"):
        plot_hamming_along_path("path")


def test_unit_activity_bars_and_dead_units():
    bits = torch.tensor([[1, 0, 1, 0, 0], [1, 0, 0, 1, 0]], dtype=torch.bool)
    layout = (LayerUnits("0", "LeakyReLU", 0, 3), LayerUnits("2", "LeakyReLU", 3, 5))
    ax = plot_unit_activity(bits, layout, ax=Figure().add_subplot())
    heights = [p.get_height() for p in ax.patches]
    assert heights == [1.0, 0.5, 0.0, 0.5, 0.0]  # sorted within each layer
    dead_ticks = [line for line in ax.lines if line.get_marker() == "|"]
    assert sum(len(line.get_xdata()) for line in dead_ticks) == 2
    assert len(ax.get_legend().get_texts()) == 2
    unsorted = plot_unit_activity(bits, ax=Figure().add_subplot(), sort=False)
    assert [p.get_height() for p in unsorted.patches] == [1.0, 0.0, 0.5, 0.5, 0.0]
    with pytest.raises(TypeError, match="bits: expected a non-empty bool tensor"):
        plot_unit_activity(bits.float())
    with pytest.raises(ValueError, match="layout: covers 9 units"):
        plot_unit_activity(bits, (LayerUnits("0", "ReLU", 0, 9),))


# ---------------------------------------------------------------- Display objects (scikit-learn style)


@pytest.fixture(scope="module")
def small():
    from reluscope.train import mlp

    model = mlp(2, [6, 6], 2, seed=0).double().eval()
    x = torch.randn(20, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return model, x, (x[:, 0] > 0).long()


def _check(display, ax):
    assert display.ax_ is ax and display.figure_ is ax.figure
    assert ax.has_data() or ax.collections or ax.lines or ax.patches


def test_region_displays_from_model_and_result(small):
    from reluscope.regions import fiedler_partition, regions_2d
    from reluscope.viz.regions import FiedlerDisplay, RegionMapDisplay

    model, x, y = small
    ax = Figure().add_subplot()
    d = RegionMapDisplay.from_model(model, box=(-2, 2, -2, 2), points=x.numpy(), labels=y.numpy()).plot(ax)
    _check(d, ax)
    assert ax.get_title() == f"{d.region_map.n_regions} linear regions"
    rm = regions_2d(model, box=(-2, 2, -2, 2))
    assert RegionMapDisplay.from_result(rm).region_map is rm
    ax = Figure().add_subplot()
    f = FiedlerDisplay.from_result(rm).plot(ax)
    _check(f, ax)
    assert np.array_equal(f.partition.side, fiedler_partition(rm).side)


def test_pattern_displays_from_model(small):
    from reluscope.viz.patterns import HammingPathDisplay, UnitActivityDisplay

    model, x, _ = small
    ax = Figure().add_subplot()
    h = HammingPathDisplay.from_model(model, x[0], x[1]).plot(ax)
    _check(h, ax)
    assert h.t[0] == 0 and h.t[-1] == 1 and h.distance[0] == 0
    ax = Figure().add_subplot()
    u = UnitActivityDisplay.from_model(model, x).plot(ax)
    _check(u, ax)
    assert u.frequency.shape == (12,) and [s.name for s in u.layout] == ["1", "3"]


def test_folding_hull_tangent_displays(small):
    from reluscope.folding import global_folding, path_folding
    from reluscope.hull import overfitting_report, revised_greedy_expansion
    from reluscope.tangent import goodness_curve
    from reluscope.viz.folding import FoldingHistogramDisplay, RunningChiDisplay
    from reluscope.viz.hull import NCHLayersDisplay, RGEDisplay
    from reluscope.viz.tangent import GapHistogramDisplay, GoodnessDisplay

    model, x, y = small
    res = path_folding(model, x[0], x[1])
    for display in (
        RunningChiDisplay.from_result(res),
        RunningChiDisplay.from_model(model, x[0], x[1]),
        FoldingHistogramDisplay.from_result(global_folding(model, x, y, classes=(0, 1), budget=4)),
        RGEDisplay.from_result(x.numpy(), revised_greedy_expansion(x.numpy(), inside_distance=0.1, stop=0.2, max_size=12)),
        NCHLayersDisplay.from_result(overfitting_report([("input", x.numpy(), x.numpy())], y.numpy(), y.numpy(),
                                                        net_train=1.0, net_test=1.0)),
        GapHistogramDisplay.from_result({"dot": np.array([0.1, -0.2, 0.3])}),
        GoodnessDisplay.from_result(goodness_curve(x @ x.T, y)),
    ):
        ax = Figure().add_subplot()
        assert display.plot(ax) is display
        _check(display, ax)
    np.testing.assert_array_equal(RunningChiDisplay.from_result(res).curves["chi"], res.profile().running_chi)


def test_a_display_without_axes_makes_a_pyplot_figure(small):
    import matplotlib.pyplot as plt

    from reluscope.viz.folding import FoldingHistogramDisplay

    d = FoldingHistogramDisplay.from_result(np.array([0.0, 0.2, 0.4])).plot()
    assert d.figure_ is d.ax_.figure and plt.fignum_exists(d.figure_.number)
    plt.close(d.figure_)


# ---------------------------------------------------------------- the folding study's displays


def _study():
    from reluscope.experiments.folding_study import FoldingNetRow, FoldingSnapshot, FoldingStudyConfig, FoldingStudyResult

    config = FoldingStudyConfig(depths=(1, 2, 3), widths=(6,), seeds=2)
    rng = np.random.default_rng(0)
    rows = []
    for c in config.nets():
        reached = not (c.depth == 3 or (c.depth == 2 and c.seed == 1))  # depth 3: no net at the target
        stages = [("level 0.7", 0.7)] + ([("level 0.9", 0.9)] if reached else []) + [("end", None)]
        snaps = tuple(FoldingSnapshot(stage, level, 5, 0.9, *rng.random(8)) for stage, level in stages)
        rows.append(FoldingNetRow(c, snaps, reached, 1.0))
    return FoldingStudyResult(config, tuple(rows))


def test_folding_depth_display_draws_each_measure_exact_and_grid_with_means():
    from reluscope.viz.folding import FoldingDepthDisplay

    res = _study()
    nets = res.at_target()
    fig = Figure()
    axes = fig.subplots(1, 3)
    d = FoldingDepthDisplay.from_result(res).plot(axes)
    assert list(d.axes_) == list(axes) and d.ax_ is axes[0] and d.figure_ is fig
    for ax, m in zip(axes, ("phi", "chi_mean", "share_folded")):
        exact, grid = ax.collections
        np.testing.assert_allclose(exact.get_offsets(), [(dd - 0.1, getattr(s, f"{m}_exact")) for dd, s in nets])
        np.testing.assert_allclose(grid.get_offsets(), [(dd + 0.1, getattr(s, f"{m}_grid")) for dd, s in nets])
        mean_exact, mean_grid = ax.lines
        np.testing.assert_allclose(mean_exact.get_xdata(), [0.9, 1.9, 2.9])
        expected = [np.mean([getattr(s, f"{m}_grid") for dd, s in nets if dd == depth]) for depth in (1, 2)]
        np.testing.assert_allclose(mean_grid.get_ydata(), expected + [np.nan])  # depth 3: nobody at the target
        assert list(ax.get_xticks()) == [1, 2, 3] and ax.get_xlabel() == "hidden layers"
    assert [a.get_title() for a in axes] == ["Phi (median of positive chi)", "mean chi", "share of folded segments"]
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["exact", "grid"]


def test_folding_error_display_draws_phi_against_test_error_per_depth_and_stage():
    from reluscope.viz.folding import FoldingErrorDisplay

    res = _study()
    fig = FoldingErrorDisplay.from_result(res).to_figure()
    axes = fig.axes
    assert [a.get_title() for a in axes] == ["1 hidden layers", "2 hidden layers", "3 hidden layers"]
    for ax, depth in zip(axes, (1, 2, 3)):
        snaps = [s for r in res.rows if r.config.depth == depth for s in r.snapshots]
        stages = sorted({s.stage for s in snaps})
        assert len(ax.collections) == len(stages)
        for dots, stage in zip(ax.collections, stages):
            np.testing.assert_allclose(dots.get_offsets(), [(s.test_error, s.phi_exact) for s in snaps if s.stage == stage])
    assert axes[0].get_ylabel() == "Phi (exact)"
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["end", "level 0.7", "level 0.9"]


def test_folding_study_displays_make_their_own_axes_and_check_the_given_ones():
    import matplotlib.pyplot as plt

    from reluscope.viz.folding import FoldingDepthDisplay, FoldingErrorDisplay

    res = _study()
    d = FoldingErrorDisplay.from_result(res).plot()
    assert len(d.axes_) == 3 and plt.fignum_exists(d.figure_.number) and d.figure_.get_size_inches()[0] == 3.6 * 3
    plt.close(d.figure_)
    with pytest.raises(ValueError, match=r"ax: expected 3 Axes \(one per panel\) or None, got 1"):
        FoldingDepthDisplay.from_result(res).plot(Figure().add_subplot())
    with pytest.warns(DeprecationWarning, match="FoldingDepthDisplay"):
        from reluscope.experiments.folding_study import depth_figure
    assert len(depth_figure(res.at_target(), (1, 2, 3)).axes) == 3


def test_nch_layers_display_reads_reports_rows_and_a_hulls_run_alike():
    from reluscope.experiments.hulls import HullsConfig, HullsRun, LayerRow
    from reluscope.hull.classifier import OverfittingRow
    from reluscope.viz.hull import NCHLayersDisplay

    def drawn(display):
        ax = Figure().add_subplot()
        display.plot(ax, title="t")
        train, test, net_train, net_test = ax.lines
        return ([t.get_text() for t in ax.get_xticklabels()], list(train.get_ydata()), list(test.get_ydata()),
                net_train.get_ydata()[0], net_test.get_ydata()[0], [t.get_text() for t in ax.get_legend().get_texts()])

    rows = [OverfittingRow("a", 0.0, 0.1, 0.0, 0.9, 0.8, 1.1, 0.95, 0.85),
            OverfittingRow("b", 0.0, 0.1, 0.0, 0.7, 0.6, 1.2, 0.95, 0.85)]
    expected = (["a", "b"], [0.9, 0.7], [0.8, 0.6], 0.95, 0.85,
                ["NCH train (LOO)", "NCH test", "net train", "net test"])
    assert drawn(NCHLayersDisplay.from_result(rows)) == expected
    assert drawn(NCHLayersDisplay.from_result([vars(r) for r in rows])) == expected
    run = HullsRun(HullsConfig(), (LayerRow("a", 0.5, 0.8, 0.9, 0.0, 0.1), LayerRow("b", 0.5, 0.6, 0.7, 0.0, 0.1)),
                   "a", 0.8, 0.95, 0.85, 10, 10, 1.0)
    assert drawn(NCHLayersDisplay.from_result(run)) == expected  # LOO accuracy as train, validation as net train
    with pytest.raises(TypeError, match="report: expected an OverfittingReport, a sequence of its rows or a HullsRun, got int"):
        NCHLayersDisplay.from_result(3)
