"""Split scores (agreement, Cohen's kappa, balanced agreement) and the best straight cut, against
sklearn and brute force."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from reluscope.regions import best_straight_cut, regions_2d, score_split
from reluscope.regions.dual import positive_class_area
from reluscope.regions.split import class_one_triangles, score_areas
from reluscope.testing.topology import brute_force_straight_cut_kappa, grid_decision, kappa_from_labels

sklearn_metrics = pytest.importorskip("sklearn.metrics")


def _net(seed, widths=(2, 12, 12, 2)):
    torch.manual_seed(seed)
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    net = nn.Sequential(*layers[:-1]).double()
    with torch.no_grad():
        net[-1].bias.zero_()  # a decision through the middle of the box, not one class everywhere
    return net


def _weighted_samples(rm, side):
    """Two samples per face: its class-1 part and its class-0 part, weighted by area."""
    pos = positive_class_area(rm)
    y = np.r_[np.ones(rm.n_regions, bool), np.zeros(rm.n_regions, bool)]
    s = np.r_[side, side]
    w = np.r_[pos, rm.areas - pos]
    return s, y, w


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_scores_match_sklearn_with_area_weights(seed):
    rm = regions_2d(_net(seed), box=(-2, 2, -2, 2))
    rng = np.random.default_rng(seed)
    for side in (rng.random(rm.n_regions) < 0.5, rm.centroids[:, 0] > 0.3):
        got = score_split(rm, side)
        s, y, w = _weighted_samples(rm, side)
        kappa = max(sklearn_metrics.cohen_kappa_score(s, y, sample_weight=w), sklearn_metrics.cohen_kappa_score(~s, y, sample_weight=w))
        acc = sklearn_metrics.accuracy_score(y, s, sample_weight=w)
        bal = sklearn_metrics.balanced_accuracy_score(y, s, sample_weight=w)
        assert got.kappa == pytest.approx(kappa, abs=1e-9)
        assert got.kappa == pytest.approx(kappa_from_labels(s, y, w), abs=1e-9)
        assert got.agreement == pytest.approx(max(acc, 1 - acc), abs=1e-9)
        assert got.balanced == pytest.approx(max(bal, 1 - bal), abs=1e-9)
        assert got.smaller_side == pytest.approx(min(w[s].sum(), w[~s].sum()) / w.sum(), abs=1e-12)


def test_imbalance_inflates_agreement_not_kappa():
    # regression: the old score gave 0.78 to a useless split when the decision covered 81% of the box
    s = score_areas(both=0.0, side=0.0, positive=0.81, total=1.0)
    assert s.agreement == pytest.approx(0.81) and s.kappa == 0.0 and s.balanced == pytest.approx(0.5)
    assert s.degenerate
    sliver = score_areas(both=0.01 * 0.81, side=0.01, positive=0.81, total=1.0)  # a sliver as mixed as the box
    assert sliver.degenerate and sliver.agreement > 0.8 and sliver.kappa < 0.01


def test_perfect_and_independent_splits():
    perfect = score_areas(both=0.3, side=0.3, positive=0.3, total=1.0)
    assert perfect.kappa == pytest.approx(1) and perfect.balanced == pytest.approx(1) and perfect.iou == pytest.approx(1)
    swapped = score_areas(both=0.0, side=0.7, positive=0.3, total=1.0)  # the same split, sides named the other way
    assert swapped.kappa == pytest.approx(1) and swapped.agreement == pytest.approx(1)
    independent = score_areas(both=0.5 * 0.3, side=0.5, positive=0.3, total=1.0)
    assert independent.kappa == pytest.approx(0, abs=1e-12) and independent.balanced == pytest.approx(0.5)
    assert not independent.degenerate
    one_class = score_areas(both=0.5, side=0.5, positive=1.0, total=1.0)
    assert one_class.kappa == 0 and np.isnan(one_class.balanced)
    with pytest.raises(ValueError, match="degenerate_below"):
        score_areas(0.1, 0.2, 0.3, 1.0, degenerate_below=0.7)


def test_score_split_refuses_a_wrong_side():
    rm = regions_2d(_net(1), box=(-2, 2, -2, 2))
    with pytest.raises(ValueError, match="side: expected a bool array"):
        score_split(rm, np.zeros(rm.n_regions + 1, bool))


def test_class_one_triangles_cover_the_class_one_area():
    rm = regions_2d(_net(2), box=(-2, 2, -2, 2))
    t = class_one_triangles(rm)
    area = 0.5 * np.abs((t[:, 1, 0] - t[:, 0, 0]) * (t[:, 2, 1] - t[:, 0, 1]) - (t[:, 1, 1] - t[:, 0, 1]) * (t[:, 2, 0] - t[:, 0, 0]))
    assert area.sum() == pytest.approx(positive_class_area(rm).sum(), rel=1e-12)


@pytest.mark.parametrize("seed", [1, 2])
def test_best_straight_cut_matches_brute_force(seed):
    net = _net(seed)
    box = (-2, 2, -2, 2)
    rm = regions_2d(net, box=box)
    cut = best_straight_cut(rm)
    ref = brute_force_straight_cut_kappa(net, box, n=150, n_directions=240)
    assert cut.score.kappa == pytest.approx(ref, abs=6e-3)
    # the reported score is the score of the reported line, measured on the grid
    pts, pos = grid_decision(net, box, n=150)
    side = pts @ np.array(cut.normal) <= cut.offset
    assert kappa_from_labels(side, pos) == pytest.approx(cut.score.kappa, abs=5e-3)


def test_straight_cut_of_a_linear_decision_is_exact():
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
        net[0].bias.fill_(5.0)  # all units on over the box: the decision is affine, a straight line
        net[2].weight.copy_(torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 0.0]]))
        net[2].bias.copy_(torch.tensor([0.0, -15.3]))  # x + 2y = 0.3
    rm = regions_2d(net, box=(-1, 1, -1, 1))
    cut = best_straight_cut(rm)
    assert cut.score.kappa == pytest.approx(1, abs=1e-9)
    assert abs(cut.normal[1] / cut.normal[0]) == pytest.approx(2, rel=1e-4)
