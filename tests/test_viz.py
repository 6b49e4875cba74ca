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
